"""The label stage: label-job frames through the label pack, behind the live processors.

A :class:`~streamproc.dataplane.stored.stages.StoredStage` over whole frames (stage name
:data:`LABELS`), built like the moderation stage: job launches put their sampled frames in a
:class:`~streamproc.dataplane.stored.background.BackgroundFeed`, the stage takes a batch from
its feeds in turn, runs the pack on each frame and hands each back to its owner as a
:class:`LabelAnalysis` with :meth:`~.background.BackgroundOwner.finish`.

The pack is asked for every label at :data:`FLOOR` or above: a stage serves launches with
different MinConfidence values and cannot know a frame's (the launch's builder filters at its
own, :mod:`.label_results`). A detection that raises fails only its frame's owner (its job
cannot be complete); the stage goes on.

Live stream processors go first: while a live frame is queued or being analysed
(:meth:`~.moderation_stage.LiveLoad.live_waiting`) the stage waits in short steps, before a
batch, between the frames of one and, with the pack (:class:`HeldClassifier`), between a
frame's two model calls, so a live frame waits for one model call at most; and while any
live session is attached a batch holds at most ``beside_live`` frames.

With ``classifier_interval_s`` above 0 (``jobs.label_classifier_interval_s``) and a detector
that can reuse whole-image classes (:class:`HeldClassifier`, the pack's), the classifier runs
on an owner's first frame and then on the first frame at least that many seconds of video
after the last one it ran on (or earlier in the video: a job that restarts); the frames
between get the detector's own boxes merged with the held classes. The held classes are kept
for the :data:`HELD_OWNERS` owners labelled most recently; an owner pushed out simply runs
the classifier on its next frame.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streamproc.dataplane.stored.background import BackgroundOwner
from streamproc.dataplane.stored.batch_stage import YIELD_S, BatchStage, LiveLoad
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.labels.detector import WholeImage
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.types import Label, LabelDetector

logger = logging.getLogger(__name__)
LABELS = "labels"  # the stage's name: a job kind's ``stage``, the supervisor's name for it
FLOOR = 0.0  # the lowest MinConfidence a label job may ask (StartLabelDetection: 0)
HELD_OWNERS = 64  # owners whose last whole-image classes are held (least recent dropped)
Item = tuple[BackgroundOwner["LabelAnalysis"], StoredFrame]


@runtime_checkable
class HeldClassifier(Protocol):
    """A label detector that can reuse one frame's whole-image classes for a later frame."""

    def detect_frame(self, image: npt.NDArray[np.uint8], min_confidence: float,
                     held: WholeImage | None, between: Callable[[], object] | None = None
                     ) -> tuple[tuple[Label, ...], WholeImage]:
        """Labels of ``image``, with ``held``'s classes where given; the classes used.

        ``between`` runs between the detector's two model calls (live frames go first).
        """
        ...


@dataclass(frozen=True)
class _Held:
    owner: object  # kept so that its id() is not reused while the entry exists
    whole: WholeImage
    timestamp_ms: int  # the frame the classifier ran on


@dataclass(frozen=True)
class LabelAnalysis:
    """The label stage's per-frame value: every label the pack found at :data:`FLOOR`."""

    labels: tuple[Label, ...]  # the pack's order: confidence, highest first

    @property
    def found(self) -> int:
        """Labels found (the jobs' per-frame metric)."""
        return len(self.labels)


class LabelStage(BatchStage["LabelAnalysis"]):
    """Takes job frames from its feeds in batches and labels each with the pack.

    ``detector`` None (no label pack): every frame fails its owner with LabelPackMissing's
    message. The job kind refuses such jobs first, so this is only the last guard.
    """

    def __init__(self, detector: LabelDetector | None, batch: int, live: LiveLoad,
                 yield_s: float = YIELD_S, classifier_interval_s: float = 0.0) -> None:
        super().__init__(LABELS, batch, live, yield_s)
        if classifier_interval_s < 0:
            msg = "classifier_interval_s must not be negative"
            raise ValueError(msg)
        self._interval_ms = classifier_interval_s * 1000
        self._held: OrderedDict[int, _Held] = OrderedDict()  # only the stage's thread uses it
        self._detector = detector

    def analyse(self, batch: list[Item]) -> None:
        """Label each frame in turn (live frames first between them); owners get the result."""
        for owner, frame in batch:
            self._live_first()
            self._label(owner, frame)

    def _live_first(self) -> None:
        """Wait, in short steps, while a live frame waits (or until the stage stops)."""
        while self._yield_to_live() and not self.stopping:
            self.beat()  # waiting on live work is not being stuck

    def _label(self, owner: BackgroundOwner[LabelAnalysis], frame: StoredFrame) -> None:
        if self._detector is None:
            owner.fail(LabelPackMissing().message)
            return
        try:
            # Stored frames are BGR (PyAV bgr24); the pack takes RGB.
            rgb = np.ascontiguousarray(frame.image[..., ::-1])
            labels = self._labels(owner, frame, rgb)
        except Exception as exc:
            # A model error loses this frame, so its job cannot be complete and fails; the
            # stage goes on with the next frame.
            logger.exception("%s: labelling a frame failed", owner.name)
            owner.fail(f"Analysing a frame failed: {type(exc).__name__}")
            return
        try:
            owner.finish(frame, LabelAnalysis(tuple(labels)))
        except Exception as exc:
            logger.exception("%s: building a frame's labels failed", owner.name)
            owner.fail(f"Analysing a frame failed: {type(exc).__name__}: {exc}")

    def _labels(self, owner: BackgroundOwner[LabelAnalysis], frame: StoredFrame,
                rgb: npt.NDArray[np.uint8]) -> tuple[Label, ...]:
        """The frame's labels, reusing the owner's held classes where the interval allows."""
        detector = self._detector
        assert detector is not None
        if not isinstance(detector, HeldClassifier):
            return detector.detect(rgb, FLOOR)
        if self._interval_ms <= 0:
            return detector.detect_frame(rgb, FLOOR, None, self._live_first)[0]
        held = self._held.pop(id(owner), None)
        if held is not None and \
                not 0 <= frame.timestamp_ms - held.timestamp_ms < self._interval_ms:
            held = None  # due again (or a frame earlier in the video: a restarted launch)
        labels, whole = detector.detect_frame(rgb, FLOOR, None if held is None else held.whole,
                                              self._live_first)
        ran_at = frame.timestamp_ms if held is None else held.timestamp_ms
        self._held[id(owner)] = _Held(owner, whole, ran_at)
        while len(self._held) > HELD_OWNERS:
            self._held.popitem(last=False)
        return labels
