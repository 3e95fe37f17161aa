"""Calibration folds that keep a group (a clip, a time block, one file's sizes) together."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from streamproc.training.logistic import FloatArray


def assign_folds(groups: Sequence[Hashable], targets: FloatArray, folds: int) -> np.ndarray:
    """A fold number per image; groups are dealt round-robin by their share of positives.

    Dealing groups in order of their positive share spreads positives over every fold
    (stratification by group), and is deterministic: no random state to store or seed.
    """
    keys = [repr(group) for group in groups]
    share: dict[str, list[float]] = {}
    for key, target in zip(keys, targets, strict=True):
        share.setdefault(key, []).append(float(target))
    order = sorted(share, key=lambda key: (float(np.mean(share[key])), key))
    count = max(2, min(folds, len(order)))
    fold_of = {key: index % count for index, key in enumerate(order)}
    return np.array([fold_of[key] for key in keys], dtype=np.int64)
