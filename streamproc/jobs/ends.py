"""How the scheduler ends a job: the ``job.finish`` command, its metric and its notice.

An end the cluster's log did not acknowledge stays in the job's slot (END_UNWRITTEN) and is
written again on the next turn; if the first try landed after all, the job already shows
this very end and its notice is still owed, so it is sent then (once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic

from streamproc.errors import StreamprocError
from streamproc.jobs.kind import JobKinds, UnknownJobKind
from streamproc.jobs.notices import Notices
from streamproc.jobs.rules import JobWrites
from streamproc.jobs.slots import H, JobEnd, Phase, Slots, unwritten
from streamproc.metrics import JobMetrics
from streamproc.storage.jobs import JobStore, StoredJob

logger = logging.getLogger(__name__)


class JobEnds(Generic[H]):
    """Writes ends and sends notices for the scheduler (on its thread)."""

    def __init__(self, store: JobStore, writes: JobWrites, slots: Slots[H], notices: Notices,
                 kinds: JobKinds, metrics: JobMetrics, clock: Callable[[], float]) -> None:
        self._store = store
        self._writes = writes
        self._slots = slots
        self._notices = notices
        self._kinds = kinds
        self._metrics = metrics
        self._clock = clock

    def end(self, job_id: str, end: JobEnd, retry: bool = False) -> None:
        """End the job now, or keep the end in its slot to be written again."""
        if self._finish(job_id, end, retry):
            self._slots.change(job_id, None, f"ended {end.state}")
        else:
            self._slots.change(job_id, unwritten(job_id, end), "its end is not written yet")

    def write_again(self) -> None:
        """Ends that could not be written last turn (the cluster's log was away)."""
        for slot in self._slots.in_phase(Phase.END_UNWRITTEN):
            if slot.end is not None:
                self.end(slot.job_id, slot.end, retry=True)

    def _finish(self, job_id: str, end: JobEnd, retry: bool) -> bool:
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
            self._notify(job, end, job.finished or finished)
        return True

    def _notify(self, row: StoredJob, end: JobEnd, finished: float) -> None:
        try:
            job = self._kinds.job(row)
        except UnknownJobKind as exc:  # a guard: the scheduler ends no job of a kind it lacks
            logger.warning("job %s: no notice sent: %s", row.job_id, exc.message)
            return
        self._notices.send(job, end.state, end.message, finished)
