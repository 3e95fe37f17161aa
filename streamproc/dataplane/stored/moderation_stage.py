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

from streamproc.dataplane.stored.background import BackgroundOwner
from streamproc.dataplane.stored.batch_stage import YIELD_S, BatchStage, LiveLoad
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.moderation.types import ModerationAnalysis, Moderator

logger = logging.getLogger(__name__)
Item = tuple[BackgroundOwner[ModerationAnalysis], StoredFrame]
class ModerationStage(BatchStage[ModerationAnalysis]):
    """Takes job images from its feeds in batches, one moderation call per batch."""

    def __init__(self, moderator: Moderator, batch: int, live: LiveLoad,
                 yield_s: float = YIELD_S) -> None:
        super().__init__("moderation", batch, live, yield_s)
        self._moderator = moderator

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
