"""Events for the reconciler, from every thread, bounded by construction.

Destination outages, collection deletions, stage failures and desired-state changes arrive
from the publisher, API threads and the supervisor; sessions only say that they changed (the
facts stay on the session). Each kind of event is kept in a map or set keyed by what it is
about (a processor, a destination, a collection), so the mailbox never holds more than a few
entries per processor: its policy when "full" is COALESCE, and for a destination the latest
outage report wins (it is the current state). The reconciler turns every event into state
it keeps and re-checks on each turn, so an event it failed to apply is not lost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import NamedTuple


class CollectionKey(NamedTuple):
    """One creation of a collection: deleted and created again under its id, it is another."""

    collection_id: str
    created: float


@dataclass
class Events:
    """One drained batch of events."""

    dirty: set[str] = field(default_factory=set)  # processors whose definition changed
    outages: dict[str, str | None] = field(default_factory=dict)  # destination -> message
    unreachable: dict[str, str] = field(default_factory=dict)  # destination -> message
    collections_gone: set[CollectionKey] = field(default_factory=set)  # deleted collections
    fail_all: str | None = None  # a shared stage gave up: why


class Mailbox:
    """Thread-safe, coalescing; :meth:`take` hands the batch to the reconciler's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events = Events()
        self.wake = threading.Event()

    def _post(self) -> None:
        self.wake.set()

    def changed(self, name: str) -> None:
        """A processor's desired state or definition changed."""
        with self._lock:
            self._events.dirty.add(name)
        self._post()

    def poke(self) -> None:
        """Something changed that the reconciler reads from its own state (a session)."""
        self._post()

    def outage(self, destination: str, message: str | None) -> None:
        """A destination is down (message) or back (None)."""
        with self._lock:
            self._events.outages[destination] = message
        self._post()

    def unreachable(self, destination: str, message: str) -> None:
        """A destination has been down too long."""
        with self._lock:
            self._events.unreachable[destination] = message
        self._post()

    def collection_gone(self, collection_id: str, created: float) -> None:
        """A collection (identified by its id and creation time) was deleted."""
        with self._lock:
            self._events.collections_gone.add(CollectionKey(collection_id, created))
        self._post()

    def fail_all(self, reason: str) -> None:
        """A shared stage gave up: every running processor fails."""
        with self._lock:
            self._events.fail_all = reason
        self._post()

    def take(self) -> Events:
        """Everything posted since the last take."""
        with self._lock:
            # Cleared under the lock: a post after this lands in the new batch and sets
            # the event again, so nothing waits for the next tick.
            self.wake.clear()
            events, self._events = self._events, Events()
        return events


class MailboxEvents:
    """The data plane's event interfaces (session and delivery events), posting here.

    Built before the data plane and the reconciler, so neither needs the other to exist.
    """

    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    def session_changed(self, name: str, generation: int) -> None:
        """A session decoded its first frame or ended."""
        self._mailbox.poke()

    def destination_outage(self, destination: str, message: str | None) -> None:
        """An output destination is down (message) or back (None)."""
        self._mailbox.outage(destination, message)

    def destination_unreachable(self, destination: str, message: str) -> None:
        """An output destination has been down too long."""
        self._mailbox.unreachable(destination, message)
