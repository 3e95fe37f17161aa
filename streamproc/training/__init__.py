"""Training of small heads on frozen backbone features: adapters and Custom Labels classifiers.

numpy only, no I/O: the callers (projects, jobs) read manifests and images, extract features
(:mod:`streamproc.moderation.features`) and store the bytes this package serialises.

- :mod:`.limits`: the bounds of one training (images, iterations, a deadline) and the
  smallest usable dataset;
- :mod:`.logistic`: a class-balanced, L2-regularised logistic regression (Newton/IRLS);
- :mod:`.calibration`: Platt scaling of a head's score to a 0-100 Confidence;
- :mod:`.heads`: one calibrated head per label, trained with out-of-fold calibration;
- :mod:`.classifier`: one-vs-rest heads, normalised, for Custom Labels;
- :mod:`.serial`: a trained model as versioned bytes, pinned to its backbone;
- :mod:`.evaluation` and :mod:`.summaries`: counts, F1 and Rekognition's summary files.

Layer: beside faces and storage; imports numpy and the standard library only.
"""

from streamproc.training.errors import (
    BackboneMismatchError,
    HeadFormatError,
    TooFewImagesError,
    TooManyImagesError,
    TrainingDeadlineError,
    TrainingError,
    TrainingStopped,
)
from streamproc.training.heads import LabelHead, TrainedHeads, train_heads
from streamproc.training.limits import Deadline, TrainingLimits

__all__ = ["BackboneMismatchError", "Deadline", "HeadFormatError", "LabelHead",
           "TooFewImagesError", "TooManyImagesError", "TrainedHeads", "TrainingDeadlineError",
           "TrainingError", "TrainingLimits", "TrainingStopped", "train_heads"]
