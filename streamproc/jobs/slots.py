"""What the scheduler holds for each job on this node: one record, its phase held as data.

A job with no slot holds nothing here. Its slot's phase says why it holds one:

- ``UNCONFIRMED``: this node sent its ``job.launch`` command and heard no acknowledgement,
  so the command may still land; the slot waits for it (and holds a worker meanwhile);
- ``RUNNING``: a launch runs here (it holds a worker);
- ``END_UNWRITTEN``: its end is decided but the cluster's log did not take it; it is
  written again every turn.

Moves are checked against :data:`TRANSITIONS` in :meth:`Slots.change`, the one place a
phase changes; anything else is a bug in the scheduler, not a user error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)
H = TypeVar("H")  # the runtime's handle of a launch


class Phase(str, Enum):
    """Why a job holds a slot on this node."""

    UNCONFIRMED = "unconfirmed"
    RUNNING = "running"
    END_UNWRITTEN = "end unwritten"


P = Phase
# Allowed moves; None is "no slot". An unwritten end that fails again stays where it is.
TRANSITIONS: dict[Phase | None, frozenset[Phase | None]] = {
    None: frozenset({P.UNCONFIRMED, P.RUNNING, P.END_UNWRITTEN}),
    P.UNCONFIRMED: frozenset({P.RUNNING, P.END_UNWRITTEN, None}),
    P.RUNNING: frozenset({P.END_UNWRITTEN, None}),
    P.END_UNWRITTEN: frozenset({P.END_UNWRITTEN, None}),
}
WORKING = frozenset({P.UNCONFIRMED, P.RUNNING})  # the phases that hold a worker


class IllegalMove(RuntimeError):
    """A move not in :data:`TRANSITIONS`."""


@dataclass(frozen=True)
class JobEnd:
    """How a job ends: the attempt it ends (None: whatever launch), its state and message."""

    attempt: int | None
    api: str
    state: str
    message: str


@dataclass(frozen=True)
class JobSlot(Generic[H]):
    """One job's record; which fields mean something depends on the phase."""

    job_id: str
    phase: Phase
    attempt: int | None = None  # RUNNING: the launch's; UNCONFIRMED: the one it would start
    run: H | None = None  # RUNNING: the runtime's handle of the launch
    api: str = ""  # RUNNING: the job's kind, for metrics
    started: float = 0.0  # RUNNING: when it was launched (monotonic)
    give_up: float = 0.0  # UNCONFIRMED: stop waiting for the command then (monotonic)
    end: JobEnd | None = None  # END_UNWRITTEN: the end to write again


def running(job_id: str, run: H, attempt: int, api: str, started: float) -> JobSlot[H]:
    """A launch runs here."""
    return JobSlot(job_id, P.RUNNING, attempt, run=run, api=api, started=started)


def unconfirmed(job_id: str, attempt: int, give_up: float) -> JobSlot[H]:
    """A launch command for ``attempt`` that may still land, waited for until ``give_up``."""
    return JobSlot(job_id, P.UNCONFIRMED, attempt, give_up=give_up)


def unwritten(job_id: str, end: JobEnd) -> JobSlot[H]:
    """An end the log did not take yet."""
    return JobSlot(job_id, P.END_UNWRITTEN, end.attempt, end=end)


class Slots(Generic[H]):
    """The per-job records, owned by the scheduler's thread (and by stop() after it)."""

    def __init__(self) -> None:
        self._slots: dict[str, JobSlot[H]] = {}

    def get(self, job_id: str) -> JobSlot[H] | None:
        """The job's slot, if it holds one."""
        return self._slots.get(job_id)

    def phase(self, job_id: str) -> Phase | None:
        """The job's phase; None without a slot."""
        slot = self._slots.get(job_id)
        return None if slot is None else slot.phase

    def in_phase(self, *phases: Phase) -> list[JobSlot[H]]:
        """The slots in any of ``phases`` (a copy: changing them while iterating is safe)."""
        return [s for s in self._slots.values() if s.phase in phases]

    def launches(self) -> list[tuple[JobSlot[H], H]]:
        """The RUNNING slots with their launches' handles (a copy, as ``in_phase``)."""
        return [(s, s.run) for s in self.in_phase(P.RUNNING) if s.run is not None]

    def working(self) -> int:
        """How many slots hold a worker."""
        return sum(1 for s in self._slots.values() if s.phase in WORKING)

    def change(self, job_id: str, new: JobSlot[H] | None, why: str) -> None:
        """The one way a slot changes: checks the table, logs, replaces (or frees) it."""
        old = self._slots.get(job_id)
        before, after = (None if old is None else old.phase), (None if new is None else new.phase)
        if before is None and after is None:
            return
        if after not in TRANSITIONS[before]:
            msg = f"job {job_id}: slot {_shown(before)} -> {_shown(after)} is not allowed"
            raise IllegalMove(msg)
        if new is None:
            del self._slots[job_id]
        else:
            self._slots[job_id] = new
        logger.debug("job %s: slot %s -> %s (%s)", job_id, _shown(before), _shown(after), why)


def _shown(phase: Phase | None) -> str:
    return "none" if phase is None else phase.value
