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

A job of a kind this node lacks (a newer node's, mid-upgrade) is never launched, ended or
failed here: it stays as it is for a node that knows the kind (logged once). It still counts
in placement, so all nodes agree where each job goes; one placed here waits until placement
moves it (this node leaves, or comes back upgraded).

What a job runs is its kind's (:mod:`.kind`): the loop knows no kind. What it holds per job
is one :class:`~streamproc.jobs.slots.JobSlot`; the loop's shape (mailbox wait, halts with
deadlines, bounded stop) is :class:`~streamproc.controlloop.ControlLoop`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from streamproc.controlloop import ControlLoop, Halts
from streamproc.dataplane.stored.jobrun import JobPlan
from streamproc.errors import StreamprocError
from streamproc.jobs.ends import JobEnds
from streamproc.jobs.mailbox import Batch
from streamproc.jobs.parts import JobHooks, SchedulerParts, SchedulerSettings
from streamproc.jobs.slots import H, JobEnd, Phase, Slots, running, unconfirmed
from streamproc.metrics import JobSensor
from streamproc.storage.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, StoredJob

logger = logging.getLogger(__name__)


class JobScheduler(ControlLoop[H]):
    """Makes running launches match the queue; ends jobs; deletes expired ones."""

    def __init__(self, parts: SchedulerParts[H], settings: SchedulerSettings,
                 hooks: JobHooks | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__("jobs", parts.mailbox.wake, settings.tick_s,
                         Halts(parts.runtime, settings.stop_timeout_s))
        self._store = parts.store
        self._writes = parts.writes
        self._runtime = parts.runtime
        self._mailbox = parts.mailbox
        self._kinds = parts.kinds
        self._metrics = parts.metrics
        self._settings = settings
        self._hooks = hooks or JobHooks()
        self._clock = clock
        # Owned by the loop's thread (and by stop() once it ended), as is _unknown.
        self._slots: Slots[H] = Slots()
        self._ends = JobEnds(parts.store, parts.writes, self._slots, parts.notices,
                             parts.kinds, parts.metrics, clock)
        self._unknown: set[str] = set()  # active jobs of a kind not here, already logged
        self._purged_at = float("-inf")
        self._broken: str | None = None  # why no job can run any more (a stage gave up)

    def load(self) -> None:
        """One turn before the loop starts.

        So a restarted daemon answers Get* at once with the jobs it resumed (or failed).
        In a cluster, before the node has joined its group, nothing is placed here yet and
        this changes nothing.
        """
        self.reconcile_once()

    # ---- the loop ---------------------------------------------------------------------
    def reconcile_once(self) -> None:
        """One turn: end reported launches, halt lost ones, launch jobs placed here, purge."""
        self._apply(self._mailbox.take())
        self._ends.write_again()
        active = self._store.in_state(QUEUED, RUNNING)
        here = self._hooks.placement([(j.job_id, j.node if j.state == RUNNING else None)
                                      for j in active])
        self._halt_lost({j.job_id: j for j in active})
        ids = {j.job_id for j in active}
        self._unknown &= ids
        for slot in self._slots.in_phase(Phase.UNCONFIRMED):
            if slot.job_id not in ids:
                self._slots.change(slot.job_id, None, "its job is no longer active")
        log_away = False
        for job in active:
            log_away = self._converge(job, job.job_id in here, log_away)
        self._metrics.queued.set(sum(1 for j in active if j.state == QUEUED and
                                     self._slots.phase(j.job_id) is not Phase.RUNNING))
        self._metrics.running.set(len(self._slots.in_phase(Phase.RUNNING)))
        self.halts.finish()
        if time.monotonic() - self._purged_at >= self._settings.purge_every_s:
            self.purge()

    def _converge(self, job: StoredJob, placed: bool, log_away: bool) -> bool:
        """One active job's turn; whether the log is away (no more launches this turn)."""
        if not self._kinds.knows(job.api):
            self._leave_unknown(job, placed)
            return log_away
        phase = self._slots.phase(job.job_id)
        if phase in (Phase.RUNNING, Phase.END_UNWRITTEN):
            return log_away
        if not placed:
            slot = self._slots.get(job.job_id)
            if slot is not None and not self._landed(job, slot.attempt):
                # Only forgotten (another launch won, or the wait ran out), never started
                # here while not placed here; else it held a slot till the job ended.
                self._adopt(job)
            return log_away
        if self._broken is not None:
            self._ends.end(job.job_id, JobEnd(job.attempt, job.api, FAILED, self._broken))
        elif phase is Phase.UNCONFIRMED:
            self._adopt(job)
        elif job.state == RUNNING and job.attempt >= self._settings.max_attempts:
            self._ends.end(job.job_id, JobEnd(
                job.attempt, job.api, FAILED,
                f"The job was cut off {job.attempt} times by a daemon restart or its node "
                f"leaving the cluster (jobs.max_attempts = {self._settings.max_attempts});"
                f" it was not finished"))
        elif not log_away and self._slots.working() < self._settings.workers:
            return not self._launch(job)
        return log_away

    def _leave_unknown(self, job: StoredJob, placed: bool) -> None:
        """A job of a kind this node lacks: left as it is; said once, when placed here."""
        if placed and job.job_id not in self._unknown:
            self._unknown.add(job.job_id)
            logger.warning("job %s is placed here, but this node runs no %s jobs; it is left "
                           "%s for a node that does", job.job_id, job.api, job.state)

    def _halt_lost(self, active: dict[str, StoredJob]) -> None:
        """Halt launches whose job ended or was launched again (here or by another node).

        Placement alone halts nothing: a launch goes on through a moment of fencing, and
        if its job really moved, the new launch's ``job.launch`` command says so (two
        launches of one job waste work but cannot mix results: writes name the attempt).
        """
        for slot, run in self._slots.launches():
            job = active.get(slot.job_id)
            if job is not None and job.attempt == slot.attempt and \
                    job.node == self._writes.node_id:
                continue
            logger.info("job %s is no longer this launch's (attempt %s); halting it",
                        slot.job_id, slot.attempt)
            self._slots.change(slot.job_id, None, "halted: the launch is lost")
            self.halts.begin(slot.job_id, run)

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
            self._slots.change(job.job_id, unconfirmed(
                job.job_id, job.attempt + 1,
                time.monotonic() + self._settings.unconfirmed_wait_s), "unacknowledged")
            return False
        if attempt is None:  # another launch got there first; perhaps our own, landed late
            current = self._store.get(job.job_id)
            if current is not None and self._landed(current, job.attempt + 1):
                self._start(replace(plan, attempt=current.attempt))
            return True
        self._start(replace(plan, attempt=attempt))
        return True

    def _landed(self, job: StoredJob, attempt: int | None) -> bool:
        """Whether the log holds this node's launch ``attempt`` of ``job``."""
        return job.state == RUNNING and job.attempt == attempt and \
            job.node == self._writes.node_id

    def _adopt(self, job: StoredJob) -> None:
        """Run an unacknowledged launch once it landed; wait for it a while; else forget it."""
        slot = self._slots.get(job.job_id)
        if slot is None or slot.attempt is None:
            return
        if self._landed(job, slot.attempt):
            plan = self._plan(job, slot.attempt)  # a later turn: check the kind's needs again
            if plan is None:
                return
            self._start(plan)  # no new attempt spent
        elif job.attempt >= slot.attempt or time.monotonic() >= slot.give_up:
            self._slots.change(job.job_id, None, "another launch won, or it never landed")

    def _plan(self, job: StoredJob, attempt: int) -> JobPlan | None:
        """What attempt ``attempt`` runs; None if its kind refused it now (the job FAILED)."""
        try:
            view = self._kinds.job(job)
            results = view.kind.results(view.request)
        except StreamprocError as exc:  # its kind cannot run it now, and says why
            self._ends.end(job.job_id, JobEnd(attempt, job.api, FAILED, exc.message))
            return None
        return JobPlan(job.job_id, attempt, job.api, view.request.source, results,
                       view.kind.input, view.kind.stage)

    def _start(self, plan: JobPlan) -> None:
        sensor = JobSensor(self._metrics, plan.api, plan.job_id)
        run = self._runtime.launch(plan, self._writes, self._mailbox, sensor)
        self._slots.change(plan.job_id, running(plan.job_id, run, plan.attempt, plan.api,
                                                time.monotonic()), "launched")
        logger.info("job %s (%s of %s) launched, attempt %d", plan.job_id, plan.api,
                    plan.source.shown, plan.attempt)

    def _apply(self, batch: Batch) -> None:
        ended: dict[str, tuple[int | None, str | None]] = {
            e.job_id: (e.attempt, e.error) for e in batch.ended}
        if batch.down is not None:
            self._broken = batch.down.reason  # the analyzer stays down until the restart
            for halting, run in self._slots.launches():
                self.halts.begin(halting.job_id, run)
                ended[halting.job_id] = (halting.attempt, batch.down.reason)
        for job_id, (attempt, error) in ended.items():
            slot = self._slots.get(job_id)
            if slot is None or slot.phase is not Phase.RUNNING or slot.attempt != attempt:
                continue  # a stale launch (halted, or superseded)
            self._metrics.duration.labels(slot.api).observe(time.monotonic() - slot.started)
            self._ends.end(job_id, JobEnd(slot.attempt, slot.api,
                                          SUCCEEDED if error is None else FAILED, error or ""))

    # ---- shutdown -----------------------------------------------------------------------------
    def _halt_all(self) -> None:
        """Halt every launch (their jobs resume at the next start); ControlLoop waits."""
        self._apply(self._mailbox.take())  # launches that ended just now are finished first
        for slot, run in self._slots.launches():
            self._slots.change(slot.job_id, None, "halted: the daemon stops")
            self.halts.begin(slot.job_id, run)
