"""The label job's wire half: StartLabelDetection / GetLabelDetection."""

from __future__ import annotations

from streamproc.api.context import Params, Response
from streamproc.api.job_kinds.base import channel, results_query, video_response, video_source
from streamproc.jobs.kinds.labels import (
    LABEL_DETECTION,
    LabelDetectionJobKind,
    LabelDetectionRequest,
)
from streamproc.jobs.service import Page, ResultsQuery
from streamproc.labels.filters import filters_from
from streamproc.labels.request import features, video_min_confidence


class LabelDetectionWire:
    """Labels by TIMESTAMP (default) or NAME, per TIMESTAMPS (default) or SEGMENTS."""

    api = LABEL_DETECTION
    start_operation = LabelDetectionJobKind.operation
    get_operation = "GetLabelDetection"

    def __init__(self, kind: LabelDetectionJobKind) -> None:
        self._kind = kind  # its LabelModelVersion: the Start's, kept with the job

    def request(self, p: Params) -> LabelDetectionRequest:
        """Video, JobTag, NotificationChannel, MinConfidence (default 50), Features, Settings.

        With the LabelModelVersion of the pack this node has (its Get answers that one).
        """
        settings = p.get("Settings") or {}
        return LabelDetectionRequest(
            video_source(p), p.get("JobTag"), channel(p),
            min_confidence=video_min_confidence(p.get("MinConfidence")),
            features=features(p.get("Features")),
            filters=filters_from(settings.get("GeneralLabels")),
            model_version=self._kind.model_version)

    def query(self, p: Params) -> ResultsQuery:
        """SortBy, AggregateBy, NextToken and MaxResults."""
        return results_query(p)

    def response(self, page: Page) -> Response:
        """The job, its Labels, the model version and the view used."""
        out = video_response(page, "Labels")
        request = page.job.request
        # The job's own version; a row from before it was kept: this node's, as before.
        version = (request.model_version if isinstance(request, LabelDetectionRequest)
                   else "") or self._kind.model_version
        if version:
            out["LabelModelVersion"] = version
        out["GetRequestMetadata"] = {"SortBy": page.sort, "AggregateBy": page.aggregate}
        return out
