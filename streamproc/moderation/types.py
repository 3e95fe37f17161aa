"""What the moderation engine hands back, as every caller (API, jobs, stage) sees it.

Shared by the engine (:mod:`.engine`), DetectModerationLabels, the media-analysis and the
content-moderation jobs. Confidences are calibrated percentages (0-100, see the pack's
calibration), never raw model scores; a label's ancestors are returned with it, each with a
confidence at least its child's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamproc.errors import InvalidParameterException


@dataclass(frozen=True)
class ModerationLabel:
    """One label of taxonomy v7 found in an image."""

    name: str  # "Explicit Nudity"
    parent: str  # "" at the top level
    level: int  # TaxonomyLevel, 1-3
    confidence: float  # calibrated, 0-100

    def wire(self) -> dict[str, object]:
        """The ``ModerationLabel`` structure (Confidence, Name, ParentName, TaxonomyLevel)."""
        return {"Confidence": round(self.confidence, 4), "Name": self.name,
                "ParentName": self.parent, "TaxonomyLevel": self.level}


@dataclass(frozen=True)
class ModerationAnalysis:
    """The moderation stage's per-frame (or per-image) value: every label, any confidence.

    Callers filter by their MinConfidence with :func:`at_least`.
    """

    labels: tuple[ModerationLabel, ...]

    @property
    def found(self) -> int:
        """Labels found (the jobs' per-frame metric)."""
        return len(self.labels)


DEFAULT_MIN_CONFIDENCE = 50.0  # MinConfidence when a request gives none, as in Rekognition


def min_confidence(requested: float | None) -> float:
    """The MinConfidence a request applies: its own, else the default (every path's rule)."""
    return DEFAULT_MIN_CONFIDENCE if requested is None else float(requested)


def check_min_confidence(value: float) -> None:
    """MinConfidence is a percentage (the API's validation says so first; the rule's home)."""
    if not 0.0 <= value <= 100.0:
        msg = f"MinConfidence {value} is not between 0 and 100"
        raise InvalidParameterException(msg)


def at_least(labels: Sequence[ModerationLabel], min_confidence: float
             ) -> list[ModerationLabel]:
    """The labels at or above ``min_confidence``, in the engine's order (top levels first)."""
    return [label for label in labels if label.confidence >= min_confidence]


class Moderator(Protocol):
    """The engine as callers use it (a fake in tests, :class:`.engine.ModerationEngine` else)."""

    @property
    def model_version(self) -> str:
        """``ModerationModelVersion``: names the pack (e.g. ``7.0-open_nsfw``)."""

    @property
    def served(self) -> tuple[str, ...]:
        """The label names this pack can honestly emit (taxonomy v7 names)."""

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        """Every image's labels (BGR uint8 HxWx3 pixels, any size), one model call per batch.

        Thread-safe: the API's request threads and the stage's thread call it at once.
        """
