"""The bounds of one training: how many images, Newton iterations and seconds it may use."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from streamproc.training.errors import TrainingDeadlineError, TrainingStopped

# Each label needs this many images with it and without it. Calibration fits Platt's two
# parameters on out-of-fold scores over CALIBRATION_FOLDS folds, so every fold then holds
# at least three of each class; with fewer, one image moves a held-out recall by over 10
# points and the calibrated Confidence is noise. It is also Custom Labels' documented floor
# ("use at least 10 images to train your model").
MIN_PER_CLASS = 10
CALIBRATION_FOLDS = 3


@dataclass(frozen=True)
class TrainingLimits:
    """What one training may use; the defaults suit Rekognition's 10,000-image datasets."""

    max_images: int = 10_000
    max_iterations: int = 50  # Newton steps per fit (L2-regularised: ~10 usually suffice)
    seconds: float = 600.0
    min_per_class: int = MIN_PER_CLASS
    folds: int = CALIBRATION_FOLDS
    l2: float = 1.0  # penalty on standardised weights, as scikit-learn's C=1/l2


class Deadline:
    """A point in time after which :meth:`check` raises; the clock is injectable for tests.

    ``stopped`` (e.g. a runner's ``stop_event.is_set``) ends the training too: every loop
    that checks the deadline (each Newton step, each label's head) then stops within one
    step, with :class:`TrainingStopped`, so a shutdown never waits out a long fit.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic,
                 stopped: Callable[[], bool] | None = None) -> None:
        self.seconds = seconds
        self._clock = clock
        self._stopped = stopped
        self._end = clock() + seconds

    def check(self) -> None:
        """Raise TrainingStopped once stopped, :class:`TrainingDeadlineError` once past."""
        if self._stopped is not None and self._stopped():
            raise TrainingStopped()
        if self._clock() > self._end:
            raise TrainingDeadlineError(self.seconds)
