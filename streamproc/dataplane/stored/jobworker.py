"""The worker thread of one job launch, and the runner that starts and halts launches.

A launch fetches its video (S3 objects are copied to scratch space), decodes and samples it
on its own thread and hands the frames to its analysis stage as background work; results
are written in chunks as they come. Decoding waits for analysis (the frame queue BLOCKs,
nothing is dropped) and runs at a higher niceness than live decoding, so a job takes the CPU
the stream processors leave. The worker never changes a job's status: it writes through a
``ResultSink`` (tagged with its attempt, so a stale launch writes nothing) and reports its
end through ``JobEvents``; the jobs' scheduler decides the rest.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.jobrun import (
    JobEvents,
    JobFrames,
    JobPlan,
    JobSettings,
    ResultSink,
)
from streamproc.dataplane.stored.stages import A
from streamproc.dataplane.stored.video import StoredVideo, VideoRejected
from streamproc.errors import InvalidS3ObjectException, ThrottlingException
from streamproc.lifecycle import Service
from streamproc.metrics import JobSensor
from streamproc.storage.jobs import ResultRow
from streamproc.storage.objects import ObjectStore

logger = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_MAX_S = 10.0  # longest pause between tries of a write the cluster's log refused


def lower_priority(nice: int) -> None:
    """Raise this thread's niceness by ``nice``; elsewhere than Linux, a no-op.

    Linux threads have their own niceness, and FFmpeg's decoding threads, created from this
    one, inherit it.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + nice,
                                                 19))
    except OSError as exc:
        logger.debug("cannot lower the priority of job decoding: %s", exc)


class JobRun(Service, Generic[A]):
    """Fetches, decodes and samples one video into its stage, writing results as they come."""

    def __init__(self, plan: JobPlan, frames: JobFrames[A], deps: JobRunner[A],
                 sink: ResultSink, events: JobEvents, sensor: JobSensor) -> None:
        super().__init__(f"job-{plan.job_id}")
        self.plan = plan
        self._frames = frames
        self._deps = deps
        self._sink = sink
        self._events = events
        self._sensor = sensor
        self._seq = 0

    def _on_stop(self) -> None:
        self._frames.ended.set()  # unblocks a put waiting for room and the final wait

    def _on_crash(self, exc: BaseException) -> None:
        self._sensor.close()
        self._events.job_ended(self.plan.job_id, self.plan.attempt,
                               f"Internal error: {type(exc).__name__}: {exc}")

    def _run(self) -> None:
        lower_priority(self._deps.settings.decode_nice)
        error = self._work()
        self._sensor.close()
        if not self.stopping:  # a halted launch reports nothing: its job runs again later
            self._events.job_ended(self.plan.job_id, self.plan.attempt, error)

    def _work(self) -> str | None:
        plan, s = self.plan, self._deps.settings
        try:
            with self._deps.objects.local_file(plan.source, s.scratch, s.max_video_bytes,
                                               self._frames.ended) as path:
                if path is None:
                    return self._frames.failure
                with StoredVideo(path, plan.source.shown, s.sample_fps,
                                 s.max_duration_s) as video:
                    self._retrying(lambda: self._sink.set_metadata(
                        plan.job_id, plan.attempt, video.metadata))
                    video.check_duration()
                    return self._analyse(video)
        except VideoRejected as exc:
            return str(exc)
        except InvalidS3ObjectException as exc:  # deleted since Start, or S3 unreachable
            return exc.message

    def _analyse(self, video: StoredVideo) -> str | None:
        frames, feed = self._frames, self._deps.feed
        duration = video.duration_s
        sent = 0
        feed.attach(frames)
        try:
            for frame in video.frames(frames.ended):
                # BLOCK without a deadline: only the end of the launch stops the wait.
                if not frames.frames.put(frame, frames.ended, timeout=math.inf):
                    break
                sent += 1
                self._sensor.frame_decoded(frame.timestamp_ms / 1000, duration)
                feed.notify()
                self._write(self._deps.settings.flush_rows)
            frames.wait_analysed(sent)
        finally:
            feed.detach(frames)
            frames.frames.drain()
        if frames.failure is None and not self.stopping:
            frames.end()  # results a builder held back to the end (open segments)
            self._write(1)
        return frames.failure

    def _write(self, at_least: int) -> None:
        results = self._frames.take(at_least)
        if not results:
            return
        rows = []
        for result in results:
            rows.append(ResultRow(self._seq, result.timestamp_ms, result.person, result.item,
                                  result.listing, result.name))
            self._seq += 1
        owned = self._retrying(lambda: self._sink.add_results(
            self.plan.job_id, self.plan.attempt, rows))
        if owned is False:
            self.request_stop()  # another launch owns the job now: write nothing more

    def _retrying(self, write: Callable[[], T]) -> T | None:
        """``write()``, tried again while the cluster's log is away (:func:`retrying`).

        A batch that landed after all is written again harmlessly (rows are keyed by their
        sequence number).
        """
        return retrying(write, self._frames.ended, lambda: self.stopping, self.plan.job_id)


def retrying(write: Callable[[], T], ended: threading.Event, stopping: Callable[[], bool],
             job_id: str) -> T | None:
    """``write()``, tried again while the cluster's log is away; every launch's writes use it.

    A Kafka outage pauses the launch instead of failing its job. None when the launch ended
    meanwhile (halted, or its analysis failed: that failure is what the launch reports).
    """
    pause = 0.5
    while True:
        try:
            return write()
        except ThrottlingException as exc:
            logger.warning("job %s: a write waits for the cluster's log: %s", job_id,
                           exc.message)
        if ended.wait(pause) or stopping():
            return None
        pause = min(pause * 2, RETRY_MAX_S)


class JobRunner(Generic[A]):
    """Starts launches of video jobs and halts them without waiting (the scheduler checks back).

    One per analysis stage: ``feed`` is attached to that stage, which analyses the frames.
    What a frame becomes is the plan's (its job kind's ``ResultFactory``); this runner only
    fetches, decodes and samples the video and writes what the builder makes.
    """

    def __init__(self, objects: ObjectStore, feed: BackgroundFeed[A],
                 settings: JobSettings) -> None:
        self.objects = objects
        self.feed = feed
        self.settings = settings

    def clean_scratch(self) -> None:
        """Remove S3 copies a killed daemon left behind (call before any launch)."""
        scratch = self.settings.scratch
        if scratch.is_dir():
            for leftover in scratch.glob("object-*"):
                leftover.unlink(missing_ok=True)

    def launch(self, plan: JobPlan, sink: ResultSink, events: JobEvents,
               sensor: JobSensor) -> JobRun[A]:
        """Start a launch's worker."""
        frames: JobFrames[A] = JobFrames(plan, plan.results.builder(),
                                         self.settings.frame_queue, sensor,
                                         self.settings.embed_interval_s)
        run = JobRun(plan, frames, self, sink, events, sensor)
        run.start()
        return run

    def begin_halt(self, run: JobRun[A]) -> None:
        """Ask a launch to end; returns at once."""
        run.request_stop()

    def halted(self, run: JobRun[A]) -> bool:
        """True once the launch's thread has finished."""
        return not run.running

    def abandon(self, run: JobRun[A]) -> None:
        """Stop waiting for a launch that did not end in time.

        Its thread is a daemon thread (it dies with the process); halted, it reports no
        end, and the next launch of its job is a new attempt, which its writes cannot reach.
        """
        logger.warning("job %s: its launch (attempt %d) is still busy; abandoned",
                       run.plan.job_id, run.plan.attempt)
