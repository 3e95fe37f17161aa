"""DetectModerationLabels: one image through the moderation pack, on the request's thread.

The wire half (:mod:`streamproc.api.moderation_handlers`) parses the request into a
:class:`ModerationRequest` and decodes the image; this service refuses what this server
cannot do before the image is read (:meth:`ModerationService.check`), then runs the pack
and keeps the labels at or above MinConfidence, in the engine's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.moderation.types import (
    DEFAULT_MIN_CONFIDENCE,
    ModerationLabel,
    Moderator,
    at_least,
    check_min_confidence,
)


@dataclass(frozen=True)
class ModerationRequest:
    """What DetectModerationLabels asks for, besides its image."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    project_version: str | None = None  # a Custom Moderation adapter's ARN
    human_review: bool = False  # HumanLoopConfig given


@dataclass(frozen=True)
class ModerationResult:
    """The labels found at or above MinConfidence, and the pack's ModerationModelVersion."""

    labels: tuple[ModerationLabel, ...]
    model_version: str


class ModerationService:
    """DetectModerationLabels over a :class:`~streamproc.moderation.types.Moderator`."""

    def __init__(self, moderator: Moderator) -> None:
        self._moderator = moderator

    @property
    def model_version(self) -> str:
        """``ModerationModelVersion`` (names the pack)."""
        return self._moderator.model_version

    @staticmethod
    def check(request: ModerationRequest) -> None:
        """Refuse, before any image is read, what this server does not do."""
        if request.human_review:
            msg = ("HumanLoopConfig is not supported: this server has no human review "
                   "(Amazon Augmented AI); send the request without it")
            raise InvalidParameterException(msg)
        if request.project_version is not None:
            msg = (f"No such project version exists: {request.project_version} "
                   "(this server has no Custom Moderation adapters)")
            raise ResourceNotFoundException(msg)
        check_min_confidence(request.min_confidence)

    def detect(self, image: np.ndarray, request: ModerationRequest) -> ModerationResult:
        """The image's labels at or above the request's MinConfidence."""
        self.check(request)
        (analysis,) = self._moderator.analyse_many([image])
        return ModerationResult(tuple(at_least(analysis.labels, request.min_confidence)),
                                self._moderator.model_version)
