"""One version's training, start to end: inputs, features, heads, evaluation, outputs.

Runs on the training runner's thread (:mod:`streamproc.daemon.training`), never on an API
thread. The images become features in :mod:`.versions_encoding` (bounded batches, live
streams first); the training fails only when too few usable images remain
(:class:`streamproc.training.TooFewImagesError`). Adapters train one head per top-level
label named in the manifests with the base model's Confidence for that label as one more
feature. Custom Labels train a one-vs-rest classifier; its assumed thresholds
(:func:`streamproc.moderation.custom_labels.assumed_thresholds`, on the test set) go into
the version's outcome (:class:`~.version_result.TrainingOutcome`), recorded by the same
command as the model. The result is the :class:`SetVersionStatus` that ends the training,
the model's bytes inside it. A stop (the runner's event) is seen at the next batch, label
or Newton step (the training's :class:`~streamproc.training.Deadline` watches it) and raises
:class:`~streamproc.training.errors.TrainingStopped`: nothing is returned to record, and
nothing is written to the output bucket once it is set. Waiting for live frames counts
against ``projects.training_deadline_s``: a server kept busy by live streams can fail a
training with the deadline's reason. The heads' training after it (numpy, seconds) does
not yield.

Calibration groups (:func:`calibration_group`): the Platt folds keep each group on one
side, so near-identical images (neighbouring video frames) do not calibrate each other. An
image's group is its manifest line's optional ``"group"`` attribute, else its source-ref
with a trailing frame number in blocks of :data:`FRAME_BLOCK`
(``s3://b/clip/frame-000017.jpg`` is in ``s3://b/clip/frame-#2``), else its own source-ref;
when those groups leave a label nothing to calibrate on, each image is its own group
(:func:`training_groups`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from streamproc.config import ProjectsConfig
from streamproc.moderation.custom_labels import assumed_thresholds
from streamproc.projects.types import Feature
from streamproc.projects.version_result import TrainingOutcome
from streamproc.projects.version_spec import DEFAULT_CONFIDENCE_THRESHOLD
from streamproc.projects.versions import Version, VersionStatus
from streamproc.projects.versions_commands import SetVersionStatus
from streamproc.projects.versions_encoding import (
    BATCH_BYTES,
    YIELD_S,
    AdapterInputsOf,
    Batching,
    Encoded,
    Features,
    ImageEncoder,
    LiveLoad,
    NoLive,
)
from streamproc.projects.versions_inputs import Gathered, InputReader, Sample, TrainingFailure
from streamproc.projects.versions_outputs import OutputWriter, Predictions
from streamproc.storage.object_keys import ObjectRef
from streamproc.training import Deadline, TrainingError, TrainingLimits, serial
from streamproc.training.classifier import class_confidences, train_classifier
from streamproc.training.errors import TrainingStopped
from streamproc.training.folds import assign_folds
from streamproc.training.heads import TrainedHeads, train_heads
from streamproc.training.summaries import Details, LabelScores, adapter_f1

# Re-exported: the daemon and tests import them from here.
__all__ = ["BATCH_BYTES", "YIELD_S", "AdapterInputsOf", "Encoded", "Features", "LiveLoad",
           "NoLive", "VersionTrainer", "calibration_group", "calibration_groups",
           "threshold_of", "training_groups"]
GROUP_KEY = "group"  # an optional manifest attribute: the image's calibration group
# Numbered images (video frames) per calibration group when a line names none: 8 frames
# are 0.3 s at 25 fps, about as far apart as two frames still look alike.
FRAME_BLOCK = 8
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\.[^./]*)?$")


def calibration_group(sample: Sample) -> str:
    """The image's calibration group: its line's ``"group"``, its frame block, or itself."""
    try:
        line = json.loads(sample.line)
    except ValueError:
        line = None
    own = line.get(GROUP_KEY) if isinstance(line, dict) else None
    if isinstance(own, str | int) and not isinstance(own, bool):
        return f"group:{own}"
    folder, _, name = sample.source_ref.rpartition("/")
    numbered = _NUMBERED.match(name)
    if numbered is None:
        return f"ref:{sample.source_ref}"
    block = int(numbered["number"]) // FRAME_BLOCK
    return f"ref:{folder}/{numbered['prefix']}#{block}{numbered['suffix'] or ''}"


def calibration_groups(samples: Sequence[Sample]) -> list[str]:
    """:func:`calibration_group` of each sample, in order."""
    return [calibration_group(sample) for sample in samples]


def training_groups(samples: Sequence[Sample], targets: Mapping[str, np.ndarray],
                    folds: int) -> list[str]:
    """The groups train_heads is given: the derived ones, or one an image when they fail.

    Derived groups that leave some fold with no image with (or without) a label to fit on
    (a label's images all from one clip) cannot calibrate it; rather than fail a training
    that names no group, each image is then its own group (the calibration may be
    over-confident, as it is for any training without groups).
    """
    groups = calibration_groups(samples)
    for raw in targets.values():
        y = (np.asarray(raw, dtype=np.float64) > 0.5).astype(np.float64)
        fold = assign_folds(groups, y, folds)
        for one in np.unique(fold):
            inside = y[fold != one]
            if not inside.size or inside.min() == inside.max():
                return [f"image:{i}" for i in range(len(samples))]
    return groups


def threshold_of(version: Version) -> float:
    """An adapter's ConfidenceThreshold (FeatureConfig), or the default."""
    adapter = version.adapter
    return float(DEFAULT_CONFIDENCE_THRESHOLD if adapter is None else adapter.threshold)


class VersionTrainer:
    """Trains one version at a time; holds the loaded backbone (no I/O in the constructor)."""

    def __init__(self, inputs: InputReader, outputs: OutputWriter, features: Features,
                 read_image: Callable[[ObjectRef], np.ndarray],
                 adapter_inputs: AdapterInputsOf,
                 config: ProjectsConfig, clock: Callable[[], float] = time.time,
                 batch_bytes: int = BATCH_BYTES, live: LiveLoad | None = None,
                 beside_live: int = 8, yield_s: float = YIELD_S) -> None:
        self._inputs = inputs
        self._outputs = outputs
        self._features = features
        self._encoder = ImageEncoder(features, read_image, adapter_inputs, Batching(
            config.training_batch, batch_bytes, beside_live, yield_s), live)
        self._config = config
        self._clock = clock

    def train(self, version: Version, arn: str, stop: threading.Event) -> SetVersionStatus:
        """The command that ends ``version``'s training, COMPLETED or FAILED with why.

        Raises TrainingStopped once ``stop`` is set: the training is not over, only cut.
        """
        started = self._clock()
        try:
            outcome, model = self._run(version, arn, stop)
        except TrainingStopped:
            raise
        except (TrainingFailure, TrainingError) as error:
            return self._end(version, VersionStatus.TRAINING_FAILED, str(error), started)
        return self._end(version, VersionStatus.TRAINING_COMPLETED, "The model is trained",
                         started, outcome, model)

    def _end(self, version: Version, status: VersionStatus, message: str, started: float,
             outcome: TrainingOutcome | None = None, model: bytes | None = None
             ) -> SetVersionStatus:
        now = self._clock()
        timed = replace(outcome or TrainingOutcome(), billable_s=max(1, round(now - started)),
                        ended_at=now)
        return SetVersionStatus(version.ref, status, message, int(now * 1000), timed, model)

    def _run(self, version: Version, arn: str, stop: threading.Event
             ) -> tuple[TrainingOutcome, bytes]:
        deadline = Deadline(self._config.training_deadline_s, stopped=stop.is_set)
        gathered = self._inputs.gather(version, stop, deadline)
        total = len(gathered.train) + len(gathered.test)
        if total > self._config.training_max_images:
            msg = (f"{total} images is more than one training takes "
                   f"(projects.training_max_images: {self._config.training_max_images})")
            raise TrainingFailure(msg)
        adapter = version.feature is Feature.CONTENT_MODERATION
        train = self._encoder.encode(gathered.train, adapter, deadline, stop)
        test = self._encoder.encode(gathered.test, adapter, deadline, stop)
        limits = TrainingLimits(max_images=self._config.training_max_images,
                                seconds=self._config.training_deadline_s,
                                min_per_class=self._config.training_min_per_class)
        if not test.samples:
            msg = "none of the test images could be read"
            raise TrainingFailure(msg)
        details = Details(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self._clock())), (),
                          len(test.samples), len(train.samples), arn)
        if adapter:
            return self._adapter(version, gathered, train, test, limits, deadline, details)
        return self._classifier(version, gathered, train, test, limits, deadline, details)

    def _adapter(self, version: Version, gathered: Gathered, train: Encoded, test: Encoded,
                 limits: TrainingLimits, deadline: Deadline, details: Details
                 ) -> tuple[TrainingOutcome, bytes]:
        labels = sorted({label for s in train.samples for label in s.labels})
        if not labels:
            msg = "the training images name no moderation label: an adapter learns at least one"
            raise TrainingFailure(msg)
        targets = {label: _truth(train.samples, label) for label in labels}
        base = train.inputs.base_scores(labels)
        groups = training_groups(train.samples, targets, limits.folds)
        model = train_heads(train.features, targets, self._features.identity, base=base,
                            groups=groups, limits=limits, deadline=deadline)
        test_base = test.base(labels)
        conf = model.confidences(test.features, {k: v / 100.0 for k, v in test_base.items()})
        scores = [LabelScores(label, _truth(test.samples, label), test_base[label], conf[label])
                  for label in labels]
        threshold = threshold_of(version)
        details = Details(details.end_timestamp, tuple(labels), details.testing_images,
                          details.training_images, details.version_arn)
        deadline.check()  # a stop seen now writes no output
        outcome = self._outputs.adapter(version, details, threshold, scores, Predictions(
            gathered, train.samples, test.samples, conf, test_base,
            train.unreadable + test.unreadable), adapter_f1(scores, threshold))
        return outcome, serial.dumps(model)

    def _classifier(self, version: Version, gathered: Gathered, train: Encoded,
                    test: Encoded, limits: TrainingLimits, deadline: Deadline,
                    details: Details) -> tuple[TrainingOutcome, bytes]:
        classes = [s.labels[0] for s in train.samples]
        if len(set(classes)) < 2:
            msg = f"a Custom Labels model needs at least two classes; the images have {classes[:1]}"
            raise TrainingFailure(msg)
        groups = training_groups(train.samples, {name: np.array(
            [float(c == name) for c in classes]) for name in set(classes)}, limits.folds)
        model: TrainedHeads = train_classifier(train.features, classes,
                                               self._features.identity, groups=groups,
                                               limits=limits, deadline=deadline)
        conf = class_confidences(model, test.features)
        truth = [s.labels[0] for s in test.samples]
        predicted = [model.labels[int(i)] for i in np.argmax(conf, axis=1)]
        thresholds = assumed_thresholds(model, test.features, truth)
        cuts = [thresholds[name] for name in model.labels]
        details = Details(details.end_timestamp, model.labels, details.testing_images,
                          details.training_images, details.version_arn)
        deadline.check()  # a stop seen now writes no output
        written = self._outputs.classifier(version, details, truth, predicted, conf,
                                           list(model.labels), cuts, gathered,
                                           train.unreadable + test.unreadable)
        return replace(written, assumed_thresholds=tuple(thresholds.items())), \
            serial.dumps(model)


def _truth(samples: list[Sample], label: str) -> np.ndarray:
    return np.array([float(label in s.labels) for s in samples])
