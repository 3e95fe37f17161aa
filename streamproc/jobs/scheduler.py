"""The jobs' scheduler: one loop per daemon that owns every job launch on its node.

Start only queues a job (a ``job.start`` command) and wakes the :class:`JobMailbox`. This
loop, on its own thread, launches the jobs ``placement`` gives this node, oldest first,
while fewer than ``workers`` run, and ends them when their launch reports (SUCCEEDED, or
FAILED with the reason), sending the completion notice; failures are events for it, never
work done on the thread that noticed them; when the analysis stage gave up for good on a
single daemon, running and queued jobs FAIL with its reason instead of waiting for it (a
cluster node leaves instead, and its jobs run elsewhere or after its restart). It also deletes
jobs ``retention_s`` after they finished. Every change is a command (:mod:`.rules`).

``placement`` sees every active job with the node running it (None while queued) and
returns those this node should run: all of them on a single node; in a cluster a job stays
on the node that launched it while that node is a member, and queued jobs and those of a
node that left are shared out over the members as processors are. A launch of a job this
node no longer has (another launch took over, here or elsewhere) is halted.

A job RUNNING here with no launch (the daemon restarted under it, or the node that ran it
left) runs again from the beginning, until ``max_attempts`` launches; then it FAILS with the
reason. Stopping halts every launch without touching its row, so the next start resumes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from streamproc.dataplane.jobrun import JobEvents, JobPlan, ResultSink
from streamproc.errors import StreamprocError
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.request import JobRequest
from streamproc.jobs.rules import JobWrites
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
    # Rows are deleted this long after their retention ran out, so that no node deletes a
    # job that a ClientRequestToken, judged by the command's own time (jobs.rules.expired),
    # still names on the others (apply delays, clock skew).
    purge_grace_s: float = 3600.0
    # An unacknowledged launch command may still land; its job waits this long for it.
    unconfirmed_wait_s: float = 60.0
    stop_timeout_s: float = 2.0


Active = list[tuple[str, str | None]]  # (job id, the node running it or None), oldest first


def _everything(active: Active) -> set[str]:
    return {job_id for job_id, _ in active}


@dataclass(frozen=True)
class JobHooks:
    """Where cluster mode plugs in: which of the active jobs run on this node."""

    placement: Callable[[Active], set[str]] = _everything


@dataclass(frozen=True)
class _End:
    """How a job ends: the attempt it ends, and its state and message."""

    attempt: int
    api: str
    state: str
    message: str


@dataclass
class _Launch:
    run: Any
    attempt: int
    api: str
    started: float


class JobScheduler(Service):
    """Makes running launches match the queue; ends jobs; deletes expired ones."""

    def __init__(self, store: JobStore, writes: JobWrites, runtime: JobRuntime,
                 mailbox: JobMailbox, notices: Notices, searcher: FaceSearcher,
                 metrics: JobMetrics, settings: SchedulerSettings,
                 hooks: JobHooks | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__("jobs")
        self._store = store  # read here; written through self._writes (purge: locally)
        self._writes = writes
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
        # Ends not yet written (the cluster's log was away), written again each turn.
        self._unwritten: dict[str, _End] = {}
        # Launch commands not acknowledged (they may land late): job id -> (the attempt it
        # would start, when to stop waiting for it). Each holds a worker slot meanwhile.
        self._unconfirmed: dict[str, tuple[int, float]] = {}
        self._purged_at = float("-inf")
        self._broken: str | None = None  # why no job can run any more (a stage gave up)

    def load(self) -> None:
        """One turn before the loop starts.

        So a restarted daemon answers Get* at once with the jobs it resumed (or failed).
        In a cluster, before the node has joined its group, nothing is placed here yet and
        this changes nothing.
        """
        self.reconcile_once()

    def running_ids(self) -> list[str]:
        """Jobs with a launch on this node, for tests between turns (the loop owns the table)."""
        return sorted(self._launches)

    # ---- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            self._mailbox.wake.wait(self._settings.tick_s)
            if not self.stopping:
                self.reconcile_once()

    def reconcile_once(self) -> None:
        """One turn: end reported launches, halt lost ones, launch jobs placed here, purge."""
        self._apply(self._mailbox.take())
        self._write_ends()
        active = self._store.in_state(QUEUED, RUNNING)
        here = self._hooks.placement([(j.job_id, j.node if j.state == RUNNING else None)
                                      for j in active])
        self._halt_lost({j.job_id: j for j in active})
        ids = {j.job_id for j in active}
        self._unconfirmed = {j: u for j, u in self._unconfirmed.items() if j in ids}
        log_away = False
        for job in active:
            if job.job_id in self._launches or job.job_id in self._unwritten:
                continue
            if job.job_id not in here:
                pending = self._unconfirmed.get(job.job_id)
                if pending is not None and not self._landed(job, pending[0]):
                    # Only forgotten (another launch won, or the wait ran out), never started
                    # here while not placed here; else it held a slot till the job ended.
                    self._adopt(job)
                continue
            if self._broken is not None:
                self._end(job.job_id, _End(job.attempt, job.api, FAILED, self._broken))
            elif job.job_id in self._unconfirmed:
                self._adopt(job)
            elif job.state == RUNNING and job.attempt >= self._settings.max_attempts:
                self._end(job.job_id, _End(
                    job.attempt, job.api, FAILED,
                    f"The job was cut off {job.attempt} times by a daemon restart or its node "
                    f"leaving the cluster (jobs.max_attempts = {self._settings.max_attempts});"
                    f" it was not finished"))
            elif not log_away and \
                    len(self._launches) + len(self._unconfirmed) < self._settings.workers:
                log_away = not self._launch(job)
        self._metrics.queued.set(sum(1 for j in active if j.state == QUEUED and
                                     j.job_id not in self._launches))
        self._metrics.running.set(len(self._launches))
        if time.monotonic() - self._purged_at >= self._settings.purge_every_s:
            self.purge()

    def _halt_lost(self, active: dict[str, StoredJob]) -> None:
        """Halt launches whose job ended or was launched again (here or by another node).

        Placement alone halts nothing: a launch goes on through a moment of fencing, and
        if its job really moved, the new launch's ``job.launch`` command says so (two
        launches of one job waste work but cannot mix results: writes name the attempt).
        """
        for job_id, launch in list(self._launches.items()):
            job = active.get(job_id)
            if job is not None and job.attempt == launch.attempt and \
                    job.node == self._writes.node_id:
                continue
            logger.info("job %s is no longer this launch's (attempt %d); halting it", job_id,
                        launch.attempt)
            del self._launches[job_id]
            self._runtime.begin_halt(launch.run)

    def purge(self) -> int:
        """Delete jobs that finished more than ``retention_s`` (+ the grace) ago."""
        self._purged_at = time.monotonic()
        gone = self._store.purge(self._clock() - self._settings.retention_s -
                                 self._settings.purge_grace_s)
        if gone:
            logger.info("deleted %d jobs older than %.0f s", gone, self._settings.retention_s)
        return gone

    # ---- launching and ending ----------------------------------------------------------
    def _launch(self, job: StoredJob) -> bool:
        """Launch a job placed here; False if the cluster's log could not be reached."""
        plan = self._plan(job, job.attempt)
        if plan is None:
            return True
        message = "" if job.state == QUEUED else (
            f"Resumed after a daemon restart or its node leaving the cluster: analysing "
            f"again from the start (attempt {job.attempt + 1} of "
            f"{self._settings.max_attempts})")
        try:
            attempt = self._writes.launch(job.job_id, job.attempt, message)
        except StreamprocError as exc:  # the log is away: the command may still land
            logger.warning("job %s not launched yet: %s", job.job_id, exc.message)
            self._unconfirmed[job.job_id] = (job.attempt + 1, time.monotonic() +
                                             self._settings.unconfirmed_wait_s)
            return False
        if attempt is None:  # another launch got there first; perhaps our own, landed late
            current = self._store.get(job.job_id)
            if current is not None and self._landed(current, job.attempt + 1):
                self._start(replace(plan, attempt=current.attempt))
            return True
        self._start(replace(plan, attempt=attempt))
        return True

    def _landed(self, job: StoredJob, attempt: int) -> bool:
        """Whether the log holds this node's launch ``attempt`` of ``job``."""
        return job.state == RUNNING and job.attempt == attempt and \
            job.node == self._writes.node_id

    def _adopt(self, job: StoredJob) -> None:
        """Run an unacknowledged launch once it landed; wait for it a while; else forget it."""
        attempt, give_up = self._unconfirmed[job.job_id]
        if self._landed(job, attempt):
            del self._unconfirmed[job.job_id]
            plan = self._plan(job, attempt)  # a later turn: check the collection again
            if plan is not None:
                self._start(plan)  # no new attempt spent
        elif job.attempt >= attempt or time.monotonic() >= give_up:
            del self._unconfirmed[job.job_id]  # another launch won, or it never landed

    def _plan(self, job: StoredJob, attempt: int) -> JobPlan | None:
        """What attempt ``attempt`` runs; None if its collection is gone (the job FAILED)."""
        request = JobRequest.from_dict(job.api, job.request)
        collection = None
        if job.api == FACE_SEARCH:
            assert request.collection_id is not None
            try:
                collection = self._searcher.check(request.collection_id)
            except StreamprocError as exc:  # deleted, or made by another model, since Start
                self._end(job.job_id, _End(attempt, job.api, FAILED, exc.message))
                return None
        return JobPlan(job.job_id, attempt, job.api, request.video, collection,
                       request.threshold, self._settings.max_matches)

    def _start(self, plan: JobPlan) -> None:
        sensor = JobSensor(self._metrics, plan.api, plan.job_id)
        run = self._runtime.launch(plan, self._writes, self._mailbox, sensor)
        self._launches[plan.job_id] = _Launch(run, plan.attempt, plan.api, time.monotonic())
        logger.info("job %s (%s of %s/%s) launched, attempt %d", plan.job_id, plan.api,
                    plan.video.bucket, plan.video.name, plan.attempt)

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
            self._end(job_id, _End(launch.attempt, launch.api,
                                   SUCCEEDED if error is None else FAILED, error or ""))

    def _end(self, job_id: str, end: _End, retry: bool = False) -> None:
        if not self._finish(job_id, end, retry):
            self._unwritten[job_id] = end

    def _write_ends(self) -> None:
        """Ends that could not be written last turn (the cluster's log was away)."""
        for job_id, end in list(self._unwritten.items()):
            del self._unwritten[job_id]
            self._end(job_id, end, retry=True)

    def _finish(self, job_id: str, end: _End, retry: bool) -> bool:
        """End the job and send its notice; False if the end could not be written.

        ``retry``: an earlier try was not acknowledged; if it landed after all, the job
        shows this very end, and its notice is still owed.
        """
        finished = self._clock()
        try:
            changed = self._writes.finish(job_id, end.attempt, end.state, end.message,
                                          finished)
        except StreamprocError as exc:
            logger.warning("job %s: its end (%s) is not written yet: %s", job_id, end.state,
                           exc.message)
            return False
        job = self._store.get(job_id)
        if not changed and not (retry and job is not None and (
                job.attempt, job.state, job.status_message) ==
                (end.attempt, end.state, end.message)):
            return True  # already ended, or another launch owns it
        self._metrics.finished.labels(end.api, end.state).inc()
        logger.info("job %s %s%s", job_id, end.state,
                    f": {end.message}" if end.message else "")
        if job is not None:
            self._notices.send(job, end.state, end.message, job.finished or finished)
        return True

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
