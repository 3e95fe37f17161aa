"""DetectModerationLabels: one image through the moderation pack, on the request's thread.

The wire half (:mod:`streamproc.api.moderation_handlers`) parses the request into a
:class:`ModerationRequest`, resolves a ``ProjectVersion`` to its loaded adapter and decodes
the image; this service refuses what this server cannot do before the image is read
(:meth:`ModerationService.check`), then runs the pack (with the adapter: one model run
through :class:`~streamproc.moderation.adapter.AdapterModerator`) and keeps the labels at
or above MinConfidence, in the engine's order. MinConfidence applies as given, with an
adapter too: the ConfidenceThreshold an adapter was trained with is its evaluation's cut,
not a filter on its answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamproc.errors import InvalidParameterException
from streamproc.moderation.adapter import Adapter, AdapterModerator, no_adapters
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
    """The labels at or above MinConfidence, ModerationModelVersion, the adapter's ARN."""

    labels: tuple[ModerationLabel, ...]
    model_version: str
    project_version: str | None = None


class ModerationService:
    """DetectModerationLabels over a :class:`~streamproc.moderation.types.Moderator`.

    ``adapters`` runs the pack with an adapter (None: this server serves none, and a
    ProjectVersion names nothing).
    """

    def __init__(self, moderator: Moderator, adapters: AdapterModerator | None = None) -> None:
        self._moderator = moderator
        self._adapters = adapters

    @property
    def model_version(self) -> str:
        """``ModerationModelVersion`` (names the pack)."""
        return self._moderator.model_version

    @property
    def serves_adapters(self) -> bool:
        """Whether a ProjectVersion can be served here."""
        return self._adapters is not None

    def check(self, request: ModerationRequest) -> None:
        """Refuse, before any image is read, what this server does not do."""
        if request.human_review:
            msg = ("HumanLoopConfig is not supported: this server has no human review "
                   "(Amazon Augmented AI); send the request without it")
            raise InvalidParameterException(msg)
        if request.project_version is not None and self._adapters is None:
            raise no_adapters(request.project_version)
        check_min_confidence(request.min_confidence)

    def detect(self, image: np.ndarray, request: ModerationRequest,
               adapter: Adapter | None = None) -> ModerationResult:
        """The image's labels at or above the request's MinConfidence.

        ``adapter``: the version the request's ProjectVersion names, already resolved.
        """
        self.check(request)
        if adapter is not None and self._adapters is not None:
            found = self._adapters.detect(image, adapter, request.min_confidence)
            return ModerationResult(found.labels, found.model_version, found.project_version)
        (analysis,) = self._moderator.analyse_many([image])
        return ModerationResult(tuple(at_least(analysis.labels, request.min_confidence)),
                                self._moderator.model_version)
