"""The person-tracking job's wire half: StartPersonTracking / GetPersonTracking."""

from __future__ import annotations

from streamproc.api.context import Params, Response
from streamproc.api.job_kinds.base import channel, results_query, video_response, video_source
from streamproc.jobs.kinds.persons import (
    PERSON_TRACKING,
    PersonTrackingJobKind,
    PersonTrackingRequest,
)
from streamproc.jobs.service import Page, ResultsQuery


class PersonTrackingWire:
    """Persons by TIMESTAMP (default) or INDEX."""

    api = PERSON_TRACKING
    start_operation = PersonTrackingJobKind.operation
    get_operation = "GetPersonTracking"

    def request(self, p: Params) -> PersonTrackingRequest:
        """Video, JobTag, NotificationChannel."""
        return PersonTrackingRequest(video_source(p), p.get("JobTag"), channel(p))

    def query(self, p: Params) -> ResultsQuery:
        """SortBy, NextToken and MaxResults."""
        return results_query(p)

    def response(self, page: Page) -> Response:
        """The job and its Persons."""
        return video_response(page, "Persons")
