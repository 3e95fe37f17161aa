"""The person stage: person-tracking frames through the label pack and the face detector.

A :class:`~streamproc.dataplane.stored.stages.StoredStage` (stage name :data:`PERSONS`) built
like the moderation stage: launches put their sampled frames in a
:class:`~streamproc.dataplane.stored.background.BackgroundFeed`, the stage takes a batch from
its feeds in turn and hands each frame back to its owner as a :class:`PersonAnalysis`: the
pack's ``Person`` instances (boxes) at :data:`FLOOR` or above, and the frame's faces (one
``detect_many`` call per batch), which the launch's builder tracks and pairs
(:mod:`.person_results`). The threshold a person must reach is the builder's, so the stage
asks the pack for every box.

Live stream processors go first: while a live frame waits (:meth:`.LiveLoad.live_waiting`)
the stage waits in short steps before a batch, and while a live session is attached a batch
holds at most ``beside_live`` frames. A model call that raises fails the owners of its
frames (their jobs cannot be complete); the stage goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamproc.dataplane.stored.background import BackgroundOwner
from streamproc.dataplane.stored.batch_stage import YIELD_S, BatchStage, LiveLoad
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.faces.types import Face
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.types import Instance, LabelDetector

logger = logging.getLogger(__name__)
PERSONS = "persons"  # the stage's name: a job kind's ``stage``, the supervisor's name for it
PERSON = "Person"  # the label whose instances are the persons
FLOOR = 0.0  # every box; the builder keeps those at its own threshold
Item = tuple[BackgroundOwner["PersonAnalysis"], StoredFrame]


class FaceFinder(Protocol):
    """The face engine's detection call (BGR images, as stored frames are)."""

    def detect_many(self, images: list[np.ndarray], max_faces: int = 0) -> list[list[Face]]:
        """Each image's faces."""


@dataclass(frozen=True)
class PersonAnalysis:
    """The person stage's per-frame value: the pack's person boxes and the frame's faces."""

    persons: tuple[Instance, ...]
    faces: tuple[Face, ...]  # pixel boxes of the frame

    @property
    def found(self) -> int:
        """Persons found (the jobs' per-frame metric)."""
        return len(self.persons)


class PersonStage(BatchStage["PersonAnalysis"]):
    """Takes job frames from its feeds in batches: persons per frame, faces per batch.

    ``detector`` None (no label pack): every frame fails its owner with LabelPackMissing's
    message. The job kind refuses such jobs first, so this is only the last guard.
    """

    def __init__(self, detector: LabelDetector | None, faces: FaceFinder, batch: int,
                 live: LiveLoad, yield_s: float = YIELD_S) -> None:
        super().__init__(PERSONS, batch, live, yield_s)
        self._detector = detector
        self._faces = faces

    def analyse(self, batch: list[Item]) -> None:
        """Persons and faces of each frame; each owner gets its frames' analyses in order."""
        if self._detector is None:
            for owner, _ in batch:
                owner.fail(LabelPackMissing().message)
            return
        try:
            faces = self._faces.detect_many([frame.image for _, frame in batch])
            # Stored frames are BGR (PyAV bgr24); the pack takes RGB.
            persons = [self._persons(self._detector, frame) for _, frame in batch]
        except Exception as exc:
            # A model error loses these frames, so their jobs cannot be complete and fail;
            # the stage goes on with the next batch.
            logger.exception("tracking persons in a batch of %d frames failed", len(batch))
            for owner in {id(o): o for o, _ in batch}.values():
                owner.fail(f"Analysing a frame failed: {type(exc).__name__}")
            return
        for (owner, frame), found, people in zip(batch, faces, persons, strict=True):
            try:
                owner.finish(frame, PersonAnalysis(people, tuple(found)))
            except Exception as exc:
                logger.exception("%s: tracking a frame's persons failed", owner.name)
                owner.fail(f"Analysing a frame failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _persons(detector: LabelDetector, frame: StoredFrame) -> tuple[Instance, ...]:
        rgb = np.ascontiguousarray(frame.image[..., ::-1])
        for label in detector.detect(rgb, FLOOR):
            if label.name == PERSON:
                return label.instances
        return ()
