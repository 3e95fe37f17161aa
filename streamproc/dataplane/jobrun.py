"""One launch of a stored-video job: its plan, its outputs, and its frames for the analyzer.

``JobFrames`` is the part the shared analyzer works on (frame queue, tracker, results so
far). The worker never changes a job's status: it writes results and VideoMetadata through a
:class:`ResultSink` (tagged with the launch's attempt, so a stale launch writes nothing) and
reports the end through :class:`JobEvents`; the jobs' scheduler decides the rest. Decoding
waits for analysis (the frame queue BLOCKs, nothing is dropped) and runs at a higher
niceness than live decoding, so a job takes what CPU the stream processors leave.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from streamproc.dataplane.jobresults import Result, ResultBuilder
from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.stored import StoredFrame
from streamproc.dataplane.tracking import IouTracker, Track
from streamproc.errors import StreamprocError
from streamproc.faces.types import Face
from streamproc.metrics import JobSensor
from streamproc.storage.collections import CollectionInfo
from streamproc.storage.jobs import ResultRow
from streamproc.storage.objects import ObjectRef


@dataclass(frozen=True)
class JobPlan:
    """One launch, as its owner decided it."""

    job_id: str
    attempt: int
    api: str  # FaceDetection or FaceSearch
    video: ObjectRef
    collection: CollectionInfo | None = None  # face search: pinned at launch
    threshold: float = 80.0
    max_matches: int = 10


@dataclass(frozen=True)
class JobSettings:
    """Limits and pacing shared by every launch."""

    sample_fps: float
    max_video_bytes: int
    max_duration_s: float
    frame_queue: int
    decode_nice: int
    embed_interval_s: float
    scratch: Path  # where S3 objects are copied while they are analysed
    flush_rows: int = 256  # results per write transaction


class ResultSink(Protocol):
    """Where a launch's output goes (the jobs' store)."""

    def set_metadata(self, job_id: str, attempt: int, metadata: dict[str, Any]) -> None:
        """The video's VideoMetadata."""

    def add_results(self, job_id: str, attempt: int, rows: list[ResultRow]) -> bool:
        """Append results; False when this launch no longer owns the job."""


class JobEvents(Protocol):
    """How a launch reports its end (not sent when it was asked to stop)."""

    def job_ended(self, job_id: str, attempt: int, error: str | None) -> None:
        """Every frame analysed and written (error None), or why the job failed."""


class JobFrames:
    """The analyzer's side of a launch: its frame queue, tracker and results so far."""

    def __init__(self, plan: JobPlan, builder: ResultBuilder, queue: int,
                 sensor: JobSensor, embed_interval_s: float = 0.0) -> None:
        self.name = f"job {plan.job_id}"
        self.regions: tuple[dict[str, Any], ...] = ()
        self.tracker = IouTracker()
        # A tracked face is re-embedded at most every embed_interval_s of video.
        self.embed_interval = embed_interval_s if builder.needs_embeddings else None
        self.frames: BoundedQueue[StoredFrame] = BoundedQueue(queue, DropPolicy.BLOCK)
        self.ended = threading.Event()  # failed, or the launch is stopping
        self.failure: str | None = None
        self._builder = builder
        self._sensor = sensor
        self._cond = threading.Condition()
        self._pending: list[Result] = []
        self._analysed = 0

    def finish(self, frame: StoredFrame, faces: list[Face], tracks: list[Track]) -> None:
        """Build the frame's results (analyzer thread)."""
        try:
            results = self._builder.build(frame, faces, tracks)
        except StreamprocError as exc:  # the collection was deleted, or made again
            self.fail(exc.message)
            return
        self._sensor.frame_analysed(len(faces))
        with self._cond:
            self._pending += results
            self._analysed += 1
            self._cond.notify_all()

    def fail(self, reason: str) -> None:
        """The first failure wins; the launch ends."""
        with self._cond:
            if self.failure is None:
                self.failure = reason
            self.ended.set()
            self._cond.notify_all()

    def take(self, at_least: int) -> list[Result]:
        """Results waiting to be written, if there are ``at_least`` of them."""
        with self._cond:
            if len(self._pending) < max(at_least, 1):
                return []
            out, self._pending = self._pending, []
            return out

    def wait_analysed(self, count: int) -> None:
        """Until ``count`` frames were analysed or the launch ended."""
        with self._cond:
            while self._analysed < count and not self.ended.is_set():
                self._cond.wait(0.1)
