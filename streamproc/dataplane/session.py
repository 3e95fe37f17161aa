"""What the data plane knows about one running processor (one launch = one session).

A session never tears itself down: when its source gives up, its collection disappears or
its reader crashes, it stops producing at once (``active`` cleared, so nothing more is
published) and hands the failure to its owner through :class:`SessionEvents`. The owner
(the processors' reconciler) decides what happens next, on its own thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.source import VideoFrame
from streamproc.dataplane.tracking import IouTracker
from streamproc.faces.types import Face
from streamproc.metrics import ProcessorSensor
from streamproc.storage.collections import CollectionInfo


class SessionEvents(Protocol):
    """Where a session says that something changed; implemented by the session's owner.

    The facts themselves stay on the session (``running``, ``ended``), so the owner reads
    them on every turn: a notification it misses costs it a tick, never the fact.
    """

    def session_changed(self, name: str, generation: int) -> None:
        """The session decoded its first frame, or ended (see ``Session.ended``)."""


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
    regions: tuple[dict[str, Any], ...] = ()
    frame_queue: int = 2


def in_regions(face: Face, regions: tuple[dict[str, Any], ...] | list[dict[str, Any]],
               width: int, height: int) -> bool:
    """True if the face's centre lies in any region (or no regions are set)."""
    if not regions:
        return True
    cx = float(face.box[0] + face.box[2]) / 2
    cy = float(face.box[1] + face.box[3]) / 2
    for region in regions:
        box = region.get("BoundingBox")
        if box:
            left, top = box.get("Left", 0.0) * width, box.get("Top", 0.0) * height
            right = left + box.get("Width", 1.0) * width
            bottom = top + box.get("Height", 1.0) * height
            if left <= cx <= right and top <= cy <= bottom:
                return True
        polygon = region.get("Polygon")
        if polygon and len(polygon) >= 3:
            pts = np.array([[p.get("X", 0.0) * width, p.get("Y", 0.0) * height]
                            for p in polygon], np.float32)
            if cv2.pointPolygonTest(pts, (cx, cy), False) >= 0:
                return True
    return False


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
        self.regions: tuple[dict[str, Any], ...] = tuple(self.plan.regions)
        self.active.set()
        self.running = False  # set once, by the reader, at the first decoded frame
        # ("failed" | "crashed", reason), set once when the session ends by itself.
        self.ended: tuple[str, str] | None = None
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
        if self._end(("failed", reason)):
            self.events.session_changed(self.plan.name, self.plan.generation)

    def crashed(self, error: str) -> None:
        """Stop producing now and report a crash (the first end wins)."""
        if self._end(("crashed", error)):
            self.events.session_changed(self.plan.name, self.plan.generation)

    def deactivate(self) -> None:
        """The owner ends the session: nothing more is produced or reported."""
        self._end(None)

    def _end(self, why: tuple[str, str] | None) -> bool:
        with self._end_lock:
            was_active = self.active.is_set()
            self.active.clear()
            if was_active and why is not None:
                self.ended = why
            return was_active
