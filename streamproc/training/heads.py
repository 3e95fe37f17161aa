"""One calibrated logistic head per label, trained on frozen features.

For each label: a class-balanced head learns the concept on standardised features (plus,
for adapters, the base model's score for that label as one more feature); its log-odds are
calibrated by Platt scaling on out-of-fold scores (``folds`` folds, split by ``groups`` so
that near-identical images, such as neighbouring video frames, never sit on both sides of a
fold); the head kept is then refitted on every image. Confidence = 100 x the calibrated
probability, so a ConfidenceThreshold means what it says.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamproc.training.calibration import Platt, fit_platt
from streamproc.training.errors import TooFewImagesError, TooManyImagesError, TrainingError
from streamproc.training.folds import assign_folds
from streamproc.training.limits import Deadline, TrainingLimits
from streamproc.training.logistic import FloatArray, LinearFit, Standardiser, fit_logistic

_SCORE_CLIP = 1e-4  # base scores of exactly 0 or 1 become finite log-odds


@dataclass(frozen=True)
class LabelHead:
    """A trained, calibrated head for one label."""

    label: str
    standardiser: Standardiser
    fit: LinearFit
    platt: Platt
    uses_base: bool  # the base model's score for this label is the last feature

    def decision(self, features: FloatArray, base: FloatArray | None = None) -> FloatArray:
        """Uncalibrated log-odds per image."""
        design = with_base(features, base if self.uses_base else None)
        return self.fit.decision(self.standardiser.apply(design))

    def confidence(self, features: FloatArray, base: FloatArray | None = None) -> FloatArray:
        """Calibrated Confidence (0-100) per image."""
        if self.uses_base and base is None:
            msg = f"head {self.label!r} needs the base model's scores"
            raise ValueError(msg)
        return self.platt.confidence(self.decision(features, base))


@dataclass(frozen=True)
class TrainedHeads:
    """Every label's head, the kind of model and the backbone its features came from."""

    kind: str  # "adapter" or "classifier"
    backbone: str  # FeatureExtractor.identity of the features it was trained on
    heads: tuple[LabelHead, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels, in training order."""
        return tuple(head.label for head in self.heads)

    def confidences(self, features: FloatArray, base: Mapping[str, FloatArray] | None = None
                    ) -> dict[str, FloatArray]:
        """Label -> Confidence (0-100) per image."""
        return {head.label: head.confidence(features, None if base is None else
                                            base.get(head.label)) for head in self.heads}


def with_base(features: FloatArray, base: FloatArray | None) -> FloatArray:
    """The features, with the base score's log-odds appended as a column when given."""
    x = np.asarray(features, dtype=np.float64)
    if base is None:
        return x
    p = np.clip(np.asarray(base, dtype=np.float64), _SCORE_CLIP, 1 - _SCORE_CLIP)
    return np.hstack([x, np.log(p / (1 - p))[:, None]])


def check_counts(label: str, targets: FloatArray, minimum: int) -> None:
    """Refuse a label with fewer than ``minimum`` positives or negatives."""
    positives = int(np.count_nonzero(targets > 0.5))
    negatives = len(targets) - positives
    if positives < minimum or negatives < minimum:
        raise TooFewImagesError(label, positives, negatives, minimum)


def train_heads(features: FloatArray, targets: Mapping[str, FloatArray], backbone: str, *,
                base: Mapping[str, FloatArray] | None = None,
                groups: Sequence[Hashable] | None = None, kind: str = "adapter",
                limits: TrainingLimits | None = None, deadline: Deadline | None = None
                ) -> TrainedHeads:
    """Train one calibrated head per label of ``targets`` (label -> 0/1 per image).

    ``base`` (label -> the base model's score in [0, 1] per image) adds that score as a
    feature of the label's head. ``groups`` (one key per image: its clip, time block or
    source file) keeps related images in one calibration fold. Raises
    :class:`TooFewImagesError`, :class:`TooManyImagesError`, TrainingDeadlineError or
    TrainingStopped (``deadline``'s stop signal: checked before each head and each fit).
    """
    limits = limits or TrainingLimits()
    deadline = deadline or Deadline(limits.seconds)
    x = np.asarray(features, dtype=np.float64)
    if len(x) > limits.max_images:
        raise TooManyImagesError(len(x), limits.max_images)
    keys: Sequence[Hashable] = groups if groups is not None else range(len(x))
    heads = []
    for label, raw in targets.items():
        deadline.check()
        y = (np.asarray(raw, dtype=np.float64) > 0.5).astype(np.float64)
        check_counts(label, y, limits.min_per_class)
        extra = None if base is None else base.get(label)
        heads.append(_train_one(label, with_base(x, extra), y, keys, extra is not None,
                                limits, deadline))
    return TrainedHeads(kind=kind, backbone=backbone, heads=tuple(heads))


def _train_one(label: str, design: FloatArray, y: FloatArray, groups: Sequence[Hashable],
               uses_base: bool, limits: TrainingLimits, deadline: Deadline) -> LabelHead:
    folds = assign_folds(groups, y, limits.folds)
    held_out = np.empty(len(y))
    for fold in np.unique(folds):
        deadline.check()
        inside = folds != fold
        if not inside.any() or y[inside].min() == y[inside].max():
            msg = (f"label {label!r}: every image with (or without) it is in one group, so "
                   "none is left to calibrate on; add images from more sources")
            raise TrainingError(msg)
        standardiser = Standardiser.fit(design[inside])
        fit = fit_logistic(standardiser.apply(design[inside]), y[inside], limits.l2,
                           limits.max_iterations, deadline)
        held_out[~inside] = fit.decision(standardiser.apply(design[~inside]))
    platt = fit_platt(held_out, y)
    standardiser = Standardiser.fit(design)
    fit = fit_logistic(standardiser.apply(design), y, limits.l2, limits.max_iterations,
                       deadline)
    return LabelHead(label, standardiser, fit, platt, uses_base)
