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
    """Where a session reports; implemented by the session's owner."""

    def session_running(self, name: str, generation: int) -> None:
        """The first frame was decoded."""

    def session_failed(self, name: str, generation: int, reason: str) -> None:
        """The session cannot go on (its reason becomes the StatusMessage)."""

    def session_crashed(self, name: str, generation: int, error: str) -> None:
        """A bug ended the session's work (the owner may restart it within a budget)."""


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
        self._running_reported = False
        self._ended = threading.Lock()

    @property
    def name(self) -> str:
        """The processor's name."""
        return self.plan.name

    def report_frame(self) -> None:
        """First decoded frame of the session: the processor is RUNNING."""
        if not self._running_reported and self.active.is_set():
            self._running_reported = True
            self.events.session_running(self.plan.name, self.plan.generation)

    def fail(self, reason: str) -> None:
        """Stop producing now and report why (once; later calls are ignored)."""
        if self._end():
            self.events.session_failed(self.plan.name, self.plan.generation, reason)

    def crashed(self, error: str) -> None:
        """Stop producing now and report a crash (once)."""
        if self._end():
            self.events.session_crashed(self.plan.name, self.plan.generation, error)

    def deactivate(self) -> None:
        """The owner ends the session: nothing more is produced or reported."""
        self._end()

    def _end(self) -> bool:
        with self._ended:
            was_active = self.active.is_set()
            self.active.clear()
            return was_active
