"""Detector score -> Rekognition's 0-100 ``Confidence``.

SCRFD scores clear faces at only 0.7-0.9, so ``score x 100`` told clients that good faces
were 70-90% likely to be faces and a ``Confidence >= 90`` filter dropped them. The pack's
knots (config ``models.packs.PACK.confidence``) bend the scale the way Rekognition's reads:
clear faces above 99, marginal detections clearly lower. The curve is monotonic, so ranking
by Confidence is ranking by score and the detection threshold (on the raw score) keeps its
meaning: it is simply the Confidence its score maps to.
"""

from __future__ import annotations

import numpy as np

from streamproc.config import ConfidenceKnot


class ConfidenceScale:
    """Piecewise-linear score -> Confidence through a pack's knots (clamped at the ends)."""

    def __init__(self, knots: list[ConfidenceKnot]) -> None:
        self._score = np.array([k.score for k in knots], dtype=np.float64)
        self._confidence = np.array([k.confidence for k in knots], dtype=np.float64)

    def confidence(self, score: float) -> float:
        """Confidence (0-100) for one detector score (0-1)."""
        return round(float(np.interp(score, self._score, self._confidence)), 4)
