"""Knots of the monotonic mappings: cosine -> Similarity and detector score -> Confidence."""

from __future__ import annotations

import itertools

from pydantic import Field

from streamproc.config.base import Section


class CalibrationKnot(Section):
    """One point of the cosine -> Similarity mapping."""

    cosine: float = Field(ge=-1.0, le=1.0, description="Cosine similarity of two embeddings.")
    similarity: float = Field(
        ge=0.0, le=100.0, description="Similarity reported at that cosine (0-100).")


class ConfidenceKnot(Section):
    """One point of the detector score -> Confidence mapping."""

    score: float = Field(ge=0.0, le=1.0, description="Detector (or model) score.")
    confidence: float = Field(
        ge=0.0, le=100.0, description="Confidence reported at that score (0-100).")


def increasing(pairs: list[tuple[float, float]], name: str) -> None:
    """Knots must rise strictly in x and never fall in y (so the mapping is monotonic)."""
    if len(pairs) < 2:
        msg = f"{name} needs at least two knots"
        raise ValueError(msg)
    for (x0, y0), (x1, y1) in itertools.pairwise(pairs):
        if not (x1 > x0 and y1 >= y0):
            msg = f"{name} knots must increase"
            raise ValueError(msg)


# SCRFD score -> Confidence. Calibrated on det_500m over every photo and clip frame of
# shared/data (docs/models.md: Confidence calibration): all 210 faces of 40 px or more score
# 0.713-0.890 (Confidence >= 99.1); half-hidden faces 0.57-0.71 (78-99); hands and clothing
# 0.20-0.28, below the detection threshold, which (0.5 by default) maps to Confidence 50.
_DET_CONFIDENCE = [(0.0, 0.0), (0.5, 50.0), (0.6, 90.0), (0.7, 99.0), (0.8, 99.9), (1.0, 100.0)]


def default_confidence() -> list[ConfidenceKnot]:
    """The built-in score -> Confidence knots (SCRFD detectors)."""
    return [ConfidenceKnot(score=s, confidence=c) for s, c in _DET_CONFIDENCE]
