"""The celebrity job's wire half: StartCelebrityRecognition / GetCelebrityRecognition."""

from __future__ import annotations

from streamproc.api.context import Params, Response
from streamproc.api.job_kinds.base import channel, results_query, video_response, video_source
from streamproc.jobs.kinds.celebrities import (
    CELEBRITY_RECOGNITION,
    CelebrityRecognitionJobKind,
    CelebrityRecognitionRequest,
)
from streamproc.jobs.service import Page, ResultsQuery


class CelebrityRecognitionWire:
    """Celebrities by TIMESTAMP (default) or ID."""

    api = CELEBRITY_RECOGNITION
    start_operation = CelebrityRecognitionJobKind.operation
    get_operation = "GetCelebrityRecognition"

    def request(self, p: Params) -> CelebrityRecognitionRequest:
        """Video, JobTag and NotificationChannel (the operation has no other member)."""
        return CelebrityRecognitionRequest(video_source(p), p.get("JobTag"), channel(p))

    def query(self, p: Params) -> ResultsQuery:
        """SortBy, NextToken and MaxResults."""
        return results_query(p)

    def response(self, page: Page) -> Response:
        """The job and its Celebrities."""
        return video_response(page, "Celebrities")
