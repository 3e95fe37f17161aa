"""One launch of a stored-video job: its plan, its outputs, and its frames for its stage.

``JobFrames`` is the part the plan's analysis stage works on (frame queue, tracker, results
so far); the stage hands each frame back as its typed value, which the kind's builder turns
into results. The worker never changes a job's status: it writes results and VideoMetadata through a
:class:`ResultSink` (tagged with the launch's attempt, so a stale launch writes nothing) and
reports the end through :class:`JobEvents`; the jobs' scheduler decides the rest. Decoding
waits for analysis (the frame queue BLOCKs, nothing is dropped) and runs at a higher
niceness than live decoding, so a job takes what CPU the stream processors leave.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, Protocol

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.regions import Region
from streamproc.dataplane.stored.stages import FACES, A, EndsLaunch, Result, ResultBuilder
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import IouTracker
from streamproc.errors import StreamprocError
from streamproc.metrics import JobSensor
from streamproc.storage.jobs import ResultRow
from streamproc.storage.objects import ObjectRef


class JobInput(str, Enum):
    """What a job reads: with its stage, the job runtime picks the runner of a launch by it."""

    VIDEO = "video"  # a video object, decoded and sampled (JobRunner)
    IMAGES = "images"  # a manifest object listing images (a runner of its own plugs in)


class ResultFactory(Protocol):
    """A job kind's results for one launch, decided at launch (a collection pinned)."""

    def builder(self) -> ResultBuilder[Any]:
        """A fresh builder for the launch (builders keep per-launch state: person indices).

        Of the value of the stage the kind names (``FaceAnalysis`` for FACES): a plan
        carries any kind's, so the type is the kind's promise, not the plan's.
        """


@dataclass(frozen=True)
class JobPlan:
    """One launch, as its owner decided it."""

    job_id: str
    attempt: int
    api: str  # the job kind's name (FaceDetection, FaceSearch, ...): a metrics label
    source: ObjectRef  # the object it reads (a video, or a manifest)
    results: ResultFactory
    input: JobInput = JobInput.VIDEO
    stage: str = FACES  # the analysis stage its frames go to (stages.FACES, ...)


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


class JobFrames(Generic[A]):
    """The stage's side of a launch: its frame queue, tracker and results so far."""

    def __init__(self, plan: JobPlan, builder: ResultBuilder[A], queue: int,
                 sensor: JobSensor, embed_interval_s: float = 0.0) -> None:
        self.name = f"job {plan.job_id}"
        self.regions: tuple[Region, ...] = ()
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

    def finish(self, frame: StoredFrame, analysis: A) -> None:
        """Build the frame's results (on the stage's thread)."""
        try:
            results = self._builder.build(frame, analysis)
        except StreamprocError as exc:  # the collection was deleted, or made again
            self.fail(exc.message)
            return
        self._sensor.frame_analysed(analysis.found)
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

    def end(self) -> None:
        """Every frame was analysed: the builder's held-back results join the pending ones.

        Only builders with an end hook (:class:`~.stages.EndsLaunch`) hold any back.
        """
        if not isinstance(self._builder, EndsLaunch):
            return
        try:
            results = self._builder.end_launch()
        except StreamprocError as exc:
            self.fail(exc.message)
            return
        with self._cond:
            self._pending += results

    def wait_analysed(self, count: int) -> None:
        """Until ``count`` frames were analysed or the launch ended."""
        with self._cond:
            while self._analysed < count and not self.ended.is_set():
                self._cond.wait(0.1)
