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
from streamproc.errors import InvalidParameterException
from streamproc.jobs.kind import Paging
from streamproc.jobs.request import JobRequest
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.filters import NO_FILTERS, LabelFilters, filters_from, filters_stored
from streamproc.labels.types import LabelDetector
from streamproc.moderation.types import (
    DEFAULT_MIN_CONFIDENCE,
    check_min_confidence,
    min_confidence,
)
from streamproc.storage.jobs import ResultOrder

LABEL_DETECTION = "LabelDetection"  # the kind's name (jobs table, metrics label)
GENERAL_LABELS = "GENERAL_LABELS"  # the one LabelDetectionFeatureName, applied by default
@dataclass(frozen=True, kw_only=True)
class LabelDetectionRequest(JobRequest):
    """StartLabelDetection, minus the token, every default filled in.

    Features [] and Features omitted are both GENERAL_LABELS (AWS applies it by default).
    """

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    features: tuple[str, ...] = (GENERAL_LABELS,)
    filters: LabelFilters = NO_FILTERS

    def _own_stored(self) -> dict[str, Any]:
        return {"MinConfidence": float(self.min_confidence), "Features": list(self.features),
                "Settings": {"GeneralLabels": filters_stored(self.filters)}}

    @classmethod
    def _own_from_stored(cls, data: dict[str, Any]) -> dict[str, Any]:
        settings = data.get("Settings") or {}
        return {"min_confidence": min_confidence(data.get("MinConfidence")),
                "features": tuple(data.get("Features") or (GENERAL_LABELS,)),
                "filters": filters_from(settings.get("GeneralLabels"))}


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
        unknown = [f for f in request.features if f != GENERAL_LABELS]
        if unknown:
            msg = (f"Features {', '.join(unknown)} is not supported; the only one is "
                   f"{GENERAL_LABELS}")
            raise InvalidParameterException(msg)

    def results(self, request: LabelDetectionRequest) -> LabelDetectionResults:
        """The launch's filters; no pack (this node has none now): the job FAILS."""
        self._require_pack()
        return LabelDetectionResults(request.min_confidence, request.filters)

    def _require_pack(self) -> None:
        if self._detector is None:
            raise LabelPackMissing()
