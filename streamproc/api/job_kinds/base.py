"""What every job kind's wire half shares: the protocol, and the parts of a video job.

A wire half names its Start and Get operations, parses the Start parameters into its
domain kind's request (the one place they are read) and renders the Get response from the
domain job and a page of results. Handlers for both operations are made from it
(:func:`streamproc.api.job_handlers.job_handlers`).
"""

from __future__ import annotations

from typing import Protocol

from streamproc.api.context import Params, Response
from streamproc.api.s3objects import object_ref
from streamproc.errors import InvalidParameterException
from streamproc.jobs.request import JobRequest, NotificationChannel, s3_object
from streamproc.jobs.service import Page, ResultsQuery
from streamproc.storage.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED
from streamproc.storage.objects import ObjectRef

# The wire's VideoJobStatus for each stored state.
WIRE_STATUS = {QUEUED: "IN_PROGRESS", RUNNING: "IN_PROGRESS", SUCCEEDED: "SUCCEEDED",
               FAILED: "FAILED"}


class WireJobKind(Protocol):
    """The wire half of one job kind."""

    @property
    def api(self) -> str:
        """The domain kind it belongs to (JobKind.api)."""

    @property
    def start_operation(self) -> str:
        """StartFaceDetection."""

    @property
    def get_operation(self) -> str:
        """GetFaceDetection."""

    def request(self, p: Params) -> JobRequest:
        """The Start parameters as the domain kind's request."""

    def query(self, p: Params) -> ResultsQuery:
        """The Get parameters as the page asked for."""

    def response(self, page: Page) -> Response:
        """The Get response."""


def video_source(p: Params) -> ObjectRef:
    """``Video.S3Object``, the only video source there is."""
    obj = p["Video"].get("S3Object")
    if obj is None:
        raise InvalidParameterException("Video.S3Object is required")
    return object_ref(obj)


def channel(p: Params) -> NotificationChannel | None:
    """``NotificationChannel``, if given."""
    given = p.get("NotificationChannel")
    if given is None:
        return None
    return NotificationChannel(given["SNSTopicArn"], given.get("RoleArn"))


def results_query(p: Params) -> ResultsQuery:
    """SortBy and AggregateBy (where the operation has them), NextToken and MaxResults."""
    return ResultsQuery(p.get("SortBy"), p.get("NextToken"), p.get("MaxResults"),
                        p.get("AggregateBy"))


def video_response(page: Page, results_key: str) -> Response:
    """A video job's Get response: status, video, metadata, tag, and results once done."""
    job, row = page.job, page.job.row
    status = WIRE_STATUS[row.state]
    out: Response = {"JobStatus": status, "JobId": row.job_id,
                     "Video": {"S3Object": s3_object(job.request.source)}}
    if row.status_message:
        out["StatusMessage"] = row.status_message
    if row.video_metadata is not None:
        out["VideoMetadata"] = row.video_metadata
    if job.request.job_tag is not None:
        out["JobTag"] = job.request.job_tag
    if status == "SUCCEEDED":
        out[results_key] = page.items
    if page.next_token:
        out["NextToken"] = page.next_token
    return out
