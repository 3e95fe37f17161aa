"""The face jobs' wire halves: Start/Get FaceDetection and Start/Get FaceSearch."""

from __future__ import annotations

from streamproc.api.context import Params, Response
from streamproc.api.job_kinds.base import channel, results_query, video_response, video_source
from streamproc.jobs.kinds.faces import (
    FaceDetectionJobKind,
    FaceDetectionRequest,
    FaceSearchJobKind,
    FaceSearchRequest,
)
from streamproc.jobs.service import Page, ResultsQuery
from streamproc.rekognition.constants import FACE_DETECTION, FACE_SEARCH, face_match_threshold


class FaceDetectionWire:
    """StartFaceDetection / GetFaceDetection: Faces in timestamp order."""

    api = FACE_DETECTION
    start_operation = FaceDetectionJobKind.operation
    get_operation = "GetFaceDetection"

    def request(self, p: Params) -> FaceDetectionRequest:
        """Video, JobTag, NotificationChannel, FaceAttributes (default DEFAULT)."""
        return FaceDetectionRequest(video_source(p), p.get("JobTag"), channel(p),
                                    face_attributes=p.get("FaceAttributes", "DEFAULT"))

    def query(self, p: Params) -> ResultsQuery:
        """NextToken and MaxResults (no SortBy: timestamp order)."""
        return results_query(p)

    def response(self, page: Page) -> Response:
        """The job and its Faces."""
        return video_response(page, "Faces")


class FaceSearchWire:
    """StartFaceSearch / GetFaceSearch: Persons by TIMESTAMP (default) or INDEX."""

    api = FACE_SEARCH
    start_operation = FaceSearchJobKind.operation
    get_operation = "GetFaceSearch"

    def request(self, p: Params) -> FaceSearchRequest:
        """FaceMatchThreshold defaults to 80 and is not raised: no clamp."""
        return FaceSearchRequest(video_source(p), p.get("JobTag"), channel(p),
                                 collection_id=p["CollectionId"],
                                 threshold=face_match_threshold(p.get("FaceMatchThreshold")))

    def query(self, p: Params) -> ResultsQuery:
        """SortBy, NextToken and MaxResults."""
        return results_query(p)

    def response(self, page: Page) -> Response:
        """The job and its Persons."""
        return video_response(page, "Persons")
