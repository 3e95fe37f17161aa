"""Records bound for one destination, kept in order until it acknowledges them.

The oldest records sit in memory (at most ``memory_limit``); once that is full, newer ones
go to the disk spool and come back into memory, in order, as room frees up. A record leaves
when the destination acknowledged it, when the destination refused it for good (moved aside
to the spool's dead letters through :class:`Refusals`, so one poison record cannot hold up
those behind it), or when its processor was deleted (:meth:`Outbox.drop`). After a failed
send every record not yet acknowledged is sent again in its original order, so delivery is
at-least-once; records the destination already acknowledged are released then, never sent
again, and an idempotent Kafka producer removes duplicates within one producer session.

Threading: ``put`` runs on the analyzer thread (and the jobs' threads, for notices),
everything else on the destination's sender thread (``sender.Sender``), and every access
to the in-memory queue and its counters takes ``_lock`` (an unlocked walk of the deque
while ``put`` appended to it once broke rewinds; tests/test_outbox_stress.py).
Acknowledgements are read by polling the send futures from the head of the queue (no
per-record callbacks), which keeps the cost per record to a few microseconds.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streamproc.metrics import ProcessorSensor
from streamproc.storage.spool import Spool


@dataclass
class Entry:
    """One record and, once sent, the transport's future for it."""

    processor: str
    topic: str
    key: bytes
    value: bytes
    decoded_at: float | None = None  # None for records read back from disk
    sensor: ProcessorSensor | None = None
    spool_id: int | None = None
    future: Any = None
    sent_at: float = 0.0


class Refusals(Protocol):
    """Which errors mean a record can never be sent, and what moving one aside involves."""

    def refuses(self, error: BaseException) -> bool:
        """True if the destination will refuse this record however often it is sent."""

    def set_aside(self, entry: Entry, error: BaseException) -> None:
        """Keep the refused record (dead letters), count it, log it."""


class Outbox:
    """Ordered, bounded-memory, disk-backed queue for one destination."""

    def __init__(self, cluster: str, spool: Spool, memory_limit: int,
                 sensor_for: Callable[[str], ProcessorSensor | None],
                 spooled: dict[str, int] | None = None,
                 refusals: Refusals | None = None) -> None:
        self.cluster = cluster
        self._spool = spool
        self._limit = memory_limit
        self._sensor_for = sensor_for
        self._refusals = refusals
        self._memory: deque[Entry] = deque()
        self._sent = 0  # entries at the head of _memory that were handed to the transport
        self._overflow: list[Entry] = []
        # Records held per processor (memory, overflow, disk): whose records wait here.
        self._owners: Counter[str] = Counter(spooled or {})
        self._on_disk = sum(self._owners.values())
        self._cursor = float("-inf")
        self._sensors: dict[str, ProcessorSensor | None] = {}  # for records back from disk
        self._lock = threading.Lock()
        self._closed = False  # after persist_unsent: late records go straight to disk
        self.failed_at: float | None = None
        self.reset_pending = False  # a send failed: the transport must start afresh
        self.last_error = ""

    def put(self, entry: Entry) -> None:
        """Queue a record; it overflows to disk (via the sender thread) when memory is full."""
        with self._lock:
            self._sensors[entry.processor] = entry.sensor
            self._owners[entry.processor] += 1
            if self._closed:
                # A stage that outlived its stop (abandoned after a timeout) still may
                # not lose a record: write it behind everything already spooled.
                self._spool.append(self.cluster, [(entry.processor, entry.topic, entry.key,
                                                   entry.value)])
            elif self._on_disk or self._overflow or len(self._memory) >= self._limit:
                self._overflow.append(entry)
            else:
                self._memory.append(entry)

    def sizes(self) -> tuple[int, int]:
        """(records in memory, records on disk or waiting to be written there)."""
        with self._lock:
            return len(self._memory), self._on_disk + len(self._overflow)

    def owners(self) -> set[str]:
        """The processors (or jobs) with records held here."""
        with self._lock:
            return {name for name, count in self._owners.items() if count > 0}

    def sync_disk(self) -> None:
        """Write overflow to the spool and refill memory from it, in order."""
        with self._lock:
            if self._closed:  # persisted at shutdown: memory must stay empty
                return
            overflow, self._overflow = self._overflow, []
            # Counted as on disk before they are written, so put() keeps sending new
            # records after them and order holds.
            self._on_disk += len(overflow)
            room = self._limit - len(self._memory)
        try:
            self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                              for e in overflow])
        except BaseException:
            with self._lock:  # not written: back in front of what arrived meanwhile
                self._overflow[:0] = overflow
                self._on_disk -= len(overflow)
            raise
        if room <= 0 or not self._on_disk:
            return
        rows = self._spool.read(self.cluster, self._cursor, room)
        entries = [Entry(row.processor, row.topic, row.key, row.value,
                         sensor=self._sensor(row.processor), spool_id=row.row_id)
                   for row in rows]
        with self._lock:
            self._memory.extend(entries)
            if rows:
                self._cursor = rows[-1].pos
            self._on_disk -= len(rows)

    def _sensor(self, processor: str) -> ProcessorSensor | None:
        with self._lock:
            if processor in self._sensors:
                return self._sensors[processor]
        return self._sensor_for(processor)  # spooled by an earlier run

    def reap(self) -> int:
        """Release acknowledged records from the head; set refused ones aside; else rewind.

        Returns how many were acknowledged.
        """
        now = time.monotonic()
        released: list[Entry] = []
        refused: list[Entry] = []
        with self._lock:
            while self._sent and self._memory[0].future.is_done:
                head = self._memory[0]
                if head.future.failed() and not self._refused(head.future.exception):
                    # After the acknowledgements released above: the failure is the news.
                    released += self._rewind_locked(repr(head.future.exception))
                    if head.sensor is not None:
                        head.sensor.publish_failed()
                    break
                self._memory.popleft()
                self._sent -= 1
                self._forget_locked(head.processor)
                (refused if head.future.failed() else released).append(head)
                if not head.future.failed():
                    self.failed_at = None
        self._set_aside(refused)
        self._account(released, now)
        return len(released)

    def _forget_locked(self, processor: str, count: int = 1) -> None:
        """``count`` of the processor's records left; the last one takes its entries along."""
        self._owners[processor] -= count
        if self._owners[processor] <= 0:
            del self._owners[processor]
            self._sensors.pop(processor, None)

    def _refused(self, error: BaseException) -> bool:
        return self._refusals is not None and self._refusals.refuses(error)

    def _set_aside(self, refused: list[Entry]) -> None:
        for entry in refused:
            assert self._refusals is not None
            if entry.sensor is not None:
                entry.sensor.publish_failed()
            self._refusals.set_aside(entry, entry.future.exception)
        # Deleted from the spool only once kept aside: a crash between keeps it twice.
        self._spool.delete([e.spool_id for e in refused if e.spool_id is not None])

    def refuse_next(self, entry: Entry, error: BaseException) -> None:
        """``entry``, the next unsent record, was refused as it was handed over: set aside."""
        with self._lock:
            if self._closed or len(self._memory) <= self._sent or \
                    self._memory[self._sent] is not entry:
                return
            del self._memory[self._sent]
            self._forget_locked(entry.processor)
        entry.future = _Refused(error)
        self._set_aside([entry])

    def _account(self, released: list[Entry], now: float) -> None:
        acked: dict[ProcessorSensor, int] = {}
        for entry in released:
            if entry.sensor is not None:
                acked[entry.sensor] = acked.get(entry.sensor, 0) + 1
                if entry.decoded_at is not None:
                    entry.sensor.observe_latency(now - entry.decoded_at)
        for sensor, count in acked.items():
            sensor.published(count)
        self._spool.delete([e.spool_id for e in released if e.spool_id is not None])

    def _rewind_locked(self, error: str) -> list[Entry]:
        """Every record handed over and not acknowledged is unsent again, in order.

        Those the destination acknowledged (behind the failed head, for other partitions)
        are taken out and returned for release: the fresh producer after the reset must
        not send them again.
        """
        sent = list(itertools.islice(self._memory, self._sent))
        acked = [e for e in sent if e.future.is_done and not e.future.failed()]
        if acked:
            rest = list(itertools.islice(self._memory, self._sent, None))
            sent = [e for e in sent if not (e.future.is_done and not e.future.failed())]
            self._memory = deque(sent + rest)
            for entry in acked:
                self._forget_locked(entry.processor)
        for entry in sent:
            entry.future = None
        self._sent = 0
        self._timed_failure(error)
        self.reset_pending = True
        return acked

    def _timed_failure(self, error: str) -> None:
        if self.failed_at is None:
            self.failed_at = time.monotonic()
        self.last_error = error

    def fail(self, error: str) -> None:
        """A record could not be handed over (no transport, no cluster): try later.

        Records handed over before it keep their futures: they were sent, and rewinding
        them here would send them twice.
        """
        with self._lock:
            self._timed_failure(error)

    def take_unsent(self, max_in_flight: int) -> list[Entry]:
        """The next unsent records within the in-flight budget, in order."""
        with self._lock:
            count = min(max_in_flight - self._sent, len(self._memory) - self._sent)
            if count <= 0:
                return []
            return list(itertools.islice(self._memory, self._sent, self._sent + count))

    def mark_sent(self, entry: Entry, future: Any) -> None:
        """``entry`` (the next unsent one) was handed to the transport."""
        with self._lock:
            if self._closed:  # a sender abandoned at shutdown: its records are on disk
                return
            entry.future, entry.sent_at = future, time.monotonic()
            self._sent += 1

    def drop(self, processors: set[str]) -> int:
        """Forget every unsent record of ``processors`` (deleted); how many were dropped.

        Records already handed over stay until they are acknowledged or fail; a later call
        drops those that fail.
        """
        if not processors:
            return 0
        with self._lock:
            sent = list(itertools.islice(self._memory, self._sent))
            unsent = list(itertools.islice(self._memory, self._sent, None))
            dropped = [e for e in unsent if e.processor in processors]
            self._memory = deque(sent + [e for e in unsent if e.processor not in processors])
            overflow = len(self._overflow)
            self._overflow = [e for e in self._overflow if e.processor not in processors]
            overflow -= len(self._overflow)
            cursor = self._cursor
        # Rows before the cursor are in memory (their ids are in ``dropped``), after it not.
        on_disk = self._spool.delete_owners(self.cluster, processors, cursor)
        self._spool.delete([e.spool_id for e in dropped if e.spool_id is not None])
        with self._lock:
            self._on_disk -= on_disk
            for name in processors:  # what is left: in flight, or put() since
                left = sum(1 for e in itertools.chain(self._memory, self._overflow)
                           if e.processor == name)
                self._forget_locked(name, self._owners[name] - left)
        return len(dropped) + overflow + on_disk

    def in_flight(self) -> int:
        """Records handed to the transport and not yet settled."""
        with self._lock:
            return self._sent

    def oldest_in_flight_age(self) -> float:
        """Seconds the oldest unacknowledged send has waited (0 if none)."""
        with self._lock:
            if not self._sent:
                return 0.0
            return time.monotonic() - self._memory[0].sent_at

    def persist_unsent(self) -> int:
        """At shutdown: put unacknowledged in-memory records back on disk, ahead of the rest."""
        self.reap()
        with self._lock:
            # From here on put() writes to the spool itself, behind what is already there.
            self._closed = True
            overflow, self._overflow = self._overflow, []
            pending = list(self._memory)
            self._memory.clear()
            self._sent = 0
            self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                              for e in overflow])
            # Rewrite memory at the front, in order (some of it came from disk earlier).
            self._spool.delete([e.spool_id for e in pending if e.spool_id is not None])
            self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                              for e in pending], front=True)
        return len(pending)


class _Refused:
    """A done, failed future for a record the transport refused as it was handed over."""

    is_done = True

    def __init__(self, error: BaseException) -> None:
        self.exception = error

    def failed(self) -> bool:
        return True
