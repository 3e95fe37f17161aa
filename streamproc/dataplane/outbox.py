"""Records bound for one Kafka cluster, kept in order until the cluster acknowledges them.

The oldest records sit in memory (at most ``memory_limit``); once that is full, newer ones
go to the disk spool and come back into memory, in order, as room frees up. Nothing is
dropped: a record leaves only when Kafka acknowledged it. After a failed send every
unacknowledged record is sent again in its original order, so delivery is at-least-once;
the idempotent producer removes duplicates within one producer session.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from streamproc.dataplane.spool import Spool
from streamproc.metrics import ProcessorSensor

UNSENT, IN_FLIGHT, ACKED = 0, 1, 2


@dataclass
class Entry:
    """One record and its delivery state."""

    processor: str
    topic: str
    key: bytes
    value: bytes
    decoded_at: float | None = None  # None for records read back from disk
    sensor: ProcessorSensor | None = None
    spool_id: int | None = None
    state: int = UNSENT
    sent_at: float = 0.0
    generation: int = field(default=0)


class Outbox:
    """Ordered, bounded-memory, disk-backed queue for one cluster. Thread-safe."""

    def __init__(self, cluster: str, spool: Spool, memory_limit: int,
                 sensor_for: Callable[[str], ProcessorSensor | None],
                 on_spool_rows: int = 0) -> None:
        self.cluster = cluster
        self._spool = spool
        self._limit = memory_limit
        self._sensor_for = sensor_for
        self._memory: deque[Entry] = deque()
        self._overflow: list[Entry] = []
        self._on_disk = on_spool_rows
        self._cursor = float("-inf")
        self._delivered_spool_ids: list[int] = []
        self._lock = threading.Lock()
        self.generation = 0  # bumped on rewind: late callbacks of old sends are ignored
        self.failed_at: float | None = None
        self.reset_pending = False  # a send failed: the producer must be replaced
        self.last_error = ""

    # ---- producer side ---------------------------------------------------------------
    def put(self, entry: Entry) -> None:
        """Queue a record; it overflows to disk (via the publisher thread) when memory is full."""
        with self._lock:
            if self._on_disk or self._overflow or len(self._memory) >= self._limit:
                self._overflow.append(entry)
            else:
                self._memory.append(entry)

    # ---- publisher thread ---------------------------------------------------------------
    def sync_disk(self) -> None:
        """Write overflow to the spool, refill memory from it, drop delivered rows."""
        with self._lock:
            overflow, self._overflow = self._overflow, []
            delivered, self._delivered_spool_ids = self._delivered_spool_ids, []
            # Counted as on disk before they are written, so put() keeps sending new
            # records after them and order holds.
            self._on_disk += len(overflow)
        self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                          for e in overflow])
        self._spool.delete(delivered)
        room = self._limit - len(self._memory)
        if room > 0 and self._on_disk:
            rows = self._spool.read(self.cluster, self._cursor, room)
            with self._lock:
                for row in rows:
                    self._memory.append(Entry(row.processor, row.topic, row.key, row.value,
                                              sensor=self._sensor_for(row.processor),
                                              spool_id=row.row_id))
                    self._cursor = row.pos
                self._on_disk -= len(rows)

    def take_unsent(self, max_in_flight: int) -> list[Entry]:
        """Mark up to the in-flight budget of unsent records as in flight, in order."""
        now = time.monotonic()
        with self._lock:
            in_flight = sum(1 for e in self._memory if e.state == IN_FLIGHT)
            out = []
            for entry in self._memory:
                if len(out) + in_flight >= max_in_flight:
                    break
                if entry.state == UNSENT:
                    entry.state, entry.sent_at, entry.generation = IN_FLIGHT, now, self.generation
                    out.append(entry)
            return out

    def ack(self, entry: Entry) -> None:
        """Kafka acknowledged ``entry``; release the acknowledged head of the queue."""
        with self._lock:
            if entry.generation != self.generation or entry.state != IN_FLIGHT:
                return
            entry.state = ACKED
            while self._memory and self._memory[0].state == ACKED:
                done = self._memory.popleft()
                if done.spool_id is not None:
                    self._delivered_spool_ids.append(done.spool_id)
            self.failed_at = None
        if entry.sensor is not None:
            entry.sensor.published(time.monotonic() - entry.decoded_at
                                   if entry.decoded_at is not None else None)

    def fail(self, entry: Entry | None, error: str) -> None:
        """A send failed: rewind every unacknowledged record so it is sent again in order."""
        with self._lock:
            if entry is not None and entry.generation != self.generation:
                return
            self.generation += 1
            for queued in self._memory:
                if queued.state == IN_FLIGHT:
                    queued.state = UNSENT
            if self.failed_at is None:
                self.failed_at = time.monotonic()
            self.reset_pending = True
            self.last_error = error
        if entry is not None and entry.sensor is not None:
            entry.sensor.publish_failed()

    def persist_unsent(self) -> int:
        """At shutdown: put unacknowledged in-memory records back on disk, ahead of the rest."""
        self.sync_disk()
        with self._lock:
            pending = [e for e in self._memory if e.state != ACKED and e.spool_id is None]
            self._memory.clear()
        self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                          for e in pending], front=True)
        return len(pending)

    def oldest_in_flight_age(self) -> float:
        """Seconds the oldest unacknowledged send has waited (0 if none)."""
        with self._lock:
            sent = [e.sent_at for e in self._memory if e.state == IN_FLIGHT]
        return time.monotonic() - min(sent) if sent else 0.0

    def sizes(self) -> tuple[int, int]:
        """(records in memory, records on disk or waiting to be written there)."""
        with self._lock:
            return len(self._memory), self._on_disk + len(self._overflow)
