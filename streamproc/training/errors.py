"""Why a training or a stored head cannot be used; each message is the StatusMessage to show."""

from __future__ import annotations


class TrainingError(Exception):
    """A training that cannot complete; ``str(error)`` is the one-line reason."""


class TooFewImagesError(TrainingError):
    """A label has too few positive or negative images to train and calibrate a head."""

    def __init__(self, label: str, positives: int, negatives: int, minimum: int) -> None:
        self.label, self.positives, self.negatives = label, positives, negatives
        self.minimum = minimum
        super().__init__(
            f"too few usable images for label {label!r}: {positives} with it and "
            f"{negatives} without it; training needs at least {minimum} of each")


class TooManyImagesError(TrainingError):
    """More images than the configured maximum for one training."""

    def __init__(self, images: int, maximum: int) -> None:
        self.images, self.maximum = images, maximum
        super().__init__(f"{images} training images is more than the maximum of {maximum}")


class TrainingDeadlineError(TrainingError):
    """The training ran past its deadline and was abandoned."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"training did not finish within its limit of {seconds:g} s")


class TrainingStopped(TrainingError):
    """The training was stopped (its runner is shutting down) before it finished."""

    def __init__(self) -> None:
        super().__init__("the training was stopped (the server is shutting down)")


class HeadFormatError(ValueError):
    """Bytes that are not a head this version can read (damaged, or another format)."""


class BackboneMismatchError(ValueError):
    """A head trained on another feature extractor than the one running."""

    def __init__(self, trained: str, running: str) -> None:
        self.trained, self.running = trained, running
        super().__init__(
            f"this model version was trained on backbone {trained}, but the server runs "
            f"{running}; train a new version on the current moderation pack")
