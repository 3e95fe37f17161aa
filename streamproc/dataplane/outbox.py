"""Records bound for one destination, kept in order until it acknowledges them.

The oldest records sit in memory (at most ``memory_limit``); once that is full, newer ones
go to the disk spool and come back into memory, in order, as room frees up. Nothing is
dropped: a record leaves only when the destination acknowledged it. After a failed send every
unacknowledged record is sent again in its original order, so delivery is at-least-once;
an idempotent Kafka producer removes duplicates within one producer session.

Threading: ``put`` runs on the analyzer thread, everything else on the publisher thread, and
every access to the in-memory queue and its counters takes ``_lock`` (an unlocked walk of
the deque while ``put`` appended to it once broke rewinds; tests/test_outbox_stress.py).
Acknowledgements are read by polling the send futures from the head of the queue (no
per-record callbacks), which keeps the cost per record to a few microseconds.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


class Outbox:
    """Ordered, bounded-memory, disk-backed queue for one destination."""

    def __init__(self, cluster: str, spool: Spool, memory_limit: int,
                 sensor_for: Callable[[str], ProcessorSensor | None],
                 on_spool_rows: int = 0) -> None:
        self.cluster = cluster
        self._spool = spool
        self._limit = memory_limit
        self._sensor_for = sensor_for
        self._memory: deque[Entry] = deque()
        self._sent = 0  # entries at the head of _memory that were handed to the transport
        self._overflow: list[Entry] = []
        self._on_disk = on_spool_rows
        self._cursor = float("-inf")
        self._sensors: dict[str, ProcessorSensor | None] = {}  # for records back from disk
        self._lock = threading.Lock()
        self._closed = False  # after persist_unsent: late records go straight to disk
        self.failed_at: float | None = None
        self.reset_pending = False  # a send failed: the transport must start afresh
        self.last_error = ""

    def put(self, entry: Entry) -> None:
        """Queue a record; it overflows to disk (via the publisher thread) when memory is full."""
        with self._lock:
            self._sensors[entry.processor] = entry.sensor
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

    def sync_disk(self) -> None:
        """Write overflow to the spool and refill memory from it, in order."""
        with self._lock:
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
        """Release acknowledged records from the head; rewind on a failed one."""
        now = time.monotonic()
        released: list[Entry] = []
        with self._lock:
            while self._sent and self._memory[0].future.is_done:
                head = self._memory[0]
                if head.future.failed():
                    # After the acknowledgements released above: the failure is the news.
                    self._rewind_locked(repr(head.future.exception))
                    if head.sensor is not None:
                        head.sensor.publish_failed()
                    break
                self._memory.popleft()
                self._sent -= 1
                released.append(head)
                self.failed_at = None
        self._account(released, now)
        return len(released)

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

    def _rewind_locked(self, error: str) -> None:
        for entry in itertools.islice(self._memory, self._sent):
            entry.future = None
        self._sent = 0
        if self.failed_at is None:
            self.failed_at = time.monotonic()
        self.reset_pending = True
        self.last_error = error

    def fail(self, error: str) -> None:
        """Sending failed before any future existed (no transport): resend later, in order."""
        with self._lock:
            self._rewind_locked(error)

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
            entry.future, entry.sent_at = future, time.monotonic()
            self._sent += 1

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
