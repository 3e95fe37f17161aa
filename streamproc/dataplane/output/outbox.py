"""Records bound for one destination, kept in order (per topic) until it acknowledges them.

The oldest records sit in memory (at most ``memory_limit``); once that is full, newer ones
go to the disk spool and come back into memory, in order, as room frees up. A record leaves
when the destination acknowledged it, when the destination refused it for good (moved aside
to the spool's dead letters through :class:`Refusals`, so one poison record cannot hold up
those behind it), or when its processor was deleted (:meth:`Outbox.drop`). After a failed
send every record not yet acknowledged is sent again in its original order, so delivery is
at-least-once; records the destination already acknowledged are released then, never sent
again, and an idempotent Kafka producer removes duplicates within one producer session.

Order holds per topic (and so per processor, whose records share a topic and a key), not
across topics: a topic the destination cannot take records for now (missing, not
authorised, not yet confirmed) is *parked* (:meth:`Outbox.park`). Its records leave memory
for the spool, still in order, new ones go there too, and the records of other topics go
on. Unparked, it catches up from the spool (its rows behind the read cursor first) before
its new records join memory again.

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
from datetime import datetime, timezone
from typing import Any, Protocol

from streamproc.dataplane.output.transport import Answer
from streamproc.metrics import ProcessorSensor
from streamproc.storage.spool import Spool, SpooledRecord

_NEVER = float("-inf")


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
    future: Answer | None = None
    sent_at: float = 0.0

    @property
    def answered(self) -> bool:
        """Handed over, and the destination has answered: taken, or failed."""
        return self.future is not None and self.future.is_done

    @property
    def acked(self) -> bool:
        """Handed over and taken."""
        future = self.future
        return future is not None and future.is_done and not future.failed()

    @property
    def failure(self) -> BaseException | None:
        """The destination's error for it, once failed."""
        future = self.future
        return future.exception if future is not None and future.failed() else None


@dataclass
class Parked:
    """A topic whose records wait apart: since when (epoch seconds) and why."""

    since: float
    reason: str


class Refusals(Protocol):
    """How failed sends are judged, and what moving a record aside or parking involves."""

    def refuses(self, error: BaseException) -> bool:
        """True if the destination will refuse this record however often it is sent."""

    def set_aside(self, entry: Entry, error: BaseException) -> None:
        """Keep the refused record (dead letters), count it, log it."""

    def parks(self, error: BaseException) -> bool:
        """True if the error is the topic's trouble (missing, not authorised): park it."""

    def parked(self, topic: str, error: BaseException) -> None:
        """A failed send parked ``topic`` (the outbox already holds its records apart)."""


class Outbox:
    """Ordered, bounded-memory, disk-backed queue for one destination."""

    def __init__(self, cluster: str, spool: Spool, memory_limit: int,
                 sensor_for: Callable[[str], ProcessorSensor | None],
                 spooled: dict[tuple[str, str], int] | None = None,
                 refusals: Refusals | None = None) -> None:
        self.cluster = cluster
        self._spool = spool
        self._limit = memory_limit
        self._sensor_for = sensor_for
        self._refusals = refusals
        self._memory: deque[Entry] = deque()
        self._sent = 0  # entries at the head of _memory that were handed to the transport
        self._overflow: list[Entry] = []
        # Records held per (processor, topic) and per processor, wherever they are.
        self._held: Counter[tuple[str, str]] = Counter()
        self._owners: Counter[str] = Counter()
        # Records per topic not in memory (in the overflow or on disk): while a topic has
        # any, its new records queue behind them.
        self._spilled: Counter[str] = Counter()
        for (processor, topic), count in (spooled or {}).items():
            self._count_locked(processor, topic, count)
            self._spilled[topic] += count
        self._cursor = _NEVER  # position of the last row read back in sequence
        self._parked: dict[str, Parked] = {}
        self._catching: dict[str, float] = {}  # unparked topic -> its own read position
        self._acked_topics: set[str] = set()
        self._sensors: dict[str, ProcessorSensor | None] = {}  # for records back from disk
        self._lock = threading.Lock()
        self._closed = False  # after persist_unsent: late records go straight to disk
        self.failed_at: float | None = None
        self.reset_pending = False  # a send failed: the transport must start afresh
        self.last_error = ""

    # ---- what other threads call --------------------------------------------------------
    def put(self, entry: Entry) -> None:
        """Queue a record; it overflows to disk (via the sender thread) when memory is full."""
        topic = entry.topic
        with self._lock:
            self._sensors[entry.processor] = entry.sensor
            self._count_locked(entry.processor, topic, 1)
            if self._closed:
                # A stage that outlived its stop (abandoned after a timeout) still may
                # not lose a record: write it behind everything already spooled.
                self._spool.append(self.cluster, [(entry.processor, topic, entry.key,
                                                   entry.value)])
            elif topic in self._parked or self._spilled[topic] or \
                    len(self._memory) >= self._limit:
                self._overflow.append(entry)
                self._spilled[topic] += 1
            else:
                self._memory.append(entry)

    def sizes(self) -> tuple[int, int]:
        """(records in memory, records on disk or waiting to be written there)."""
        with self._lock:
            return len(self._memory), sum(self._spilled.values())

    def owners(self) -> set[str]:
        """The processors (or jobs) with records held here."""
        with self._lock:
            return set(self._owners)

    def parked(self) -> dict[str, dict[str, Any]]:
        """Parked topics: since when, why, how many records, whose (for /health)."""
        with self._lock:
            out: dict[str, dict[str, Any]] = {}
            for topic, parked in self._parked.items():
                held = {p: n for (p, t), n in self._held.items() if t == topic}
                since = datetime.fromtimestamp(parked.since, tz=timezone.utc)
                out[topic] = {"since": since.isoformat(timespec="seconds"),
                              "error": parked.reason, "records_held": sum(held.values()),
                              "processors": sorted(held)}
            return out

    # ---- counting ------------------------------------------------------------------------
    def _count_locked(self, processor: str, topic: str, delta: int) -> None:
        """``delta`` records of the processor came (> 0) or left (< 0)."""
        key = (processor, topic)
        self._held[key] += delta
        if self._held[key] <= 0:
            del self._held[key]
        self._owners[processor] += delta
        if self._owners[processor] <= 0:
            del self._owners[processor]
            self._sensors.pop(processor, None)

    def _unspill_locked(self, topic: str, count: int = 1) -> None:
        self._spilled[topic] -= count
        if self._spilled[topic] <= 0:
            del self._spilled[topic]

    # ---- disk ------------------------------------------------------------------------------
    def sync_disk(self) -> None:
        """Write overflow to the spool and refill memory from it, in order per topic."""
        with self._lock:
            if self._closed:  # persisted at shutdown: memory must stay empty
                return
            # Still counted as spilled while they are written, so put() keeps sending new
            # records of their topics after them and order holds.
            overflow, self._overflow = self._overflow, []
        try:
            self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                              for e in overflow])
        except BaseException:
            with self._lock:  # not written: back in front of what arrived meanwhile
                self._overflow[:0] = overflow
            raise
        self._catch_up()
        self._read_on()

    def _room(self) -> int:
        with self._lock:
            return self._limit - len(self._memory)

    def _catch_up(self) -> None:
        """Unparked topics read their rows behind the cursor back first, in order."""
        with self._lock:
            catching, cursor = list(self._catching.items()), self._cursor
        for topic, after in catching:
            room = self._room()
            if room <= 0:
                return
            rows = self._spool.read_topic(self.cluster, topic, after, cursor, room)
            with self._lock:
                # Records in flight when the topic was parked are still on disk: not twice.
                sent = {e.spool_id for e in itertools.islice(self._memory, self._sent)}
                self._take_rows_locked([r for r in rows if r.row_id not in sent])
                if len(rows) < room:  # none left behind the cursor: read in sequence now
                    del self._catching[topic]
                else:
                    self._catching[topic] = rows[-1].pos

    def _read_on(self) -> None:
        with self._lock:
            room = self._limit - len(self._memory)
            skip = set(self._parked) | set(self._catching)
            unread = any(n for topic, n in self._spilled.items() if topic not in skip)
        if room <= 0 or not unread:
            return
        rows = self._spool.read(self.cluster, self._cursor, room, skip)
        with self._lock:
            self._take_rows_locked(rows)
            if rows:
                self._cursor = rows[-1].pos

    def _take_rows_locked(self, rows: list[SpooledRecord]) -> None:
        for row in rows:
            self._memory.append(Entry(row.processor, row.topic, row.key, row.value,
                                      sensor=self._sensor_locked(row.processor),
                                      spool_id=row.row_id))
            self._unspill_locked(row.topic)

    def _sensor_locked(self, processor: str) -> ProcessorSensor | None:
        if processor in self._sensors:
            return self._sensors[processor]
        return self._sensor_for(processor)  # spooled by an earlier run

    # ---- parked topics -------------------------------------------------------------------
    def park(self, topic: str, reason: str) -> None:
        """Hold ``topic``'s records apart (in the spool, in order) until :meth:`unpark`."""
        with self._lock:
            if self._closed:
                return
            parked = self._parked.get(topic)
            if parked is None:
                self._parked[topic] = Parked(time.time(), reason)
            else:
                parked.reason = reason
            self._catching.pop(topic, None)
            self._evict_locked()

    def unpark(self, topic: str) -> None:
        """``topic`` takes records again: its held records come back first, in order."""
        with self._lock:
            if self._parked.pop(topic, None) is not None:
                self._catching[topic] = _NEVER

    def sensors_of(self, topic: str) -> list[ProcessorSensor]:
        """The sensors of the processors with records of ``topic`` held here."""
        with self._lock:
            found = (self._sensor_locked(p) for p, t in self._held if t == topic)
            return [s for s in found if s is not None]

    def parked_topics(self) -> set[str]:
        """The topics parked now."""
        with self._lock:
            return set(self._parked)

    def release_idle_parked(self) -> set[str]:
        """Forget parked topics nothing is held for (their owners' records were dropped)."""
        with self._lock:
            busy = {topic for _, topic in self._held}
            idle = set(self._parked) - busy
            for topic in idle:
                del self._parked[topic]
            return idle

    def take_acked_topics(self) -> set[str]:
        """Topics with a record acknowledged since the last call."""
        with self._lock:
            topics, self._acked_topics = self._acked_topics, set()
            return topics

    def _evict_locked(self) -> None:
        """Unsent records of parked topics leave memory for the front of the spool.

        They are older than every row of their topic on disk (memory holds each topic's
        oldest records), so the front keeps the topic's order.
        """
        unsent = list(itertools.islice(self._memory, self._sent, None))
        out = [e for e in unsent if e.topic in self._parked]
        if not out:
            return
        self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                          for e in out], front=True,
                           replacing=[e.spool_id for e in out if e.spool_id is not None])
        head = list(itertools.islice(self._memory, self._sent))
        self._memory = deque(head + [e for e in unsent if e.topic not in self._parked])
        for entry in out:
            self._spilled[entry.topic] += 1

    # ---- acknowledgements and failures ---------------------------------------------------
    def reap(self) -> int:
        """Release acknowledged records from the head; set refused ones aside; else rewind.

        Returns how many were acknowledged.
        """
        now = time.monotonic()
        released: list[Entry] = []
        refused: list[Entry] = []
        parked: tuple[str, BaseException] | None = None
        with self._lock:
            while self._sent and self._memory[0].answered:
                head = self._memory[0]
                error = head.failure
                if error is not None and not self._refused(error):
                    # After the acknowledgements released above: the failure is the news.
                    parks = self._parks(error)
                    # A parked topic is its own trouble, not an outage of the destination.
                    released += self._rewind_locked(repr(error), timed=not parks)
                    if parks:
                        parked = (head.topic, error)
                        self._park_locked(head.topic, f"{type(error).__name__}: {error}")
                    if head.sensor is not None:
                        head.sensor.publish_failed()
                    break
                self._memory.popleft()
                self._sent -= 1
                self._count_locked(head.processor, head.topic, -1)
                (refused if error is not None else released).append(head)
                if error is None:
                    self.failed_at = None
            self._acked_topics.update(e.topic for e in released)
        self._set_aside(refused)
        self._account(released, now)
        if parked is not None:
            assert self._refusals is not None
            self._refusals.parked(*parked)
        return len(released)

    def _park_locked(self, topic: str, reason: str) -> None:
        self._parked.setdefault(topic, Parked(time.time(), reason)).reason = reason
        self._catching.pop(topic, None)
        self._evict_locked()

    def _refused(self, error: BaseException) -> bool:
        return self._refusals is not None and self._refusals.refuses(error)

    def _parks(self, error: BaseException) -> bool:
        return self._refusals is not None and self._refusals.parks(error)

    def _set_aside(self, refused: list[Entry]) -> None:
        for entry in refused:
            error = entry.failure
            assert self._refusals is not None and error is not None
            if entry.sensor is not None:
                entry.sensor.publish_failed()
            self._refusals.set_aside(entry, error)
        # Deleted from the spool only once kept aside: a crash between keeps it twice.
        self._spool.delete([e.spool_id for e in refused if e.spool_id is not None])

    def refuse_next(self, entry: Entry, error: BaseException) -> None:
        """``entry``, the next unsent record, was refused as it was handed over: set aside."""
        with self._lock:
            if self._closed or len(self._memory) <= self._sent or \
                    self._memory[self._sent] is not entry:
                return
            del self._memory[self._sent]
            self._count_locked(entry.processor, entry.topic, -1)
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

    def _rewind_locked(self, error: str, timed: bool = True) -> list[Entry]:
        """Every record handed over and not acknowledged is unsent again, in order.

        Those the destination acknowledged (behind the failed head, for other partitions)
        are taken out and returned for release: the fresh producer after the reset must
        not send them again. Records of parked topics among the rest go to the spool.
        """
        sent = list(itertools.islice(self._memory, self._sent))
        acked = [e for e in sent if e.acked]
        if acked:
            rest = list(itertools.islice(self._memory, self._sent, None))
            sent = [e for e in sent if not e.acked]
            self._memory = deque(sent + rest)
            for entry in acked:
                self._count_locked(entry.processor, entry.topic, -1)
            self._acked_topics.update(e.topic for e in acked)
        for entry in sent:
            entry.future = None
        self._sent = 0
        if timed:
            self._timed_failure(error)
        self.reset_pending = True
        self._evict_locked()
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

    # ---- sending ---------------------------------------------------------------------------
    def take_unsent(self, max_in_flight: int) -> list[Entry]:
        """The next unsent records within the in-flight budget, in order."""
        with self._lock:
            count = min(max_in_flight - self._sent, len(self._memory) - self._sent)
            if count <= 0:
                return []
            return list(itertools.islice(self._memory, self._sent, self._sent + count))

    def mark_sent(self, entry: Entry, future: Answer) -> None:
        """``entry`` (the next unsent one) was handed to the transport."""
        with self._lock:
            if self._closed:  # a sender abandoned at shutdown: its records are on disk
                return
            entry.future, entry.sent_at = future, time.monotonic()
            self._sent += 1

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

    # ---- deleted owners, shutdown ------------------------------------------------------
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
            overflow = [e for e in self._overflow if e.processor in processors]
            self._overflow = [e for e in self._overflow if e.processor not in processors]
            # Rows after the cursor are not in memory, nor are a parked topic's rows or a
            # catching-up topic's rows after its own position (except those in flight).
            behind = {topic: _NEVER for topic in self._parked} | self._catching
            cursor = self._cursor
        on_disk = self._spool.delete_owners(
            self.cluster, processors, cursor, behind,
            [e.spool_id for e in sent if e.spool_id is not None])
        self._spool.delete([e.spool_id for e in dropped if e.spool_id is not None])
        with self._lock:
            for entry in overflow:
                self._unspill_locked(entry.topic)
            for topic, count in on_disk.items():
                self._unspill_locked(topic, count)
            # What is left of theirs: in flight, or put() since.
            left = Counter((e.processor, e.topic) for e in
                           itertools.chain(self._memory, self._overflow)
                           if e.processor in processors)
            for key in [k for k in self._held if k[0] in processors]:
                self._count_locked(*key, left[key] - self._held[key])
        return len(dropped) + len(overflow) + sum(on_disk.values())

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
            self._spool.append(self.cluster, [(e.processor, e.topic, e.key, e.value)
                                              for e in pending], front=True,
                               replacing=[e.spool_id for e in pending
                                          if e.spool_id is not None])
        return len(pending)


class _Refused:
    """A done, failed future for a record the transport refused as it was handed over."""

    is_done = True

    def __init__(self, error: BaseException) -> None:
        self.exception = error

    def failed(self) -> bool:
        return True
