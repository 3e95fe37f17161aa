"""A media-analysis launch's side of the moderation stage: its images queued, its lines in order.

The launch reads its manifest a line at a time and hands each line here: a bad line as its
:class:`~.manifest.LineError`, a good one with its decoded pixels, which go in a bounded queue
(BLOCK: reading waits for analysis) that the moderation stage takes from. Lines leave
:meth:`ManifestOwner.ready` in manifest order, each once it is resolved (an error at once, an
image once the stage analysed it), so the launch writes its output files in order whatever
the batching. The stage finishes a feed's images in the order it took them.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.regions import Region
from streamproc.dataplane.stored.manifest import ImageLine, LineError
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import IouTracker
from streamproc.metrics import JobSensor
from streamproc.moderation.types import ModerationAnalysis, Moderator


@dataclass(frozen=True)
class Analysed:
    """An image line with what the stage found in it."""

    line: ImageLine
    analysis: ModerationAnalysis


Resolved = Analysed | LineError


class ManifestOwner:
    """One launch's images for the moderation stage (a ``BackgroundOwner``)."""

    regions: tuple[Region, ...] = ()  # whole images: the face stage's fields, unused here
    embed_interval: float | None = None

    def __init__(self, name: str, queue: int, max_pending: int, sensor: JobSensor) -> None:
        self.name = name
        # Who analyses this launch's images (the stage reads it): its adapter, set by the
        # launch before its images are queued; None: the stage's own engine.
        self.moderator: Moderator | None = None
        self.tracker = IouTracker()
        self.frames: BoundedQueue[StoredFrame] = BoundedQueue(queue, DropPolicy.BLOCK)
        self.ended = threading.Event()  # failed, or the launch is stopping
        self.failure: str | None = None
        self._max_pending = max_pending
        self._sensor = sensor
        self._cond = threading.Condition()
        self._lines: deque[ImageLine | LineError] = deque()  # in manifest order
        self._found: dict[int, ModerationAnalysis] = {}  # line number -> its analysis

    # ---- the stage's side ----------------------------------------------------------------
    def finish(self, frame: StoredFrame, analysis: ModerationAnalysis) -> None:
        """The image of line ``frame.timestamp_ms`` was analysed (on the stage's thread)."""
        self._sensor.frame_analysed(analysis.found)
        with self._cond:
            self._found[frame.timestamp_ms] = analysis
            self._cond.notify_all()

    def fail(self, reason: str) -> None:
        """The first failure wins; the launch ends."""
        with self._cond:
            if self.failure is None:
                self.failure = reason
            self.ended.set()
            self._cond.notify_all()

    # ---- the launch's side ---------------------------------------------------------------
    def add_error(self, error: LineError) -> None:
        """A bad line, resolved already (it keeps its place behind earlier images)."""
        with self._cond:
            self._lines.append(error)

    def add_image(self, line: ImageLine, pixels: np.ndarray) -> bool:
        """Queue a line's image for the stage; False when the launch ended meanwhile."""
        frame = StoredFrame(pixels, line.number, 0.0)
        if not self.frames.put(frame, self.ended, timeout=math.inf):
            return False
        with self._cond:
            self._lines.append(line)
        return True

    def full(self) -> bool:
        """Whether ``max_pending`` lines are held (the launch writes what it can, then waits).

        Bad lines behind an image that the stage has not analysed yet wait here; the bound
        keeps a manifest of millions of bad lines from piling up behind one slow image.
        """
        with self._cond:
            return len(self._lines) >= self._max_pending

    def ready(self) -> list[Resolved]:
        """The resolved lines at the front, in manifest order (taken: each comes once)."""
        out: list[Resolved] = []
        with self._cond:
            while self._lines:
                head = self._lines[0]
                if isinstance(head, LineError):
                    out.append(head)
                elif head.number in self._found:
                    out.append(Analysed(head, self._found.pop(head.number)))
                else:
                    break
                self._lines.popleft()
            self._cond.notify_all()
        return out

    def waiting(self) -> bool:
        """Whether any line is still unresolved or not taken."""
        with self._cond:
            return bool(self._lines)

    def wait_more(self, timeout: float) -> None:
        """Until the front line is resolved or the launch ended (at most ``timeout``).

        No wait at all when no line is held, or the front one is resolved already (its
        analysis came after the last ``ready``).
        """
        with self._cond:
            if not self.ended.is_set() and self._front_waits():
                self._cond.wait(timeout)

    def _front_waits(self) -> bool:
        """Under the lock: a line is held and the first one waits for its analysis."""
        if not self._lines:
            return False
        head = self._lines[0]
        return isinstance(head, ImageLine) and head.number not in self._found
