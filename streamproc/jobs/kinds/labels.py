"""The label job: StartLabelDetection, a kind of video in the label stage.

Every sampled frame goes through the label pack (:data:`~.label_stage.LABELS`); the labels
its GeneralLabels filters keep at or above its MinConfidence become two listings of results,
per timestamp and per segment (:mod:`streamproc.dataplane.stored.label_results`), which
GetLabelDetection pages by AggregateBy (TIMESTAMPS, the default, or SEGMENTS) and SortBy
(TIMESTAMP, the default, or NAME: by label name, then confidence, highest first). Both
listings are written while the job runs, so a page costs one indexed read.

Without a label pack (``detector`` None) Start answers LabelPackMissing, as DetectLabels
does, and a job queued while there was one FAILS with that message when it would launch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.label_results import SEGMENTS, TIMESTAMPS, LabelResults
from streamproc.dataplane.stored.label_stage import LABELS, LabelAnalysis
from streamproc.dataplane.stored.stages import ResultBuilder
from streamproc.jobs.kind import Paging
from streamproc.jobs.request import JobRequest
from streamproc.labels.errors import LabelPackChanged, LabelPackMissing
from streamproc.labels.filters import NO_FILTERS, LabelFilters, filters_from, filters_stored
from streamproc.labels.request import (
    GENERAL_LABELS,
    VIDEO_MIN_CONFIDENCE,
    check_features,
    check_min_confidence,
    features,
    video_min_confidence,
)
from streamproc.labels.types import LabelDetector
from streamproc.storage.jobs import ResultOrder

LABEL_DETECTION = "LabelDetection"  # the kind's name (jobs table, metrics label)


@dataclass(frozen=True, kw_only=True)
class LabelDetectionRequest(JobRequest):
    """StartLabelDetection, minus the token, every default filled in.

    Features [] and Features omitted are both GENERAL_LABELS (AWS applies it by default).
    ``model_version`` is the label pack's LabelModelVersion on the node that accepted the
    Start: Get answers it (not whatever pack the answering node has now), and a launch on
    a node with another pack refuses to run the job under it. ``""`` for rows written
    before it was kept (Get then answers the node's own, as it always did); stored only
    when set, so those rows' stored form, and their idempotency, are unchanged.
    """

    min_confidence: float = VIDEO_MIN_CONFIDENCE
    features: tuple[str, ...] = (GENERAL_LABELS,)
    filters: LabelFilters = NO_FILTERS
    model_version: str = ""

    def _own_stored(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "MinConfidence": float(self.min_confidence), "Features": list(self.features),
            "Settings": {"GeneralLabels": filters_stored(self.filters)}}
        if self.model_version:
            out["LabelModelVersion"] = self.model_version
        return out

    @classmethod
    def _own_from_stored(cls, data: dict[str, Any]) -> dict[str, Any]:
        settings = data.get("Settings") or {}
        return {"min_confidence": video_min_confidence(data.get("MinConfidence")),
                "features": features(data.get("Features")),
                "filters": filters_from(settings.get("GeneralLabels")),
                "model_version": str(data.get("LabelModelVersion") or "")}


@dataclass(frozen=True)
class LabelDetectionResults:
    """A label launch: its MinConfidence and filters."""

    min_confidence: float
    filters: LabelFilters

    def builder(self) -> ResultBuilder[LabelAnalysis]:
        """A builder of both listings (its open segments are the launch's own)."""
        return LabelResults(self.min_confidence, self.filters)


class LabelDetectionJobKind:
    """Labels of a video's sampled frames, per timestamp or per segment."""

    api = LABEL_DETECTION
    operation = "StartLabelDetection"  # its wire half's Start operation too
    input = JobInput.VIDEO
    stage = LABELS
    request_type = LabelDetectionRequest
    paging = Paging({"TIMESTAMP": ResultOrder.TIME, "NAME": ResultOrder.NAME},
                    listings={"TIMESTAMPS": TIMESTAMPS, "SEGMENTS": SEGMENTS})

    def __init__(self, detector: LabelDetector | None) -> None:
        self._detector = detector

    @property
    def model_version(self) -> str:
        """LabelModelVersion: the loaded pack's ('' without one)."""
        return "" if self._detector is None else self._detector.model_version

    def check(self, request: LabelDetectionRequest) -> None:
        """A pack is loaded; MinConfidence is a percentage; the only Feature is GENERAL_LABELS."""
        self._require_pack()
        check_min_confidence(request.min_confidence)
        check_features(request.features)

    def results(self, request: LabelDetectionRequest) -> LabelDetectionResults:
        """The launch's filters; no pack, or another pack than the Start's: the job FAILS.

        Labels of another model version than the job answers on Get would be a lie, so a
        node whose pack differs (every node needs the same one: docs/cluster.md) refuses.
        """
        self._require_pack()
        if request.model_version and request.model_version != self.model_version:
            raise LabelPackChanged(request.model_version, self.model_version)
        return LabelDetectionResults(request.min_confidence, request.filters)

    def _require_pack(self) -> None:
        if self._detector is None:
            raise LabelPackMissing()
