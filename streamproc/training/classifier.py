"""Custom Labels image classification: one-vs-rest heads, their probabilities normalised.

Each class gets a calibrated head (:func:`.heads.train_heads`, kind ``classifier``); an
image's class Confidences are those probabilities divided by their sum (x 100), so they
add up to 100 as one label per image, and the predicted class is the most confident.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from streamproc.training.heads import TrainedHeads, train_heads
from streamproc.training.limits import Deadline, TrainingLimits
from streamproc.training.logistic import FloatArray

KIND = "classifier"


def train_classifier(features: FloatArray, classes: Sequence[str], backbone: str, *,
                     groups: Sequence[Hashable] | None = None,
                     limits: TrainingLimits | None = None,
                     deadline: Deadline | None = None) -> TrainedHeads:
    """One head per distinct class of ``classes`` (one class name per image)."""
    names = sorted(set(classes))
    if len(names) < 2:
        msg = f"a classifier needs at least two classes, got {names}"
        raise ValueError(msg)
    truth = np.asarray(classes)
    targets = {name: (truth == name).astype(np.float64) for name in names}
    return train_heads(features, targets, backbone, groups=groups, kind=KIND, limits=limits,
                       deadline=deadline)


def class_confidences(model: TrainedHeads, features: FloatArray) -> FloatArray:
    """Confidences (0-100, n x classes; columns: model.labels) adding up to 100 per image."""
    raw = np.stack([head.platt.probability(head.decision(features)) for head in model.heads],
                   axis=1)
    # Calibrated probabilities are never exactly 0, so the sum is positive.
    return np.asarray(100.0 * raw / raw.sum(axis=1, keepdims=True), dtype=np.float64)


def predict(model: TrainedHeads, features: FloatArray) -> list[str]:
    """The most confident class of each image."""
    best = np.argmax(class_confidences(model, features), axis=1)
    return [model.labels[int(index)] for index in best]
