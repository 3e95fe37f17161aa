"""Events for the reconciler, from every thread, bounded by construction.

Failures, first frames, crashes, destination outages and collection deletions arrive from
source readers, the analyzer, the publisher and API threads. Each kind of event is kept in
a map keyed by what it is about (a processor, a destination, a collection), so the mailbox
never holds more than a few entries per processor: its policy when "full" is COALESCE.
For a processor the first failure of a launch wins (it is the cause, later ones are
consequences); for a destination the latest outage report wins (it is the current state).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Events:
    """One drained batch of events."""

    dirty: set[str] = field(default_factory=set)  # processors whose desired state changed
    running: dict[str, int] = field(default_factory=dict)  # name -> generation
    failed: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (gen, reason)
    crashed: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (gen, error)
    outages: dict[str, str | None] = field(default_factory=dict)  # destination -> message
    unreachable: dict[str, str] = field(default_factory=dict)  # destination -> message
    collections_gone: set[str] = field(default_factory=set)
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

    def running(self, name: str, generation: int) -> None:
        """A launch decoded its first frame."""
        with self._lock:
            self._events.running[name] = generation
        self._post()

    def failed(self, name: str, generation: int, reason: str) -> None:
        """A launch cannot go on."""
        with self._lock:
            current = self._events.failed.get(name)
            if current is None or current[0] < generation:
                self._events.failed[name] = (generation, reason)
        self._post()

    def crashed(self, name: str, generation: int, error: str) -> None:
        """A launch's worker hit a bug."""
        with self._lock:
            current = self._events.crashed.get(name)
            if current is None or current[0] < generation:
                self._events.crashed[name] = (generation, error)
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

    def collection_gone(self, collection_id: str) -> None:
        """A collection was deleted."""
        with self._lock:
            self._events.collections_gone.add(collection_id)
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

    def session_running(self, name: str, generation: int) -> None:
        """A session decoded its first frame."""
        self._mailbox.running(name, generation)

    def session_failed(self, name: str, generation: int, reason: str) -> None:
        """A session cannot go on."""
        self._mailbox.failed(name, generation, reason)

    def session_crashed(self, name: str, generation: int, error: str) -> None:
        """A session's reader hit a bug."""
        self._mailbox.crashed(name, generation, error)

    def destination_outage(self, destination: str, message: str | None) -> None:
        """An output destination is down (message) or back (None)."""
        self._mailbox.outage(destination, message)

    def destination_unreachable(self, destination: str, message: str) -> None:
        """An output destination has been down too long."""
        self._mailbox.unreachable(destination, message)
