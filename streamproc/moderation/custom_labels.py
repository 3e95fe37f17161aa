"""DetectCustomLabels: a Custom Labels classifier on the moderation pack's backbone.

An image-level classifier (:mod:`streamproc.training.classifier`) gives every class a
Confidence, the classes' adding up to 100. The answer is Rekognition's: labels ranked from
the most confident, at most MaxResults; with a MinConfidence, those at or above it (0: all
of them); without one, each label at or above its own *assumed threshold*. The assumed
threshold of a class is the Confidence cut with the best F1 on the test set
(:func:`assumed_thresholds`, computed at training and stored with the version); a class
without one (a version stored without thresholds) uses :data:`DEFAULT_THRESHOLD`.
Image-level classes have no Geometry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamproc.moderation.adapter import FeatureSource, VersionBackboneError, load_heads
from streamproc.training.classifier import KIND, class_confidences
from streamproc.training.errors import BackboneMismatchError
from streamproc.training.evaluation import best_threshold
from streamproc.training.heads import TrainedHeads

# Where a class has no measured threshold: the calibrated probabilities make 50 mean "more
# likely than not", the default the training's evaluation also uses.
DEFAULT_THRESHOLD = 50.0


@dataclass(frozen=True)
class CustomLabel:
    """One ``CustomLabel``: an image-level class and its Confidence (0-100)."""

    name: str
    confidence: float

    def wire(self) -> dict[str, object]:
        """The ``CustomLabel`` structure (Name, Confidence; no Geometry)."""
        return {"Name": self.name, "Confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class Classifier:
    """A trained Custom Labels version ready to serve: heads and assumed thresholds."""

    heads: TrainedHeads
    thresholds: Mapping[str, float]  # class -> assumed threshold (0-100); may be partial

    def threshold(self, name: str) -> float:
        """The class's assumed threshold (:data:`DEFAULT_THRESHOLD` when none is stored)."""
        return float(self.thresholds.get(name, DEFAULT_THRESHOLD))


def load_classifier(data: bytes, backbone: str,
                    thresholds: Mapping[str, float] | None = None) -> Classifier:
    """The classifier from its stored bytes; refused if trained on another backbone."""
    return Classifier(load_heads(data, backbone, KIND), dict(thresholds or {}))


def assumed_thresholds(heads: TrainedHeads, features: np.ndarray, truth: Sequence[str]
                       ) -> dict[str, float]:
    """Per class, the test-set Confidence cut with the best F1 (store it with the version)."""
    confidences = class_confidences(heads, features)
    actual = np.asarray(truth)
    return {name: best_threshold((actual == name).astype(np.float64), confidences[:, column])
            for column, name in enumerate(heads.labels)}


def ranked(names: Sequence[str], confidences: Sequence[float], classifier: Classifier,
           max_results: int | None, min_confidence: float | None) -> list[CustomLabel]:
    """One image's CustomLabels: the most confident first, filtered, at most MaxResults."""
    labels = sorted((CustomLabel(name, float(value))
                     for name, value in zip(names, confidences, strict=True)),
                    key=lambda label: (-label.confidence, label.name))
    kept = [label for label in labels if label.confidence >= (
        classifier.threshold(label.name) if min_confidence is None else min_confidence)]
    return kept if max_results is None else kept[:max_results]


class CustomLabelsModel:
    """Runs a Custom Labels classifier: one backbone run per image; no I/O."""

    def __init__(self, extractor: FeatureSource) -> None:
        self._extractor = extractor

    @property
    def backbone(self) -> str:
        """The running backbone: a classifier trained on another is refused."""
        return self._extractor.identity

    def detect_many(self, images: Sequence[np.ndarray], classifier: Classifier,
                    max_results: int | None = None, min_confidence: float | None = None
                    ) -> list[list[CustomLabel]]:
        """Every image's CustomLabels (see :func:`ranked`)."""
        heads = classifier.heads
        if heads.backbone != self.backbone:
            raise VersionBackboneError(BackboneMismatchError(heads.backbone, self.backbone))
        if not images:
            return []
        confidences = class_confidences(heads, self._extractor.extract(images).features)
        return [ranked(heads.labels, row.tolist(), classifier, max_results, min_confidence)
                for row in confidences]

    def detect(self, image: np.ndarray, classifier: Classifier,
               max_results: int | None = None, min_confidence: float | None = None
               ) -> list[CustomLabel]:
        """One image's DetectCustomLabels ``CustomLabels``."""
        (labels,) = self.detect_many([image], classifier, max_results, min_confidence)
        return labels
