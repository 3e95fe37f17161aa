"""The loop every whole-frame job stage shares: batches from its feeds, behind live work.

A stage (moderation, labels, persons) subclasses :class:`BatchStage` and gives only
:meth:`BatchStage.analyse`: what one batch of ``(owner, frame)`` items becomes. The loop is
here once: feeds take turns, a batch holds at most ``batch`` items (``beside_live`` while a
live session is attached), and while a live frame is queued or being analysed
(:meth:`LiveLoad.live_waiting`) the stage waits in short steps, so live stream processors
keep their latency.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

from streamproc.dataplane.stored.background import BackgroundFeed, BackgroundOwner
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.lifecycle import Service

A = TypeVar("A")
YIELD_S = 0.02  # one wait while a live frame is waiting (then the stage looks again)
IDLE_S = 0.05  # the longest wait for a job frame when none is queued (a notify ends it)


class LiveLoad(Protocol):
    """What the stage asks of the live side (the data plane) before each batch; cheap."""

    def live_attached(self) -> bool:
        """Whether any live session is attached (batches are then at most ``beside_live``)."""

    def live_waiting(self) -> bool:
        """Whether a live frame is queued or being analysed (the stage then waits)."""


class BatchStage(Service, Generic[A]):
    """Takes job frames from its feeds in batches and hands each batch to :meth:`analyse`."""

    def __init__(self, name: str, batch: int, live: LiveLoad, yield_s: float = YIELD_S
                 ) -> None:
        super().__init__(name)
        if batch < 1:
            msg = "batch must be at least 1"
            raise ValueError(msg)
        self._batch = batch
        self._beside_live = batch
        self._live = live
        self._yield_s = yield_s
        self._wake = threading.Event()
        self._feeds: list[BackgroundFeed[A]] = []
        self._next = 0
        self._lock = threading.Lock()  # guards _feeds, _next and _beside_live

    def add_background(self, feed: BackgroundFeed[A], beside_live: int) -> None:
        """Analyse ``feed``'s frames too (feeds take turns; the smallest ``beside_live`` holds)."""
        feed.wake = self._wake
        with self._lock:
            self._feeds.append(feed)
            self._beside_live = max(1, min(self._beside_live, beside_live))

    def analyse(self, batch: list[tuple[BackgroundOwner[A], StoredFrame]]) -> None:
        """What one batch becomes: each owner gets its frames' analyses (or fails)."""
        raise NotImplementedError

    def _on_stop(self) -> None:
        self._wake.set()  # an idle wait ends at once

    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            if self._yield_to_live():
                continue
            self._wake.clear()  # before taking: a notify from now on is not lost
            batch = self._take()
            if not batch:
                self._wake.wait(IDLE_S)
                continue
            self.analyse(batch)

    def _yield_to_live(self) -> bool:
        """Wait one short step if a live frame waits; whether it did."""
        if not self._live.live_waiting():
            return False
        self.wait(self._yield_s)
        return True

    def _take(self) -> list[tuple[BackgroundOwner[A], StoredFrame]]:
        with self._lock:
            feeds = list(self._feeds)
            start = self._next
            self._next += 1
            limit = min(self._beside_live, self._batch) if self._live.live_attached() \
                else self._batch
        taken: list[tuple[BackgroundOwner[A], StoredFrame]] = []
        for i in range(len(feeds)):
            if len(taken) >= limit:
                break
            taken += feeds[(start + i) % len(feeds)].take(limit - len(taken))
        return taken
