"""Wire handlers for stored-video jobs (Start/Get FaceDetection, Start/Get FaceSearch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamproc.api.context import Params, RequestContext
from streamproc.errors import InvalidParameterException
from streamproc.jobs.request import JobRequest
from streamproc.jobs.service import WIRE_STATUS, JobService, Page
from streamproc.rekognition.constants import DEFAULT_THRESHOLD, FACE_DETECTION, FACE_SEARCH
from streamproc.storage.objects import ObjectRef


def _video(p: Params) -> ObjectRef:
    obj = p["Video"].get("S3Object")
    if obj is None:
        raise InvalidParameterException("Video.S3Object is required")
    return ObjectRef.from_wire(obj)


def start_face_detection(s: JobService, p: Params, ctx: RequestContext) -> dict[str, Any]:
    """StartFaceDetection."""
    request = JobRequest(FACE_DETECTION, _video(p), p.get("JobTag"),
                         p.get("NotificationChannel"),
                         face_attributes=p.get("FaceAttributes", "DEFAULT"))
    return {"JobId": s.start(request, p.get("ClientRequestToken"))}


def start_face_search(s: JobService, p: Params, ctx: RequestContext) -> dict[str, Any]:
    """StartFaceSearch (FaceMatchThreshold defaults to 80 and is not raised: no clamp)."""
    request = JobRequest(FACE_SEARCH, _video(p), p.get("JobTag"),
                         p.get("NotificationChannel"), collection_id=p["CollectionId"],
                         threshold=float(p.get("FaceMatchThreshold", DEFAULT_THRESHOLD)))
    return {"JobId": s.start(request, p.get("ClientRequestToken"))}


def _answer(page: Page, results_key: str) -> dict[str, Any]:
    job = page.job
    out: dict[str, Any] = {"JobStatus": WIRE_STATUS[job.state], "JobId": job.job_id,
                           "Video": job.request["Video"]}
    if job.status_message:
        out["StatusMessage"] = job.status_message
    if job.video_metadata is not None:
        out["VideoMetadata"] = job.video_metadata
    if job.request.get("JobTag") is not None:
        out["JobTag"] = job.request["JobTag"]
    if WIRE_STATUS[job.state] == "SUCCEEDED":
        out[results_key] = page.items
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def get_face_detection(s: JobService, p: Params, ctx: RequestContext) -> dict[str, Any]:
    """GetFaceDetection: Faces in timestamp order."""
    page = s.get(p["JobId"], FACE_DETECTION, "TIMESTAMP", p.get("NextToken"),
                 p.get("MaxResults"))
    return _answer(page, "Faces")


def get_face_search(s: JobService, p: Params, ctx: RequestContext) -> dict[str, Any]:
    """GetFaceSearch: Persons by TIMESTAMP (default) or INDEX."""
    page = s.get(p["JobId"], FACE_SEARCH, p.get("SortBy", "TIMESTAMP"), p.get("NextToken"),
                 p.get("MaxResults"))
    return _answer(page, "Persons")


JOB_HANDLERS: dict[str, Callable[[JobService, Params, RequestContext], dict[str, Any]]] = {
    "StartFaceDetection": start_face_detection,
    "GetFaceDetection": get_face_detection,
    "StartFaceSearch": start_face_search,
    "GetFaceSearch": get_face_search,
}
