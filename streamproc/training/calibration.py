"""Platt scaling: a head's log-odds to a calibrated probability, read as a 0-100 Confidence.

Fitted on held-out (out-of-fold) scores with the data's true class frequencies, so a
Confidence of 70 means about 70% of such images have the label, and a ConfidenceThreshold
of 50 keeps the images more likely to have it than not. Platt's smoothed targets keep the
fit finite on separable scores. The slope is kept non-negative, so the map is monotonic: a
head that ranks held-out images no better than chance gets slope 0 (the base rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamproc.training.logistic import FloatArray, sigmoid

_ITERATIONS = 100


@dataclass(frozen=True)
class Platt:
    """``P(label | score) = sigmoid(slope * score + offset)``."""

    slope: float
    offset: float

    def probability(self, scores: FloatArray) -> FloatArray:
        """Calibrated probabilities in [0, 1]."""
        return sigmoid(self.slope * np.asarray(scores, dtype=np.float64) + self.offset)

    def confidence(self, scores: FloatArray) -> FloatArray:
        """Calibrated Confidence in [0, 100]."""
        return 100.0 * self.probability(scores)


def fit_platt(scores: FloatArray, truth: FloatArray) -> Platt:
    """Platt (1999) with Lin, Lin and Weng's (2007) Newton iteration and smoothed targets."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    positives, negatives = float(y.sum()), float(len(y) - y.sum())
    target = np.where(y > 0.5, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    prior = float(np.log((negatives + 1) / (positives + 1)))
    slope, offset = _newton(s, target, 0.0, -prior)
    if slope < 0.0:
        slope, offset = 0.0, _offset_only(target)
    return Platt(slope=slope, offset=offset)


def _newton(s: FloatArray, t: FloatArray, slope: float, offset: float) -> tuple[float, float]:
    design = np.stack([s, np.ones_like(s)], axis=1)
    beta = np.array([slope, offset])
    for _ in range(_ITERATIONS):
        p = sigmoid(design @ beta)
        gradient = design.T @ (p - t)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-12 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta = _damped(design, t, beta, step)
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def _nll(design: FloatArray, t: FloatArray, beta: FloatArray) -> float:
    z = design @ beta
    return float(np.sum(np.logaddexp(0.0, z) - t * z))


def _damped(design: FloatArray, t: FloatArray, beta: FloatArray, step: FloatArray
            ) -> FloatArray:
    current, scale = _nll(design, t, beta), 1.0
    while scale > 1e-8:
        candidate = beta - scale * step
        if _nll(design, t, candidate) <= current:
            return candidate
        scale *= 0.5
    return beta


def _offset_only(target: FloatArray) -> float:
    mean = float(np.clip(target.mean(), 1e-9, 1 - 1e-9))
    return float(np.log(mean / (1 - mean)))
