"""The content-moderation job: StartContentModeration, a kind of video in the moderation stage.

Every sampled frame goes through the moderation pack (``stages.MODERATION``); the labels at
or above the job's MinConfidence become two listings of results, per timestamp and per
segment (:mod:`streamproc.dataplane.stored.moderation_results`), which GetContentModeration
pages by AggregateBy (TIMESTAMPS, the default, or SEGMENTS) and SortBy (TIMESTAMP, the
default, or NAME: by label name, then time). Both listings are written while the job runs,
so a page costs one indexed read whatever the video's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.moderation_results import (
    SEGMENTS,
    TIMESTAMPS,
    ModerationResults,
)
from streamproc.dataplane.stored.stages import MODERATION, ResultBuilder
from streamproc.jobs.kind import Paging
from streamproc.jobs.request import JobRequest
from streamproc.moderation.types import (
    DEFAULT_MIN_CONFIDENCE,
    ModerationAnalysis,
    check_min_confidence,
    min_confidence,
)
from streamproc.storage.jobs import ResultOrder

CONTENT_MODERATION = "ContentModeration"  # the kind's name (jobs table, metrics label)



@dataclass(frozen=True, kw_only=True)
class ContentModerationRequest(JobRequest):
    """StartContentModeration, minus the token (MinConfidence stored with its default)."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE

    def _own_stored(self) -> dict[str, Any]:
        return {"MinConfidence": float(self.min_confidence)}

    @classmethod
    def _own_from_stored(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {"min_confidence": min_confidence(data.get("MinConfidence"))}


@dataclass(frozen=True)
class ContentModerationResults:
    """A content-moderation launch: its MinConfidence."""

    min_confidence: float

    def builder(self) -> ResultBuilder[ModerationAnalysis]:
        """A builder of both listings (its open segments are the launch's own)."""
        return ModerationResults(self.min_confidence)


class ContentModerationJobKind:
    """Moderation labels of a video's sampled frames, per timestamp or per segment."""

    api = CONTENT_MODERATION
    operation = "StartContentModeration"  # its wire half's Start operation too
    input = JobInput.VIDEO
    stage = MODERATION
    request_type = ContentModerationRequest
    paging = Paging({"TIMESTAMP": ResultOrder.TIME, "NAME": ResultOrder.NAME},
                    listings={"TIMESTAMPS": TIMESTAMPS, "SEGMENTS": SEGMENTS})

    def __init__(self, model_version: str) -> None:
        self.model_version = model_version  # ModerationModelVersion: the engine's pack

    def check(self, request: ContentModerationRequest) -> None:
        """MinConfidence is a percentage (the API's validation says so first)."""
        check_min_confidence(request.min_confidence)

    def results(self, request: ContentModerationRequest) -> ContentModerationResults:
        """Nothing is pinned at launch beyond MinConfidence."""
        return ContentModerationResults(request.min_confidence)
