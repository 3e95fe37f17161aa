"""Cosine similarity -> Rekognition's 0-100 ``Similarity``.

A piecewise-linear curve through per-pack calibration knots: monotonic, so ranking by
Similarity is ranking by cosine, and Similarity 80 sits at the cosine a pack needs for a
confident same-person match. A search takes the nearest faces unfiltered and compares
their Similarity with the threshold (``streamproc.search.searcher``), so no threshold is
ever turned back into a cosine.
"""

from __future__ import annotations

import numpy as np

from streamproc.config import CalibrationKnot


class SimilarityScale:
    """Maps cosine to Similarity and back through calibration knots."""

    def __init__(self, knots: list[CalibrationKnot]) -> None:
        self._cos = np.array([k.cosine for k in knots], dtype=np.float64)
        self._sim = np.array([k.similarity for k in knots], dtype=np.float64)

    def similarity(self, cosine: np.ndarray | float) -> np.ndarray | float:
        """Similarity (0-100) for cosine values."""
        return np.interp(cosine, self._cos, self._sim)
