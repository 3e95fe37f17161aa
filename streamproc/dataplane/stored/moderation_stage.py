"""The moderation stage: job images through the moderation pack, behind the live processors.

A :class:`~streamproc.dataplane.stored.stages.StoredStage` over whole images
(``dataplane/stored/stages.py``: MODERATION). Jobs put their frames or images in a
:class:`~streamproc.dataplane.stored.background.BackgroundFeed` (one per runner: the
content-moderation videos, the media-analysis manifests); the stage takes a batch from its
feeds in turn, makes one ``analyse_many`` call for each moderator in it and hands each image
back to its owner with :meth:`~streamproc.dataplane.stored.background.BackgroundOwner.finish`.
An owner with a ``moderator`` attribute (a media-analysis launch with a ``ProjectVersion``:
a :class:`~streamproc.moderation.adapter.WithAdapter`) is analysed by that one, every other
owner by the stage's engine; a batch is split by moderator, in the order it was taken, so
each owner's images still finish in order. A call that raises fails the owners of its
group (their jobs cannot be complete) and the stage goes on.

Live stream processors go first, as they do in the face stage: while a live frame is queued
or being analysed (:meth:`LiveLoad.live_waiting`) the stage waits in short steps, and while
any live session is attached a batch holds at most ``beside_live`` images, so a live frame
that arrives meanwhile competes with one small model call at most.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from streamproc.dataplane.stored.background import BackgroundFeed, BackgroundOwner
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.lifecycle import Service
from streamproc.moderation.types import ModerationAnalysis, Moderator

logger = logging.getLogger(__name__)
Item = tuple[BackgroundOwner[ModerationAnalysis], StoredFrame]
YIELD_S = 0.02  # one wait while a live frame is waiting (then the stage looks again)
IDLE_S = 0.05  # the longest wait for a job image when none is queued (a notify ends it)


class LiveLoad(Protocol):
    """What the stage asks of the live side (the data plane) before each batch; cheap."""

    def live_attached(self) -> bool:
        """Whether any live session is attached (batches are then at most ``beside_live``)."""

    def live_waiting(self) -> bool:
        """Whether a live frame is queued or being analysed (the stage then waits)."""


class ModerationStage(Service):
    """Takes job images from its feeds in batches, one moderation call per batch."""

    def __init__(self, moderator: Moderator, batch: int, live: LiveLoad,
                 yield_s: float = YIELD_S) -> None:
        super().__init__("moderation")
        if batch < 1:
            msg = "batch must be at least 1"
            raise ValueError(msg)
        self._moderator = moderator
        self._batch = batch
        self._beside_live = batch
        self._live = live
        self._yield_s = yield_s
        self._wake = threading.Event()
        self._feeds: list[BackgroundFeed[ModerationAnalysis]] = []
        self._next = 0
        self._lock = threading.Lock()  # guards _feeds, _next and _beside_live

    def add_background(self, feed: BackgroundFeed[ModerationAnalysis], beside_live: int) -> None:
        """Analyse ``feed``'s images too (feeds take turns; the smallest ``beside_live`` holds)."""
        feed.wake = self._wake
        with self._lock:
            self._feeds.append(feed)
            self._beside_live = max(1, min(self._beside_live, beside_live))

    def _on_stop(self) -> None:
        self._wake.set()  # an idle wait ends at once

    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            if self._live.live_waiting():
                self.wait(self._yield_s)
                continue
            self._wake.clear()  # before taking: a notify from now on is not lost
            batch = self._take()
            if not batch:
                self._wake.wait(IDLE_S)
                continue
            self.analyse(batch)

    def _take(self) -> list[Item]:
        with self._lock:
            feeds = list(self._feeds)
            start = self._next
            self._next += 1
            limit = min(self._beside_live, self._batch) if self._live.live_attached() \
                else self._batch
        taken: list[Item] = []
        for i in range(len(feeds)):
            if len(taken) >= limit:
                break
            taken += feeds[(start + i) % len(feeds)].take(limit - len(taken))
        return taken

    def analyse(self, batch: list[Item]) -> None:
        """One moderation call per moderator in the batch, then each owner gets its analyses."""
        for moderator, group in self._groups(batch):
            self._analyse(moderator, group)

    def _groups(self, batch: list[Item]) -> list[tuple[Moderator, list[Item]]]:
        """The batch split by its owners' moderators, each group in the batch's order."""
        groups: dict[int, tuple[Moderator, list[Item]]] = {}
        for item in batch:
            moderator = self.moderator_of(item[0])
            groups.setdefault(id(moderator), (moderator, []))[1].append(item)
        return list(groups.values())

    def moderator_of(self, owner: BackgroundOwner[ModerationAnalysis]) -> Moderator:
        """The owner's own moderator (an adapter), else the stage's engine."""
        own: Moderator | None = getattr(owner, "moderator", None)
        return self._moderator if own is None else own

    def _analyse(self, moderator: Moderator, batch: list[Item]) -> None:
        try:
            found = moderator.analyse_many([frame.image for _, frame in batch])
            if len(found) != len(batch):
                msg = f"{len(found)} analyses for {len(batch)} images"
                raise RuntimeError(msg)  # noqa: TRY301 - the same fate as the call's errors
        except Exception as exc:
            # A model error: every image of the batch is lost, so their jobs fail; the
            # stage goes on with the next batch.
            logger.exception("moderating a batch of %d images failed", len(batch))
            failed: dict[int, BackgroundOwner[ModerationAnalysis]] = {}
            for owner, _ in batch:
                failed.setdefault(id(owner), owner)
            for owner in failed.values():
                owner.fail(f"Analysing a frame failed: {type(exc).__name__}")
            return
        for (owner, frame), analysis in zip(batch, found, strict=True):
            self._finish(owner, frame, analysis)

    @staticmethod
    def _finish(owner: BackgroundOwner[ModerationAnalysis], frame: StoredFrame,
                analysis: ModerationAnalysis) -> None:
        try:
            owner.finish(frame, analysis)
        except Exception as exc:
            logger.exception("%s: moderating an image failed", owner.name)
            owner.fail(f"Analysing a frame failed: {type(exc).__name__}: {exc}")
