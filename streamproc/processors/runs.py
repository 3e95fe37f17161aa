"""What the reconciler keeps about each processor: one record, made on demand, dropped once.

Everything the loop remembers about one processor between turns lives in its
:class:`ProcessorSlot` (the session launched here, the restart budget of its Start, when a
crashed one may be relaunched, a failure not recorded yet, a handover wait, what was said
last), so a processor that is gone is forgotten in one place: :meth:`ProcessorSlots.drop`.
Owned by the loop's thread, like the reconciler's other tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from streamproc.dataplane.live.session import Session
from streamproc.processors.mailbox import CollectionKey
from streamproc.processors.reports import Posted, Said
from streamproc.supervisor import RestartBudget


@dataclass
class Run:
    """The session launched here for a processor, and what it was launched for."""

    session: Session
    session_id: str  # the Start it runs
    version: int  # the definition it has (regions are updated in place)

    @property
    def collection(self) -> CollectionKey:
        """The collection it searches, as it was at launch."""
        info = self.session.plan.collection
        return CollectionKey(info.collection_id, info.created)


@dataclass(frozen=True)
class StartBudget:
    """The restart budget of one Start: a new Start gets a new one."""

    session_id: str
    budget: RestartBudget


@dataclass(frozen=True)
class PendingFailure:
    """A failure decided here and not yet in the state (nothing launches for that Start)."""

    session_id: str
    reason: str


@dataclass(frozen=True)
class HandoverWait:
    """Waiting since ``since`` for ``owner`` to release one Start of the processor."""

    owner: str
    session_id: str
    since: float


@dataclass
class ProcessorSlot:
    """Everything the loop keeps about one processor between turns."""

    name: str
    run: Run | None = None
    budget: StartBudget | None = None
    retry_at: float = 0.0  # a crashed run is relaunched from then on
    failing: PendingFailure | None = None
    waiting: HandoverWait | None = None
    posted: dict[Said, Posted] = field(default_factory=dict)

    def budget_for(self, session_id: str, max_restarts: int,
                   window_s: float) -> RestartBudget:
        """The restart budget of this Start (a new Start, a new budget)."""
        if self.budget is None or self.budget.session_id != session_id:
            self.budget = StartBudget(session_id, RestartBudget(max_restarts, window_s))
        return self.budget.budget

    def waited_s(self, owner: str, session_id: str, now: float) -> float:
        """How long this node has waited for ``owner``'s release of this Start.

        The wait is for this owner's release of this Start: a new owner or Start waits anew.
        """
        wait = self.waiting
        if wait is None or (wait.owner, wait.session_id) != (owner, session_id):
            wait = self.waiting = HandoverWait(owner, session_id, now)
        return now - wait.since


class ProcessorSlots:
    """Processor name -> its slot."""

    def __init__(self) -> None:
        self._slots: dict[str, ProcessorSlot] = {}

    def of(self, name: str) -> ProcessorSlot:
        """The slot of ``name``, made empty if it has none yet."""
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = ProcessorSlot(name)
        return slot

    def runs(self) -> Iterator[ProcessorSlot]:
        """The slots with a session launched here."""
        return (slot for slot in list(self._slots.values()) if slot.run is not None)

    def running(self) -> set[str]:
        """Names with a session launched here."""
        return {slot.name for slot in self.runs()}

    def collections(self) -> set[CollectionKey]:
        """The collections the sessions launched here search."""
        return {slot.run.collection for slot in self.runs() if slot.run is not None}

    def others(self, names: set[str]) -> list[ProcessorSlot]:
        """The slots of processors not in ``names`` (gone from the registry)."""
        return [slot for name, slot in self._slots.items() if name not in names]

    def drop(self, name: str) -> None:
        """Forget everything about ``name``."""
        self._slots.pop(name, None)
