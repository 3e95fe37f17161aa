"""A training's images as features: read, decoded, batched, yielding to live streams.

Images are read and decoded by ``read_image`` (the API's image loader: the same bucket
allowlist and pixel limits); an image that cannot be read is counted (the manifest summary
lists it) and skipped. Features come from the open_nsfw backbone
(:mod:`streamproc.moderation.features`), ``projects.training_batch`` images at a time or
fewer (:data:`BATCH_BYTES` of pixels), so memory holds one bounded batch of pixels and then
only features. An adapter's inputs (the backbone's features and the base model's labels)
come from one model run per image, :meth:`streamproc.moderation.adapter.AdapterModerator.inputs`,
the definition serving uses too.

Live stream processors go first, as they do in the moderation stage
(:mod:`streamproc.dataplane.stored.moderation_stage`): before each model call the encoder
waits, in short steps, while a live frame is queued or being analysed
(:meth:`LiveLoad.live_waiting`), and while any live session is attached a batch holds at
most ``beside_live`` images (``jobs.batch_frames_beside_live``), so a live frame that
arrives meanwhile competes with one small model call at most. The wait counts against the
training's :class:`~streamproc.training.Deadline`, which also watches the stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streamproc.errors import StreamprocError
from streamproc.moderation.adapter import AdapterInputs
from streamproc.moderation.features import FeatureBatch
from streamproc.projects.versions_inputs import Sample
from streamproc.storage.object_keys import ObjectRef
from streamproc.training import Deadline

# A batch is run as soon as its decoded pixels reach this, however few images it holds: the
# models see each image as decoded (serving's own pre-processing, exactly), and memory
# holds at most this plus one image (16 decoded 6000x6000 PNGs would be 1.7 GB).
BATCH_BYTES = 64 * 1024 * 1024
YIELD_S = 0.02  # one wait while a live frame is waiting (then the encoder looks again)


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


@dataclass(frozen=True)
class Batching:
    """How images are batched: ``batch`` (``batch_bytes`` of pixels), fewer beside live."""

    batch: int
    batch_bytes: int = BATCH_BYTES
    beside_live: int = 8
    yield_s: float = YIELD_S


class ImageEncoder:
    """Turns a set's samples into :class:`Encoded` features (no I/O in the constructor)."""

    def __init__(self, features: Features, read_image: Callable[[ObjectRef], np.ndarray],
                 adapter_inputs: AdapterInputsOf, batching: Batching,
                 live: LiveLoad | None = None) -> None:
        self._features = features
        self._read = read_image
        self._adapter_inputs = adapter_inputs
        self._batching = batching
        self._live = live or NoLive()

    def encode(self, samples: list[Sample], adapter: bool, deadline: Deadline,
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
                    sum(i.nbytes for i in images) >= self._batching.batch_bytes:
                runs.append(self._inputs_of(images, adapter, deadline, stop))
                images = []
        if images:
            runs.append(self._inputs_of(images, adapter, deadline, stop))
        return Encoded(kept, _joined(runs), unreadable)

    def _batch_size(self) -> int:
        """The images one model call takes: fewer while a live session is attached."""
        batch = self._batching.batch
        if self._live.live_attached():
            return min(max(1, self._batching.beside_live), batch)
        return batch

    def _after_live(self, deadline: Deadline, stop: threading.Event) -> None:
        """Return once no live frame waits; a stop or the deadline ends the wait (raises)."""
        while self._live.live_waiting():
            deadline.check()
            stop.wait(self._batching.yield_s)  # a stop ends the step at once; check() raises
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


def _ref(source_ref: str) -> ObjectRef:
    bucket, _, key = source_ref.removeprefix("s3://").partition("/")
    return ObjectRef(bucket, key)


def _joined(runs: list[AdapterInputs]) -> AdapterInputs:
    """One set's batches as one: features stacked, base labels in order."""
    if not runs:
        return AdapterInputs(np.zeros((0, 1), np.float32), ())
    return AdapterInputs(np.concatenate([run.features for run in runs]),
                         tuple(analysis for run in runs for analysis in run.base))
