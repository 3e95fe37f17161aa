"""Counts, precision, recall and F1 of Confidence scores against ground truth.

An image is predicted to have a label when its Confidence is at least the threshold, as
Rekognition returns labels at or above MinConfidence. The sweep is Rekognition's adapter
evaluation grid: every threshold from 5 to 100 in steps of 5.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from streamproc.training.logistic import FloatArray

SWEEP = tuple(range(5, 101, 5))


@dataclass(frozen=True)
class Counts:
    """True/false positives and negatives of one label (or summed over labels)."""

    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.tn + other.tn, self.fp + other.fp,
                      self.fn + other.fn)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0 when there is no positive."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN); 0 when there is neither a positive nor a prediction."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    def wire(self) -> dict[str, int]:
        """As Rekognition's evaluation summary names them."""
        return {"TruePositive": self.tp, "TrueNegative": self.tn,
                "FalsePositive": self.fp, "FalseNegative": self.fn}


def counts(truth: FloatArray, confidence: FloatArray, threshold: float) -> Counts:
    """The counts of one label at one threshold (Confidence >= threshold is positive)."""
    actual = np.asarray(truth) > 0.5
    predicted = np.asarray(confidence, dtype=np.float64) >= threshold
    return Counts(tp=int(np.sum(actual & predicted)), tn=int(np.sum(~actual & ~predicted)),
                  fp=int(np.sum(~actual & predicted)), fn=int(np.sum(actual & ~predicted)))


def sweep(truth: FloatArray, confidence: FloatArray,
          thresholds: Iterable[float] = SWEEP) -> list[tuple[float, Counts]]:
    """The counts at every threshold."""
    return [(float(t), counts(truth, confidence, t)) for t in thresholds]


def total(parts: Iterable[Counts]) -> Counts:
    """Counts summed over labels (micro-averaging)."""
    out = Counts()
    for part in parts:
        out = out + part
    return out


def accuracy(truth: list[str], predicted: list[str]) -> float:
    """The share of images whose predicted class is the true one."""
    if len(truth) != len(predicted):
        msg = f"{len(truth)} true classes but {len(predicted)} predictions"
        raise ValueError(msg)
    return sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth) \
        if truth else 0.0


def best_threshold(truth: FloatArray, confidence: FloatArray) -> float:
    """The Confidence cut with the highest F1 (ties: the highest cut), in 0-100."""
    candidates = np.unique(np.asarray(confidence, dtype=np.float64))
    best, best_f1 = 50.0, -1.0
    for candidate in candidates:
        f1 = counts(truth, confidence, float(candidate)).f1
        if f1 >= best_f1:
            best, best_f1 = float(candidate), f1
    return best
