"""What the jobs' scheduler is built from: its runtime, collaborators, settings and hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from streamproc.dataplane.stored.jobrunners import InputRunner
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.rules import JobWrites
from streamproc.metrics import JobMetrics
from streamproc.storage.jobs import JobStore

H = TypeVar("H")  # the runtime's handle of a launch


# What the scheduler drives (the data plane's job runners, or a fake in tests) is what one
# runner is: launch, and the halting side the control loop uses.
JobRuntime = InputRunner


@dataclass(frozen=True)
class SchedulerSettings:
    """Capacity, retries, retention and pacing."""

    workers: int = 1
    max_attempts: int = 3
    retention_s: float = 7 * 86400.0
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
class SchedulerParts(Generic[H]):
    """What the scheduler works with besides its settings."""

    store: JobStore  # read here; written through ``writes`` (purge: locally)
    writes: JobWrites
    runtime: JobRuntime[H]
    mailbox: JobMailbox
    notices: Notices
    kinds: JobKinds
    metrics: JobMetrics
