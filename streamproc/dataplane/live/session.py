"""What the data plane knows about one running processor (one launch = one session).

A session never tears itself down: when its source gives up, its collection disappears or
its reader crashes, it stops producing at once (``active`` cleared, so nothing more is
published) and hands the failure to its owner through :class:`SessionEvents`. The owner
(the processors' reconciler) decides what happens next, on its own thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from streamproc.dataplane.live.source import VideoFrame
from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.regions import Region
from streamproc.dataplane.tracking import IouTracker
from streamproc.metrics import ProcessorSensor
from streamproc.storage.collections import CollectionInfo


class SessionEvents(Protocol):
    """Where a session says that something changed; implemented by the session's owner.

    The facts themselves stay on the session (``running``, ``ended``), so the owner reads
    them on every turn: a notification it misses costs it a tick, never the fact.
    """

    def session_changed(self, name: str, generation: int) -> None:
        """The session decoded its first frame, or ended (see ``Session.ended``)."""


class EndKind(Enum):
    """How a session ended by itself: its owner fails the processor, or restarts it."""

    FAILED = "failed"  # the source gave up, its collection went: FAILED with the reason
    CRASHED = "crashed"  # a bug or an unexpected error: restarted within a budget


@dataclass(frozen=True)
class SessionEnd:
    """Why a session ended by itself (set once, the first end wins)."""

    kind: EndKind
    reason: str


@dataclass(frozen=True)
class Output:
    """Where records go: a topic at a destination (a Kafka bootstrap list today)."""

    destination: str
    topic: str


@dataclass(frozen=True)
class SessionPlan:
    """Everything the data plane needs to run one processor, decided by its owner."""

    name: str
    generation: int  # increases with every launch of the processor: stale events are ignored
    kind: str  # which analysis stage takes its frames (FaceSearch)
    url: str  # may hold credentials: never shown
    url_shown: str  # redacted, for logs
    stream_arn: str  # the processor's input as given, redacted: records' StreamArn
    collection: CollectionInfo  # the collection as it was at launch
    threshold: float  # already clamped to Rekognition's minimum
    output: Output
    emit: str  # "frame" or "track"
    regions: tuple[Region, ...] = ()
    frame_queue: int = 2


@dataclass
class Session:
    """A processor's live data-plane context, shared by its source worker and the analyzer."""

    plan: SessionPlan
    sensor: ProcessorSensor
    events: SessionEvents
    active: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.frames: BoundedQueue[VideoFrame] = BoundedQueue(
            self.plan.frame_queue, DropPolicy.DROP_OLDEST, on_drop=self.sensor.frames_dropped)
        self.tracker = IouTracker()
        # Replaced whole (a tuple) by the owner on UpdateStreamProcessor; read by the analyzer.
        self.regions: tuple[Region, ...] = tuple(self.plan.regions)
        self.active.set()
        self.running = False  # set once, by the reader, at the first decoded frame
        # Set once, when the session ends by itself (not when its owner ends it).
        self.ended: SessionEnd | None = None
        self._end_lock = threading.Lock()

    @property
    def name(self) -> str:
        """The processor's name."""
        return self.plan.name

    def report_frame(self) -> None:
        """First decoded frame of the session: the processor is RUNNING."""
        if not self.running and self.active.is_set():
            self.running = True
            self.events.session_changed(self.plan.name, self.plan.generation)

    def fail(self, reason: str) -> None:
        """Stop producing now and report why (the first reason wins)."""
        if self._end(SessionEnd(EndKind.FAILED, reason)):
            self.events.session_changed(self.plan.name, self.plan.generation)

    def crashed(self, error: str) -> None:
        """Stop producing now and report a crash (the first end wins)."""
        if self._end(SessionEnd(EndKind.CRASHED, error)):
            self.events.session_changed(self.plan.name, self.plan.generation)

    def deactivate(self) -> None:
        """The owner ends the session: nothing more is produced or reported."""
        self._end(None)

    def _end(self, why: SessionEnd | None) -> bool:
        with self._end_lock:
            was_active = self.active.is_set()
            self.active.clear()
            if was_active and why is not None:
                self.ended = why
            return was_active
