"""Background work for the analysis stage: frames analysed only when no live frame waits.

Stored-video jobs put their sampled frames here instead of beside the stream processors'
frames. The analyzer fills a batch from live sessions first; only when that batch is empty
does it :meth:`BackgroundFeed.take` job frames, and while any live session is attached at
most ``batch_frames_beside_live`` of them, so a live frame that arrives meanwhile waits for
one small batch at most. Detection, tracking and embedding are the analyzer's own code; what
becomes of the faces is the owner's :meth:`BackgroundOwner.finish`.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from streamproc.dataplane.queues import BoundedQueue
from streamproc.dataplane.stored import StoredFrame
from streamproc.dataplane.tracking import IouTracker, Track
from streamproc.faces.types import Face


class BackgroundOwner(Protocol):
    """Whose background frame it is, as the analyzer sees it."""

    name: str
    regions: tuple[dict[str, Any], ...]
    tracker: IouTracker
    embed_interval: float | None  # None: no embeddings needed (detection only)
    frames: BoundedQueue[StoredFrame]

    def finish(self, frame: StoredFrame, faces: list[Face], tracks: list[Track]) -> None:
        """The frame's faces (embedded when asked for), on the analyzer thread."""

    def fail(self, reason: str) -> None:
        """The frame could not be analysed: the owner's work cannot be complete."""


class BackgroundFeed:
    """The owners with frames for the analyzer, taken round-robin."""

    def __init__(self) -> None:
        self._owners: list[BackgroundOwner] = []
        self._next = 0
        self._lock = threading.Lock()
        self.wake = threading.Event()  # replaced by the analyzer's own when attached to it

    def attach(self, owner: BackgroundOwner) -> None:
        """Start offering ``owner``'s frames."""
        with self._lock:
            self._owners.append(owner)

    def detach(self, owner: BackgroundOwner) -> None:
        """Stop offering them (frames still queued are left to their owner)."""
        with self._lock:
            self._owners = [o for o in self._owners if o is not owner]

    def notify(self) -> None:
        """Frames were queued: wake the analyzer."""
        self.wake.set()

    def take(self, limit: int) -> list[tuple[BackgroundOwner, StoredFrame]]:
        """Up to ``limit`` frames, one owner after another; [] when none is queued."""
        with self._lock:
            owners = list(self._owners)
            start = self._next
            self._next += 1
        taken: list[tuple[BackgroundOwner, StoredFrame]] = []
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
