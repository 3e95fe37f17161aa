"""Every processor the daemon knows: definition, status and desired state, under one lock.

The API threads and the reconciler both read and change entries, so every access to the
table takes the registry's lock and every status change goes through the entry's
:class:`~streamproc.processors.state.ProcessorState` (its own lock). The desired state is
what the user asked for (Start/Stop); the status is what the reconciler made of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from streamproc.errors import ResourceNotFoundException
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.state import ProcessorState


class Desired(str, Enum):
    """Whether the user wants the processor to run; persisted, survives restarts."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


@dataclass
class Entry:
    """One processor. ``spec`` is replaced whole; ``version`` counts the replacements."""

    spec: ProcessorSpec
    state: ProcessorState
    desired: Desired
    session_id: str = ""  # the SessionId of the latest Start
    version: int = 0
    owner: str = ""  # the node whose reports count (the one that launched it last)


class ProcessorRegistry:
    """Name -> entry, thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Entry | None:
        """The entry, or None."""
        with self._lock:
            return self._entries.get(name)

    def require(self, name: str) -> Entry:
        """The entry, or ResourceNotFoundException."""
        entry = self.get(name)
        if entry is None:
            raise ResourceNotFoundException(f"Stream processor {name} not found")
        return entry

    def add(self, entry: Entry) -> None:
        """Register an entry (loading from the store)."""
        with self._lock:
            self._entries[entry.spec.name] = entry

    def insert(self, entry: Entry, check: Callable[[list[Entry]], None]) -> None:
        """Run ``check`` over the current entries, then insert, as one step.

        ``check`` raises to refuse (name taken, limit reached, input in use), so two
        CreateStreamProcessor calls cannot both pass their checks and both insert.
        """
        with self._lock:
            check(list(self._entries.values()))
            self._entries[entry.spec.name] = entry

    def remove(self, name: str) -> None:
        """Forget an entry."""
        with self._lock:
            self._entries.pop(name, None)

    def entries(self) -> list[Entry]:
        """A snapshot of every entry, in name order."""
        with self._lock:
            return [self._entries[n] for n in sorted(self._entries)]
