"""The jobs' scheduler: one loop per daemon that owns every running job launch.

Start only queues a job (a row in SQLite) and posts to the :class:`JobMailbox`. This loop,
on its own thread, launches queued jobs oldest first while fewer than ``workers`` run, and
ends them when their launch reports (SUCCEEDED, or FAILED with the reason), sending the
completion notice; failures are events for it, never work done on the thread that noticed
them; when the analysis stage gave up for good, running and queued jobs FAIL with its
reason instead of waiting for it. It also deletes jobs ``retention_s`` after they
finished. ``placement`` decides which jobs this node runs (all of them on a single node;
the cluster's membership otherwise), the same hook the processors' reconciler has.

At start (:meth:`JobScheduler.load`) jobs a previous run left RUNNING are queued again, to
run from the beginning, until ``max_attempts`` launches; then they FAIL with the reason.
Stopping halts every launch without touching its row, so the next start resumes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streamproc.dataplane.jobrun import JobEvents, JobPlan, ResultSink
from streamproc.errors import StreamprocError
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.request import JobRequest
from streamproc.lifecycle import Service
from streamproc.metrics import JobMetrics, JobSensor
from streamproc.rekognition.constants import FACE_SEARCH
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore, StoredJob

logger = logging.getLogger(__name__)


class JobRuntime(Protocol):
    """What the scheduler drives: the data plane's job runner, or a fake in tests."""

    def launch(self, plan: JobPlan, sink: ResultSink, events: JobEvents,
               sensor: JobSensor) -> Any:
        """Start a launch."""

    def begin_halt(self, run: Any) -> None:
        """Ask a launch to end; returns at once."""

    def halted(self, run: Any) -> bool:
        """True once the launch's thread has finished."""


@dataclass(frozen=True)
class SchedulerSettings:
    """Capacity, retries, retention and pacing."""

    workers: int = 1
    max_attempts: int = 3
    retention_s: float = 7 * 86400.0
    max_matches: int = 10
    tick_s: float = 0.5
    purge_every_s: float = 60.0
    stop_timeout_s: float = 2.0


@dataclass(frozen=True)
class JobHooks:
    """Where cluster mode plugs in."""

    placement: Callable[[str], bool] = lambda job_id: True


@dataclass
class _Launch:
    run: Any
    attempt: int
    api: str
    started: float


class JobScheduler(Service):
    """Makes running launches match the queue; ends jobs; deletes expired ones."""

    def __init__(self, store: JobStore, runtime: JobRuntime, mailbox: JobMailbox,
                 notices: Notices, searcher: FaceSearcher, metrics: JobMetrics,
                 settings: SchedulerSettings, hooks: JobHooks | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__("jobs")
        self._store = store
        self._runtime = runtime
        self._mailbox = mailbox
        self._notices = notices
        self._searcher = searcher
        self._metrics = metrics
        self._settings = settings
        self._hooks = hooks or JobHooks()
        self._clock = clock
        # Owned by the loop's thread (and by stop() once the loop has ended).
        self._launches: dict[str, _Launch] = {}
        self._purged_at = float("-inf")
        self._broken: str | None = None  # why no job can run any more (a stage gave up)

    def load(self) -> None:
        """Queue again (or fail) the jobs an earlier run left RUNNING."""
        limit = self._settings.max_attempts
        for job in self._store.in_state(RUNNING):
            if job.attempt >= limit:
                self._finish(job.job_id, None, job.api, FAILED,
                             f"The daemon restarted during the job {job.attempt} times "
                             f"(jobs.max_attempts = {limit}); it was not finished")
            else:
                logger.info("job %s was cut off by a restart; running it again", job.job_id)
                self._store.requeue(job.job_id, "Resumed after a daemon restart: analysing "
                                    f"again from the start (attempt {job.attempt + 1} of "
                                    f"{limit})")

    def running_ids(self) -> list[str]:
        """Jobs with a launch on this node (for tests and /health)."""
        return sorted(self._launches)

    # ---- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            self._mailbox.wake.wait(self._settings.tick_s)
            if not self.stopping:
                self.reconcile_once()

    def reconcile_once(self) -> None:
        """One turn: end reported launches, launch queued jobs, purge expired ones."""
        self._apply(self._mailbox.take())
        queued = self._store.in_state(QUEUED)
        for job in queued:
            if len(self._launches) >= self._settings.workers:
                break
            if job.job_id in self._launches or not self._hooks.placement(job.job_id):
                continue
            if self._broken is not None:
                self._finish(job.job_id, None, job.api, FAILED, self._broken)
            else:
                self._launch(job)
        self._metrics.queued.set(len(queued) - sum(1 for j in queued if j.job_id in
                                                   self._launches))
        self._metrics.running.set(len(self._launches))
        if time.monotonic() - self._purged_at >= self._settings.purge_every_s:
            self.purge()

    def purge(self) -> int:
        """Delete jobs that finished more than ``retention_s`` ago."""
        self._purged_at = time.monotonic()
        gone = self._store.purge(self._clock() - self._settings.retention_s)
        if gone:
            logger.info("deleted %d jobs older than %.0f s", gone, self._settings.retention_s)
        return gone

    # ---- launching and ending ----------------------------------------------------------
    def _launch(self, job: StoredJob) -> None:
        request = JobRequest.from_dict(job.api, job.request)
        collection = None
        try:
            if job.api == FACE_SEARCH:
                assert request.collection_id is not None
                collection = self._searcher.check(request.collection_id)
        except StreamprocError as exc:  # deleted, or made by another model, since Start
            self._finish(job.job_id, None, job.api, FAILED, exc.message)
            return
        attempt = self._store.launch(job.job_id)
        plan = JobPlan(job.job_id, attempt, job.api, request.video, collection,
                       request.threshold, self._settings.max_matches)
        sensor = JobSensor(self._metrics, job.api, job.job_id)
        run = self._runtime.launch(plan, self._store, self._mailbox, sensor)
        self._launches[job.job_id] = _Launch(run, attempt, job.api, time.monotonic())
        logger.info("job %s (%s of %s) launched, attempt %d", job.job_id, job.api,
                    request.shown, attempt)

    def _apply(self, events: tuple[dict[str, tuple[int, str | None]], str | None]) -> None:
        ended, fail_all = events
        if fail_all is not None:
            self._broken = fail_all  # the analyzer stays down until the daemon restarts
            for job_id, launch in self._launches.items():
                self._runtime.begin_halt(launch.run)
                ended[job_id] = (launch.attempt, fail_all)
        for job_id, (attempt, error) in ended.items():
            launch = self._launches.get(job_id)
            if launch is None or launch.attempt != attempt:
                continue  # a stale launch (halted, or superseded)
            del self._launches[job_id]
            self._metrics.duration.labels(launch.api).observe(
                time.monotonic() - launch.started)
            self._finish(job_id, attempt, launch.api, SUCCEEDED if error is None else FAILED,
                         error or "")

    def _finish(self, job_id: str, attempt: int | None, api: str, state: str,
                message: str) -> None:
        finished = self._clock()
        if not self._store.finish(job_id, attempt, state, message, finished):
            return
        self._metrics.finished.labels(api, state).inc()
        logger.info("job %s %s%s", job_id, state, f": {message}" if message else "")
        job = self._store.get(job_id)
        if job is not None:
            self._notices.send(job, state, message, finished)

    # ---- shutdown -----------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> bool:
        """End the loop, then halt every launch (their jobs resume at the next start)."""
        stopped = super().stop(timeout)
        self._apply(self._mailbox.take())  # launches that ended just now are finished first
        launches, self._launches = list(self._launches.values()), {}
        for launch in launches:
            self._runtime.begin_halt(launch.run)
        deadline = time.monotonic() + self._settings.stop_timeout_s
        while time.monotonic() < deadline and not all(
                self._runtime.halted(launch.run) for launch in launches):
            time.sleep(0.02)
        stuck = [launch for launch in launches if not self._runtime.halted(launch.run)]
        if stuck:
            logger.warning("%d job launches still busy at shutdown; abandoned", len(stuck))
        return stopped
