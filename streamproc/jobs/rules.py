"""Every change to stored-video jobs, applied in ledger order (one owner of the job rules).

A job's life is commands, as collections' and processors' are: the node that answers Start
submits ``job.start`` (the ClientRequestToken and the limit on active jobs are decided here,
against the state every node shares), the scheduler that runs it submits ``job.launch``
(which names the node and starts a new attempt), its launch submits ``job.metadata`` and
``job.results`` batches, and the scheduler ends it with ``job.finish``. Writes of a launch
name its attempt and change nothing once another launch took over, so a launch cut off from
its job (its node left the cluster, or restarted) can never write into its successor's
results. On a single node the local ledger applies each at once; in a cluster every node
applies them, so any node answers Get* with the same job and results.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from streamproc.errors import IdempotentParameterMismatchException, LimitExceededException
from streamproc.jobs.commands import AddJobResults, FinishJob, LaunchJob, SetJobMetadata, StartJob
from streamproc.ledger import Applied, Appliers, Ledger
from streamproc.storage.jobs import QUEUED, RUNNING, JobStore, ResultRow, StoredJob

logger = logging.getLogger(__name__)


def expired(job: StoredJob, now: float, retention_s: float) -> bool:
    """A finished job past its retention: its token no longer names it.

    Judged from the command's own time, not from whether this node's purge (each node
    deletes its own copies on its own clock) has run yet, so every node decides alike.
    """
    return job.finished is not None and job.finished < now - retention_s


def token_job(store: JobStore, api: str, token: str, request: dict[str, Any], now: float,
              retention_s: float) -> StoredJob | None:
    """The job a ClientRequestToken names (None: none, or past its retention).

    The same token with another request is IdempotentParameterMismatchException. One rule
    for the answering node's early reply and for the ``job.start`` applier.
    """
    earlier = store.by_token(api, token)
    if earlier is None or expired(earlier, now, retention_s):
        return None
    if earlier.request != request:
        raise IdempotentParameterMismatchException()
    return earlier


class JobRules:
    """Applies job commands to this node's store."""

    def __init__(self, store: JobStore, notify: Callable[[], None]) -> None:
        self._store = store
        self._notify = notify  # wakes this node's scheduler: a job was queued somewhere

    def register(self, appliers: Appliers) -> None:
        """Declare this module's commands."""
        appliers.register(StartJob, self._start)
        appliers.register(LaunchJob, self._launch)
        appliers.register(SetJobMetadata, self._metadata)
        appliers.register(AddJobResults, self._results)
        appliers.register(FinishJob, self._finish)

    def _start(self, c: StartJob, where: Applied) -> str:
        if self._store.get(c.job_id) is not None:
            return c.job_id  # applied before (a replay after a crash)
        if c.token is not None:
            retention = math.inf if c.retention_s is None else c.retention_s  # never expired
            earlier = token_job(self._store, c.api, c.token, c.request, c.created, retention)
            if earlier is not None:
                return earlier.job_id
            stale = self._store.by_token(c.api, c.token)
            if stale is not None:
                self._store.delete(stale.job_id)  # expired: gone here too, as its purge would
        active = len(self._store.in_state(QUEUED, RUNNING))
        if active >= c.max_jobs:
            raise LimitExceededException(
                f"{active} jobs are queued or running; the limit is {c.max_jobs} "
                "(jobs.max_jobs)")
        self._store.insert(c.job_id, c.api, c.token, c.request, c.created)
        self._notify()
        return c.job_id

    def _launch(self, c: LaunchJob, where: Applied) -> int | None:
        """A new attempt on ``node``; None when the job moved on since the caller looked."""
        job = self._store.get(c.job_id)
        if job is None or job.state not in (QUEUED, RUNNING) or job.attempt != c.after:
            return None
        return self._store.launch(job.job_id, c.node, c.message)

    def _metadata(self, c: SetJobMetadata, where: Applied) -> None:
        self._store.set_metadata(c.job_id, c.attempt, c.metadata)

    def _results(self, c: AddJobResults, where: Applied) -> bool:
        return self._store.add_results(c.job_id, c.attempt, list(c.rows))

    def _finish(self, c: FinishJob, where: Applied) -> bool:
        return self._store.finish(c.job_id, c.attempt, c.state, c.message, c.finished)


class JobWrites:
    """The scheduler's and the launches' writes, as commands through the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.node_id = ledger.node_id

    def launch(self, job_id: str, after: int, message: str) -> int | None:
        """Start attempt ``after + 1`` here; None when another node or launch got there."""
        return self._ledger.submit(LaunchJob(job_id, after, self.node_id, message))

    def finish(self, job_id: str, attempt: int | None, state: str, message: str,
               finished: float) -> bool:
        """End the job (``attempt`` None: whatever launch); False if it had ended."""
        return self._ledger.submit(FinishJob(job_id, attempt, state, message, finished))

    # ResultSink, for the launches
    def set_metadata(self, job_id: str, attempt: int, metadata: dict[str, Any]) -> None:
        """The video's VideoMetadata."""
        self._ledger.submit(SetJobMetadata(job_id, attempt, metadata))

    def add_results(self, job_id: str, attempt: int, rows: list[ResultRow]) -> bool:
        """Append results; False when this launch no longer owns the job."""
        return self._ledger.submit(AddJobResults(job_id, attempt, tuple(rows)))
