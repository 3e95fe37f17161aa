"""Rekognition's evaluation summary files, built from test-set truth and Confidences.

- Adapters (Custom Moderation): ``AggregatedEvaluationResults.F1Score``,
  ``EvaluationDetails`` and ``ContentModeration`` with the counts of the base model and
  the adapter at the input ConfidenceThreshold and at every threshold 5-100 (step 5).
- Custom Labels: ``EvaluationSummary-PROJECT-VERSION.json``: ``Version``,
  ``EvaluationDetails``, ``AggregatedEvaluationResults`` (row-normalised ConfusionMatrix,
  macro-averaged Precision, Recall, F1Score) and ``LabelEvaluationResults`` (each label at
  its own Threshold, 0-1, sorted by F1Score as AWS sorts them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamproc.training.evaluation import SWEEP, Counts, counts, total
from streamproc.training.logistic import FloatArray


@dataclass(frozen=True)
class Details:
    """EvaluationDetails: when, which labels, how many images, which version."""

    end_timestamp: str  # ISO 8601, as "2019-11-21T07:30:23.910943"
    labels: tuple[str, ...]
    testing_images: int
    training_images: int
    version_arn: str

    def wire(self) -> dict[str, Any]:
        """The EvaluationDetails object."""
        return {"EvaluationEndTimestamp": self.end_timestamp, "Labels": list(self.labels),
                "NumberOfTestingImages": self.testing_images,
                "NumberOfTrainingImages": self.training_images,
                "ProjectVersionArn": self.version_arn}


@dataclass(frozen=True)
class LabelScores:
    """One label's test-set truth and the two models' Confidences (0-100) per image."""

    label: str
    truth: FloatArray
    base: FloatArray
    adapter: FloatArray


def _at(labels: Sequence[LabelScores], threshold: float) -> dict[str, Any]:
    rows = [(item.label, counts(item.truth, item.base, threshold),
             counts(item.truth, item.adapter, threshold)) for item in labels]
    return {"ConfidenceThreshold": float(threshold),
            "AggregatedEvaluationResults": {
                "BaseModel": total(b for _, b, _ in rows).wire(),
                "Adapter": total(a for _, _, a in rows).wire()},
            "LabelEvaluationResults": [{"Label": label, "BaseModel": b.wire(),
                                        "Adapter": a.wire()} for label, b, a in rows]}


def adapter_f1(labels: Sequence[LabelScores], threshold: float, base: bool = False) -> float:
    """Micro-averaged F1 over labels at ``threshold``, of the adapter (or the base model)."""
    return total(counts(item.truth, item.base if base else item.adapter, threshold)
                 for item in labels).f1


def adapter_summary(labels: Sequence[LabelScores], threshold: float,
                    details: Details) -> dict[str, Any]:
    """The adapter evaluation summary (the file EvaluationResult.Summary points at)."""
    return {"AggregatedEvaluationResults": {"F1Score": adapter_f1(labels, threshold)},
            "EvaluationDetails": details.wire(),
            "ContentModeration": {
                "InputConfidenceThresholdEvalResults": _at(labels, threshold),
                "AllConfidenceThresholdsEvalResults": [_at(labels, t) for t in SWEEP]}}


def _label_result(name: str, part: Counts, threshold: float, images: int) -> dict[str, Any]:
    return {"Label": name, "Metrics": {"F1Score": part.f1, "Precision": part.precision,
                                       "Recall": part.recall, "Threshold": threshold / 100.0},
            "NumberOfTestingImages": images}


def custom_labels_summary(truth: Sequence[str], predicted: Sequence[str],
                          confidences: FloatArray, classes: Sequence[str],
                          thresholds: Sequence[float], details: Details) -> dict[str, Any]:
    """The Custom Labels summary of a classifier on its test set.

    ``confidences`` is n x classes (0-100, columns in ``classes`` order); ``thresholds``
    (0-100) is each class's assumed threshold, at which its Metrics are counted.
    """
    actual = np.asarray(truth)
    rows, matrix = [], []
    for column, (name, cut) in enumerate(zip(classes, thresholds, strict=True)):
        part = counts(actual == name, confidences[:, column], cut)
        rows.append(_label_result(name, part, cut, int(np.sum(actual == name))))
        matrix += _matrix_row(name, actual, predicted, classes)
    rows.sort(key=lambda row: row["Metrics"]["F1Score"], reverse=True)
    mean = {key: float(np.mean([row["Metrics"][key] for row in rows]))
            for key in ("F1Score", "Precision", "Recall")}
    return {"Version": 1, "EvaluationDetails": details.wire(),
            "AggregatedEvaluationResults": {"ConfusionMatrix": matrix, **mean},
            "LabelEvaluationResults": rows}


def _matrix_row(name: str, actual: np.ndarray, predicted: Sequence[str],
                classes: Sequence[str]) -> list[dict[str, Any]]:
    """One ground-truth class's row: the share of its images predicted as each class."""
    mine = [p for a, p in zip(actual, predicted, strict=True) if a == name]
    return [{"GroundTruthLabel": name, "PredictedLabel": other,
             "Value": (mine.count(other) / len(mine)) if mine else 0.0} for other in classes]
