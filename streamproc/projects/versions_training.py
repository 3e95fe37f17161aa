"""One version's training, start to end: images, features, heads, evaluation, outputs.

Runs on the training runner's thread (:mod:`streamproc.daemon.training`), never on an API
thread. Images are read and decoded by ``read_image`` (the API's image loader: the same
bucket allowlist and pixel limits); an image that cannot be read is counted (the manifest
summary lists it) and skipped, and the training fails only when too few usable ones remain
(:class:`streamproc.training.TooFewImagesError`). Features come from the open_nsfw backbone
(:mod:`streamproc.moderation.features`), ``projects.training_batch`` images at a time or
fewer (:data:`BATCH_BYTES` of pixels), so memory holds one bounded batch of pixels and then
only features. Adapters train one head per
top-level label named in the manifests with the base model's Confidence for that label as
one more feature; both come from one model run per image,
:meth:`streamproc.moderation.adapter.AdapterModerator.inputs`, the definition serving uses
too. Custom Labels train a one-vs-rest classifier; its assumed thresholds
(:func:`streamproc.moderation.custom_labels.assumed_thresholds`, on the test set) go into
the version's result as ``AssumedThresholds``, recorded by the same command as the model.
The result is the :class:`SetVersionStatus` that ends the training, the model's bytes
inside it. A stop (the runner's event) is seen at the next batch, label or Newton step
(the training's :class:`~streamproc.training.Deadline` watches it) and raises
:class:`~streamproc.training.errors.TrainingStopped`: nothing is returned to record, and
nothing is written to the output bucket once it is set.

Live stream processors go first, as they do in the moderation stage
(:mod:`streamproc.dataplane.stored.moderation_stage`): before each model call the trainer
waits, in short steps, while a live frame is queued or being analysed
(:meth:`LiveLoad.live_waiting`), and while any live session is attached a batch holds at
most ``beside_live`` images (``jobs.batch_frames_beside_live``), so a live frame that
arrives meanwhile competes with one small model call at most. The wait counts against
``projects.training_deadline_s``: a server kept busy by live streams can fail a training
with the deadline's reason. The heads' training after it (numpy, seconds) does not yield.

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
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streamproc.config import ProjectsConfig
from streamproc.errors import StreamprocError
from streamproc.moderation.adapter import AdapterInputs
from streamproc.moderation.custom_labels import assumed_thresholds
from streamproc.moderation.features import FeatureBatch
from streamproc.projects.types import Feature
from streamproc.projects.version_spec import DEFAULT_CONFIDENCE_THRESHOLD
from streamproc.projects.versions import Version, VersionStatus
from streamproc.projects.versions_commands import SetVersionStatus
from streamproc.projects.versions_inputs import Gathered, InputReader, Sample, TrainingFailure
from streamproc.projects.versions_outputs import OutputWriter, Predictions
from streamproc.storage.object_keys import ObjectRef
from streamproc.training import Deadline, TrainingError, TrainingLimits, serial
from streamproc.training.classifier import class_confidences, train_classifier
from streamproc.training.errors import TrainingStopped
from streamproc.training.folds import assign_folds
from streamproc.training.heads import TrainedHeads, train_heads
from streamproc.training.summaries import Details, LabelScores, adapter_f1

# A batch is run as soon as its decoded pixels reach this, however few images it holds: the
# models see each image as decoded (serving's own pre-processing, exactly), and memory
# holds at most this plus one image (16 decoded 6000x6000 PNGs would be 1.7 GB).
BATCH_BYTES = 64 * 1024 * 1024


class Features(Protocol):
    """The backbone: its identity and its features (a loaded FeatureExtractor)."""

    @property
    def identity(self) -> str:
        """Names the model file, tensor and pre-processing."""

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        """Features and nsfw scores per image."""


# Per image, the backbone's features and the base model's labels, from one model run
# (AdapterModerator.inputs): what an adapter trains on.
AdapterInputsOf = Callable[[Sequence[np.ndarray]], AdapterInputs]
THRESHOLDS = "AssumedThresholds"  # result key: a Custom Labels version's class -> threshold
GROUP_KEY = "group"  # an optional manifest attribute: the image's calibration group
# Numbered images (video frames) per calibration group when a line names none: 8 frames
# are 0.3 s at 25 fps, about as far apart as two frames still look alike.
FRAME_BLOCK = 8
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\.[^./]*)?$")
YIELD_S = 0.02  # one wait while a live frame is waiting (then the trainer looks again)


class LiveLoad(Protocol):
    """What the trainer asks of the live side (the data plane) before each model call."""

    def live_attached(self) -> bool:
        """Whether any live session is attached (batches are then at most ``beside_live``)."""

    def live_waiting(self) -> bool:
        """Whether a live frame is queued or being analysed (the trainer then waits)."""


class NoLive:
    """No live side (a trainer outside the daemon, a test): never waits."""

    def live_attached(self) -> bool:
        """Never attached."""
        return False

    def live_waiting(self) -> bool:
        """Never waiting."""
        return False


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


@dataclass(frozen=True)
class Encoded:
    """One set's images as features: those that could be read, and the ones that could not."""

    samples: list[Sample]
    inputs: AdapterInputs  # base labels only for an adapter (empty for Custom Labels)
    unreadable: list[dict[str, Any]]

    @property
    def features(self) -> np.ndarray:
        """The backbone features (n x dimensions) of the readable images."""
        return self.inputs.features

    def base(self, labels: Sequence[str]) -> dict[str, np.ndarray]:
        """Label -> the base model's Confidence (0-100) per image."""
        return {label: values * 100.0
                for label, values in self.inputs.base_scores(labels).items()}


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
        self._read = read_image
        self._adapter_inputs = adapter_inputs
        self._config = config
        self._clock = clock
        self._batch_bytes = batch_bytes
        self._live = live or NoLive()
        self._beside_live = max(1, beside_live)
        self._yield_s = yield_s

    def train(self, version: Version, arn: str, stop: threading.Event) -> SetVersionStatus:
        """The command that ends ``version``'s training, COMPLETED or FAILED with why.

        Raises TrainingStopped once ``stop`` is set: the training is not over, only cut.
        """
        started = self._clock()
        try:
            result, model = self._run(version, arn, stop)
        except TrainingStopped:
            raise
        except (TrainingFailure, TrainingError) as error:
            return self._end(version, VersionStatus.TRAINING_FAILED, str(error), started)
        return self._end(version, VersionStatus.TRAINING_COMPLETED, "The model is trained",
                         started, result, model)

    def _end(self, version: Version, status: VersionStatus, message: str, started: float,
             result: dict[str, Any] | None = None, model: bytes | None = None
             ) -> SetVersionStatus:
        now = self._clock()
        timing = {"BillableTrainingTimeInSeconds": max(1, round(now - started)),
                  "TrainingEndTimestamp": now}
        return SetVersionStatus(version.ref, status, message, int(now * 1000),
                                {**(result or {}), **timing}, model)

    def _run(self, version: Version, arn: str, stop: threading.Event
             ) -> tuple[dict[str, Any], bytes]:
        deadline = Deadline(self._config.training_deadline_s, stopped=stop.is_set)
        gathered = self._inputs.gather(version, stop, deadline)
        total = len(gathered.train) + len(gathered.test)
        if total > self._config.training_max_images:
            msg = (f"{total} images is more than one training takes "
                   f"(projects.training_max_images: {self._config.training_max_images})")
            raise TrainingFailure(msg)
        adapter = version.feature is Feature.CONTENT_MODERATION
        train = self._encode(gathered.train, adapter, deadline, stop)
        test = self._encode(gathered.test, adapter, deadline, stop)
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

    def _encode(self, samples: list[Sample], adapter: bool, deadline: Deadline,
                stop: threading.Event) -> Encoded:
        """Features of the readable images, a batch at a time (a stop is seen per image)."""
        kept: list[Sample] = []
        runs: list[AdapterInputs] = []
        unreadable: list[dict[str, Any]] = []
        images: list[np.ndarray] = []
        for sample in samples:
            deadline.check()  # and the stop
            image = self._image(sample, unreadable)
            if image is None:
                continue
            images.append(image)
            kept.append(sample)
            if len(images) >= self._batch_size() or \
                    sum(i.nbytes for i in images) >= self._batch_bytes:
                runs.append(self._inputs_of(images, adapter, deadline, stop))
                images = []
        if images:
            runs.append(self._inputs_of(images, adapter, deadline, stop))
        return Encoded(kept, _joined(runs), unreadable)

    def _batch_size(self) -> int:
        """The images one model call takes: fewer while a live session is attached."""
        if self._live.live_attached():
            return min(self._beside_live, self._config.training_batch)
        return self._config.training_batch

    def _after_live(self, deadline: Deadline, stop: threading.Event) -> None:
        """Return once no live frame waits; a stop or the deadline ends the wait (raises)."""
        while self._live.live_waiting():
            deadline.check()
            stop.wait(self._yield_s)  # a stop ends the step at once; check() then raises
        deadline.check()

    def _inputs_of(self, images: list[np.ndarray], adapter: bool, deadline: Deadline,
                   stop: threading.Event) -> AdapterInputs:
        self._after_live(deadline, stop)
        return self._adapter_inputs(images) if adapter else \
            AdapterInputs(self._features.extract(images).features, ())

    def _image(self, sample: Sample, unreadable: list[dict[str, Any]]) -> np.ndarray | None:
        ref = _ref(sample.source_ref)
        try:
            return self._read(ref)
        except (StreamprocError, OSError, ValueError) as error:
            message = error.message if isinstance(error, StreamprocError) else str(error)
            unreadable.append({"source-ref": sample.source_ref, "code": "ERROR_INVALID_IMAGE",
                               "message": message})
            return None

    def _adapter(self, version: Version, gathered: Gathered, train: Encoded, test: Encoded,
                 limits: TrainingLimits, deadline: Deadline, details: Details
                 ) -> tuple[dict[str, Any], bytes]:
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
        written = self._outputs.adapter(version, details, threshold, scores, Predictions(
            gathered, train.samples, test.samples, conf, test_base,
            train.unreadable + test.unreadable))
        result = {**written, "EvaluationResult": {**written["EvaluationResult"],
                                                  "F1Score": adapter_f1(scores, threshold)}}
        return result, serial.dumps(model)

    def _classifier(self, version: Version, gathered: Gathered, train: Encoded,
                    test: Encoded, limits: TrainingLimits, deadline: Deadline,
                    details: Details) -> tuple[dict[str, Any], bytes]:
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
        return {**written, THRESHOLDS: thresholds}, serial.dumps(model)


def _ref(source_ref: str) -> ObjectRef:
    bucket, _, key = source_ref.removeprefix("s3://").partition("/")
    return ObjectRef(bucket, key)


def _truth(samples: list[Sample], label: str) -> np.ndarray:
    return np.array([float(label in s.labels) for s in samples])


def _joined(runs: list[AdapterInputs]) -> AdapterInputs:
    """One set's batches as one: features stacked, base labels in order."""
    if not runs:
        return AdapterInputs(np.zeros((0, 1), np.float32), ())
    return AdapterInputs(np.concatenate([run.features for run in runs]),
                         tuple(analysis for run in runs for analysis in run.base))
