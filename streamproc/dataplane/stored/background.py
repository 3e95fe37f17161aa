"""Background work for an analysis stage: frames analysed only when no live frame waits.

Stored-video jobs put their sampled frames here instead of beside the stream processors'
frames, one feed per stage (:mod:`.stages`). The face stage (the analyzer) fills a batch
from live sessions first; only when that batch is empty does it :meth:`BackgroundFeed.take`
job frames, and while any live session is attached at most ``batch_frames_beside_live`` of
them, so a live frame that arrives meanwhile waits for one small batch at most. What the
stage finds is its own code; what becomes of it is the owner's :meth:`BackgroundOwner.finish`,
given the stage's per-frame value (``A``: ``FaceAnalysis`` for the face stage).
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

from streamproc.dataplane.queues import BoundedQueue
from streamproc.dataplane.regions import Region
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import IouTracker

A = TypeVar("A")  # the stage's per-frame value
A_contra = TypeVar("A_contra", contravariant=True)


class BackgroundOwner(Protocol[A_contra]):
    """Whose background frame it is, as a stage sees it (a job launch's frames)."""

    name: str
    frames: BoundedQueue[StoredFrame]
    # What the face stage reads of its owner; a stage over whole frames ignores them.
    regions: tuple[Region, ...]
    tracker: IouTracker
    embed_interval: float | None  # None: no embeddings needed (detection only)

    def finish(self, frame: StoredFrame, analysis: A_contra) -> None:
        """What the stage found in the frame, on the stage's thread."""

    def fail(self, reason: str) -> None:
        """The frame could not be analysed: the owner's work cannot be complete."""


class BackgroundFeed(Generic[A]):
    """The owners with frames for one stage, taken round-robin."""

    def __init__(self) -> None:
        self._owners: list[BackgroundOwner[A]] = []
        self._next = 0
        self._lock = threading.Lock()
        self.wake = threading.Event()  # replaced by the stage's own when attached to it

    def attach(self, owner: BackgroundOwner[A]) -> None:
        """Start offering ``owner``'s frames."""
        with self._lock:
            self._owners.append(owner)

    def detach(self, owner: BackgroundOwner[A]) -> None:
        """Stop offering them (frames still queued are left to their owner)."""
        with self._lock:
            self._owners = [o for o in self._owners if o is not owner]

    def notify(self) -> None:
        """Frames were queued: wake the stage."""
        self.wake.set()

    def take(self, limit: int) -> list[tuple[BackgroundOwner[A], StoredFrame]]:
        """Up to ``limit`` frames, one owner after another; [] when none is queued."""
        with self._lock:
            owners = list(self._owners)
            start = self._next
            self._next += 1
        taken: list[tuple[BackgroundOwner[A], StoredFrame]] = []
        progress = True
        while progress and len(taken) < limit and owners:
            progress = False
            for i in range(len(owners)):
                owner = owners[(start + i) % len(owners)]
                frame = owner.frames.get()
                if frame is not None:
                    taken.append((owner, frame))
                    progress = True
                    if len(taken) >= limit:
                        break
        return taken
