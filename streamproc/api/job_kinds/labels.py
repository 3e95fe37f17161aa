"""The label job's wire half: StartLabelDetection / GetLabelDetection."""

from __future__ import annotations

from streamproc.api.context import Params, Response
from streamproc.api.job_kinds.base import channel, results_query, video_response, video_source
from streamproc.jobs.kinds.labels import (
    GENERAL_LABELS,
    LABEL_DETECTION,
    LabelDetectionJobKind,
    LabelDetectionRequest,
)
from streamproc.jobs.service import Page, ResultsQuery
from streamproc.labels.filters import filters_from
from streamproc.moderation.types import min_confidence


class LabelDetectionWire:
    """Labels by TIMESTAMP (default) or NAME, per TIMESTAMPS (default) or SEGMENTS."""

    api = LABEL_DETECTION
    start_operation = LabelDetectionJobKind.operation
    get_operation = "GetLabelDetection"

    def __init__(self, kind: LabelDetectionJobKind) -> None:
        self._kind = kind  # its LabelModelVersion

    def request(self, p: Params) -> LabelDetectionRequest:
        """Video, JobTag, NotificationChannel, MinConfidence (default 50), Features, Settings."""
        settings = p.get("Settings") or {}
        return LabelDetectionRequest(
            video_source(p), p.get("JobTag"), channel(p),
            min_confidence=min_confidence(p.get("MinConfidence")),
            features=tuple(p.get("Features") or (GENERAL_LABELS,)),
            filters=filters_from(settings.get("GeneralLabels")))

    def query(self, p: Params) -> ResultsQuery:
        """SortBy, AggregateBy, NextToken and MaxResults."""
        return results_query(p)

    def response(self, page: Page) -> Response:
        """The job, its Labels, the model version and the view used."""
        out = video_response(page, "Labels")
        if self._kind.model_version:
            out["LabelModelVersion"] = self._kind.model_version
        out["GetRequestMetadata"] = {"SortBy": page.sort, "AggregateBy": page.aggregate}
        return out
