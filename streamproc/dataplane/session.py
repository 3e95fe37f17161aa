"""What the data plane knows about one running processor (one Start = one session)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.source import VideoFrame
from streamproc.dataplane.tracking import IouTracker
from streamproc.faces.types import Face
from streamproc.metrics import ProcessorSensor


def in_regions(face: Face, regions: list[dict[str, Any]], width: int, height: int) -> bool:
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

    name: str
    session_id: str
    collection_id: str
    threshold: float
    stream_arn: str  # as shown in records: redacted
    bootstrap: str
    topic: str
    emit: str
    sensor: ProcessorSensor
    regions: list[dict[str, Any]] = field(default_factory=list)
    on_running: Callable[[Session], None] = lambda s: None
    on_failed: Callable[[Session, str], None] = lambda s, m: None
    frame_queue: int = 2
    active: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.frames: BoundedQueue[VideoFrame] = BoundedQueue(
            self.frame_queue, DropPolicy.DROP_OLDEST, on_drop=self.sensor.frames_dropped)
        self.tracker = IouTracker()
        self.active.set()
        self._running_reported = False

    def report_frame(self) -> None:
        """First decoded frame of the session: the processor is RUNNING."""
        if not self._running_reported and self.active.is_set():
            self._running_reported = True
            self.on_running(self)

    def fail(self, message: str) -> None:
        """End the session in FAILED (once; later calls and ended sessions are ignored)."""
        if self.active.is_set():
            self.active.clear()
            self.on_failed(self, message)
