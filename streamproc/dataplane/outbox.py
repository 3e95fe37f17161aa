"""Records bound for one Kafka cluster, kept in order until the cluster acknowledges them.

The oldest records sit in memory (at most ``memory_limit``); once that is full, newer ones
go to the disk spool and come back into memory, in order, as room frees up. Nothing is
dropped: a record leaves only when Kafka acknowledged it. After a failed send every
unacknowledged record is sent again in its original order, so delivery is at-least-once;
the idempotent producer removes duplicates within one producer session.

Only ``put`` runs outside the publisher thread. Acknowledgements are read by polling the
send futures from the head of the queue (no per-record callbacks, no per-record locks),
which keeps the cost per record to a few microseconds.
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
    """One record and, once sent, the producer's future for it."""

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
    """Ordered, bounded-memory, disk-backed queue for one cluster."""

    def __init__(self, cluster: str, spool: Spool, memory_limit: int,
                 sensor_for: Callable[[str], ProcessorSensor | None],
                 on_spool_rows: int = 0) -> None:
        self.cluster = cluster
        self._spool = spool
        self._limit = memory_limit
        self._sensor_for = sensor_for
        self._memory: deque[Entry] = deque()
        self._sent = 0  # entries at the head of _memory that were handed to the producer
        self._overflow: list[Entry] = []
        self._on_disk = on_spool_rows
        self._cursor = float("-inf")
        self._sensors: dict[str, ProcessorSensor | None] = {}  # for records back from disk
        self._lock = threading.Lock()  # guards _memory appends, _overflow and _on_disk
        self.failed_at: float | None = None
        self.reset_pending = False  # a send failed: the producer must be replaced
        self.last_error = ""

    # ---- any thread ------------------------------------------------------------------
    def put(self, entry: Entry) -> None:
        """Queue a record; it overflows to disk (via the publisher thread) when memory is full."""
        with self._lock:
            self._sensors[entry.processor] = entry.sensor
            if self._on_disk or self._overflow or len(self._memory) >= self._limit:
                self._overflow.append(entry)
            else:
                self._memory.append(entry)

    def sizes(self) -> tuple[int, int]:
        """(records in memory, records on disk or waiting to be written there)."""
        with self._lock:
            return len(self._memory), self._on_disk + len(self._overflow)

    # ---- publisher thread ---------------------------------------------------------------
    def sync_disk(self) -> None:
        """Write overflow to the spool and refill memory from it, in order."""
        with self._lock:
            overflow, self._overflow = self._overflow, []
            # Counted as on disk before they are written, so put() keeps sending new
            # records after them and order holds.
            self._on_disk += len(overflow)
        self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                          for e in overflow])
        room = self._limit - len(self._memory)
        if room <= 0 or not self._on_disk:
            return
        rows = self._spool.read(self.cluster, self._cursor, room)
        with self._lock:
            for row in rows:
                self._memory.append(Entry(row.processor, row.topic, row.key, row.value,
                                          sensor=self._sensor(row.processor),
                                          spool_id=row.row_id))
                self._cursor = row.pos
            self._on_disk -= len(rows)

    def _sensor(self, processor: str) -> ProcessorSensor | None:
        if processor in self._sensors:
            return self._sensors[processor]
        return self._sensor_for(processor)  # spooled by an earlier run

    def reap(self) -> int:
        """Release acknowledged records from the head; rewind on a failed one."""
        done, delivered = 0, []
        acked: dict[ProcessorSensor, int] = {}
        now = time.monotonic()
        while self._sent and self._memory[0].future.is_done:
            head = self._memory[0]
            if head.future.failed():
                self._rewind(repr(head.future.exception))
                if head.sensor is not None:
                    head.sensor.publish_failed()
                break
            self._memory.popleft()
            self._sent -= 1
            done += 1
            if head.spool_id is not None:
                delivered.append(head.spool_id)
            if head.sensor is not None:
                acked[head.sensor] = acked.get(head.sensor, 0) + 1
                if head.decoded_at is not None:
                    head.sensor.observe_latency(now - head.decoded_at)
        if done:
            self.failed_at = None
        for sensor, count in acked.items():
            sensor.published(count)
        self._spool.delete(delivered)
        return done

    def _rewind(self, error: str) -> None:
        for entry in itertools.islice(self._memory, self._sent):
            entry.future = None
        self._sent = 0
        if self.failed_at is None:
            self.failed_at = time.monotonic()
        self.reset_pending = True
        self.last_error = error

    def fail(self, error: str) -> None:
        """Sending failed before any future existed (no producer): resend later, in order."""
        self._rewind(error)

    def take_unsent(self, max_in_flight: int) -> list[Entry]:
        """The next unsent records within the in-flight budget, in order."""
        count = min(max_in_flight - self._sent, len(self._memory) - self._sent)
        if count <= 0:
            return []
        return list(itertools.islice(self._memory, self._sent, self._sent + count))

    def mark_sent(self, entry: Entry, future: Any) -> None:
        """``entry`` (the next unsent one) was handed to the producer."""
        entry.future, entry.sent_at = future, time.monotonic()
        self._sent += 1

    def oldest_in_flight_age(self) -> float:
        """Seconds the oldest unacknowledged send has waited (0 if none)."""
        if not self._sent:
            return 0.0
        return time.monotonic() - self._memory[0].sent_at

    def persist_unsent(self) -> int:
        """At shutdown: put unacknowledged in-memory records back on disk, ahead of the rest."""
        self.reap()
        self.sync_disk()
        with self._lock:
            pending = list(self._memory)
            self._memory.clear()
            self._sent = 0
        # Rewrite them all at the front, in memory order (some came from disk earlier).
        self._spool.delete([e.spool_id for e in pending if e.spool_id is not None])
        self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                          for e in pending], front=True)
        return len(pending)
