"""The content-moderation job's wire half: StartContentModeration / GetContentModeration."""

from __future__ import annotations

from streamproc.api.context import Params, Response
from streamproc.api.job_kinds.base import channel, results_query, video_response, video_source
from streamproc.jobs.kinds.moderation import (
    CONTENT_MODERATION,
    ContentModerationJobKind,
    ContentModerationRequest,
)
from streamproc.jobs.service import Page, ResultsQuery
from streamproc.moderation.types import min_confidence


class ContentModerationWire:
    """ModerationLabels by TIMESTAMP (default) or NAME, per TIMESTAMPS (default) or SEGMENTS."""

    api = CONTENT_MODERATION
    start_operation = ContentModerationJobKind.operation
    get_operation = "GetContentModeration"

    def __init__(self, kind: ContentModerationJobKind) -> None:
        self._kind = kind  # its ModerationModelVersion

    def request(self, p: Params) -> ContentModerationRequest:
        """Video, JobTag, NotificationChannel, MinConfidence (default 50)."""
        return ContentModerationRequest(video_source(p), p.get("JobTag"), channel(p),
                                        min_confidence=min_confidence(p.get("MinConfidence")))

    def query(self, p: Params) -> ResultsQuery:
        """SortBy, AggregateBy, NextToken and MaxResults."""
        return results_query(p)

    def response(self, page: Page) -> Response:
        """The job, its ModerationLabels, the model version and the view used."""
        out = video_response(page, "ModerationLabels")
        out["ModerationModelVersion"] = self._kind.model_version
        out["GetRequestMetadata"] = {"SortBy": page.sort, "AggregateBy": page.aggregate}
        return out
