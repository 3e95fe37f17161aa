"""One destination's sender: its outbox, its thread, its health.

A sender moves its destination's records from the outbox to the transport and watches
whether the destination acknowledges them. Each runs on its own thread, so a dead cluster
(whose producer blocks up to ``kafka.max_block_ms`` in every connect and metadata wait)
delays only its own records. Within a destination, a topic that cannot take records now
(not confirmed yet, missing, not authorised) is parked and checked off this thread
(:mod:`~streamproc.dataplane.output.parking`), so it delays only its own records too. The sender
is also the outbox's :class:`~outbox.Refusals`: a record the destination refuses for good
is kept in the spool's dead letters, counted and logged (once per processor, topic and
error), and the records behind it go on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from streamproc.config import KafkaConfig
from streamproc.dataplane.output.outbox import Entry, Outbox
from streamproc.dataplane.output.parking import TopicChecks, Verdict
from streamproc.dataplane.output.transport import Transport
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor, PublisherMetrics
from streamproc.storage.spool import Spool

logger = logging.getLogger(__name__)
RETRY_S = 2.0
KAFKA = "kafka"
DELETED = "processor_deleted"  # the reason label of records dropped for a deleted owner
_LOGGED_MAX = 1000  # (processor, topic, error) kinds remembered as logged once
UNCONFIRMED = "not confirmed by the destination yet"  # why a topic new to a sender waits
_ADMITTED_MAX = 10_000  # confirmed topics remembered per destination


class DeliveryEvents(Protocol):
    """What the publisher reports about destinations."""

    def destination_outage(self, destination: str, message: str | None) -> None:
        """A destination stopped acknowledging (message) or came back (None)."""

    def destination_unreachable(self, destination: str, message: str) -> None:
        """An outage lasted ``kafka.unreachable_fail_s``."""


def scheme_of(destination: str) -> str:
    """``s3://bucket`` -> ``s3``; a bare ``host:port[,host:port]`` is a Kafka cluster."""
    return destination.split("://", 1)[0] if "://" in destination else KAFKA


@dataclass(frozen=True)
class SenderParts:
    """What every sender shares: settings, the spool, metrics and where events go."""

    config: KafkaConfig
    spool: Spool
    metrics: PublisherMetrics
    events: DeliveryEvents
    sensor_for: Callable[[str], ProcessorSensor | None]


class Sender(Service):
    """Sends one destination's records in order and reports its outages."""

    def __init__(self, destination: str, transport: Transport, parts: SenderParts,
                 spooled: dict[tuple[str, str], int] | None = None) -> None:
        super().__init__(f"publisher {destination}")
        self.destination = destination
        self.transport = transport
        self._parts = parts
        self._config = parts.config
        self.box = Outbox(destination, parts.spool, parts.config.memory_records,
                          parts.sensor_for, spooled, refusals=self)
        self._wake = threading.Event()
        self.retry_at = 0.0
        self.down_since: float | None = None  # monotonic time the current outage began
        self._reported = -math.inf  # when the outage was last shown
        self._failed = False  # destination_unreachable sent for this outage
        self._to_drop: frozenset[str] = frozenset()  # deleted owners (set by the publisher)
        self.active_at = time.monotonic()  # last record queued or sent
        self.set_aside_count = 0
        self._logged: set[tuple[str, str, str]] = set()
        self._admitted: set[str] = set()  # topics the destination confirmed: sent to at once
        self._checks = TopicChecks(destination, transport.check_topic, self._wake.set,
                                   RETRY_S, parts.config.topic_retry_max_s)
        self._warned: set[str] = set()  # parked topics whose trouble was logged

    # ---- what other threads call --------------------------------------------------------
    def put(self, entry: Entry) -> None:
        """Queue a record (from the analyzer or a job's thread)."""
        self.box.put(entry)
        self.active_at = time.monotonic()
        self._wake.set()

    def drop_later(self, owners: frozenset[str]) -> None:
        """Drop the records of these deleted processors (or jobs) on the next turn."""
        self._to_drop = owners
        self._wake.set()

    def report(self) -> dict[str, Any]:
        """The destination for /health: up or unreachable since when, what it holds."""
        memory, disk = self.box.sizes()
        now = time.monotonic()
        out: dict[str, Any] = {"state": "ok", "records_held": memory + disk, "on_disk": disk,
                               "set_aside": self.set_aside_count,
                               "seconds_since_turn": round(now - self.last_beat, 3)}
        down = self.down_since
        if down is not None:
            since = datetime.fromtimestamp(time.time() - (now - down), tz=timezone.utc)
            out.update(state="unreachable", since=since.isoformat(timespec="seconds"),
                       error=self.box.last_error)
        parked = self.box.parked()
        if parked:
            out["parked_topics"] = parked
        return out

    # ---- Refusals (called by the outbox on this thread) --------------------------------
    def refuses(self, error: BaseException) -> bool:
        """The transport's judgement: the error comes back however often it is sent."""
        return self.transport.refuses(error)

    def parks(self, error: BaseException) -> bool:
        """The transport's judgement: the topic's trouble, not the record's."""
        return self.transport.topic_trouble(error)

    def parked(self, topic: str, error: BaseException) -> None:
        """An acknowledgement said the topic cannot take records: check it with backoff."""
        self._admitted.discard(topic)
        self._checks.park(topic, failed=True)
        self._warn_parked(topic, f"{type(error).__name__}: {error}")

    def _warn_parked(self, topic: str, reason: str) -> None:
        if topic in self._warned:
            return
        if len(self._warned) < _LOGGED_MAX:
            self._warned.add(topic)
        held = self.box.parked().get(topic, {})
        logger.warning(
            "%s cannot take records for topic %r now (%s); its %d records (of %s) are held "
            "in order and the topic is checked again in %.0f s, backing off up to %.0f s, "
            "while the destination's other topics go on", self.destination, topic, reason,
            held.get("records_held", 0), ", ".join(held.get("processors", [])) or "nobody",
            self._checks.delay(topic), self._config.topic_retry_max_s)

    def set_aside(self, entry: Entry, error: BaseException) -> None:
        """Keep a refused record in the dead letters, count it, log it once."""
        kind = type(error).__name__
        self._parts.spool.set_aside(
            self.destination, [(entry.processor, entry.topic, entry.key, entry.value,
                                f"{kind}: {error}")], self._config.dead_letter_keep)
        self.set_aside_count += 1
        self._parts.metrics.set_aside.labels(self.destination, kind).inc()
        if (entry.processor, entry.topic, kind) not in self._logged:
            if len(self._logged) < _LOGGED_MAX:
                self._logged.add((entry.processor, entry.topic, kind))
            logger.warning(
                "%s refused a record of %s for topic %r for good (%s: %s); moved aside to "
                "the spool's dead letters, and the records behind it go on (more like it are "
                "counted in streamproc_records_set_aside_total, not logged)",
                self.destination, entry.processor, entry.topic, kind, error)

    # ---- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            # Woken by put() and by the acknowledgement of the last record of each send
            # round; the timeout only bounds how often outages are checked.
            self._wake.wait(0.05)
            self._wake.clear()
            self.turn()

    def _on_start(self) -> None:
        self._checks.resume()

    def _on_stop(self) -> None:
        self._checks.stop()
        self._wake.set()

    def turn(self) -> None:
        """One round: disk, deleted owners, sends, health (public for tests)."""
        self.box.sync_disk()
        self._drop_deleted()
        self.pump()
        self.watch()

    def _drop_deleted(self) -> None:
        owners, self._to_drop = self._to_drop, frozenset()
        for topic in self.box.release_idle_parked():  # nothing of theirs is held any more
            self._checks.forget(topic, strikes=True)
            self._warned.discard(topic)
        count = self.box.drop(set(owners))
        if count:
            self._parts.metrics.dropped.labels(self.destination, DELETED).inc(count)
            logger.warning("dropped %d records for %s of %s, deleted more than %.0f s ago",
                           count, self.destination, ", ".join(sorted(owners)),
                           self._config.deleted_grace_s)

    def _acked(self, _result: object) -> None:
        self._wake.set()

    def _reset(self) -> None:
        self.transport.reset(self.destination)
        self.retry_at = time.monotonic() + RETRY_S

    def pump(self) -> None:
        """Release what was acknowledged, then hand the next records over."""
        box = self.box
        box.reap()
        self._checks.acknowledged(box.take_acked_topics())
        for verdict in self._checks.verdicts():
            self._judge(verdict)
        try:
            if box.reset_pending:
                box.reset_pending = False
                self._reset()
                return
            if time.monotonic() < self.retry_at:
                return
            entries = box.take_unsent(self._config.max_in_flight)
            if entries:
                self.active_at = time.monotonic()
                self._send(entries)
        finally:
            self._checks.start_due()

    def _judge(self, verdict: Verdict) -> None:
        """What a topic check found: it takes records, it still cannot, or no answer."""
        topic, box = verdict.topic, self.box
        if verdict.error is not None:  # the destination's trouble: an outage if it lasts
            box.fail(repr(verdict.error))
            for sensor in box.sensors_of(topic):  # their records could not be published
                sensor.publish_failed()
            box.park(topic, f"the destination did not answer: {verdict.error!r}")
            self._checks.retry(topic, RETRY_S)
            if not box.in_flight():
                self._reset()  # a broken client is not asked again: the next check makes one
        elif verdict.reason is not None:
            box.park(topic, verdict.reason)
            self._checks.park(topic, failed=True)
            self._warn_parked(topic, verdict.reason)
        else:
            if len(self._admitted) >= _ADMITTED_MAX:
                self._admitted.clear()  # (each is checked again before its next record)
            self._admitted.add(topic)
            self._checks.forget(topic)
            box.unpark(topic)
            if topic in self._warned:
                self._warned.discard(topic)
                logger.info("%s takes records for topic %r again; those held follow in order",
                            self.destination, topic)

    def _park(self, topic: str, reason: str, failed: bool) -> None:
        self._admitted.discard(topic)
        self.box.park(topic, reason)
        self._checks.park(topic, failed)
        if failed:
            self._warn_parked(topic, reason)
        self._wake.set()  # the records of other topics go on at once

    def _send(self, entries: list[Entry]) -> None:
        box, future = self.box, None
        for entry in entries:
            if self.stopping:
                break
            if entry.topic not in self._admitted:
                # Checked off this thread first: a send to a topic without metadata blocks.
                self._park(entry.topic, UNCONFIRMED, failed=False)
                break
            try:
                sent = self.transport.send(self.destination, entry.topic, entry.key,
                                           entry.value)
            except Exception as exc:  # no cluster (KafkaTimeoutError), illegal topic, ...
                if self.transport.refuses(exc):
                    box.refuse_next(entry, exc)
                    continue
                if entry.sensor is not None:
                    entry.sensor.publish_failed()
                if self.transport.topic_trouble(exc):
                    self._park(entry.topic, f"{type(exc).__name__}: {exc}", failed=True)
                    break
                box.fail(repr(exc))
                if box.in_flight():
                    self.retry_at = time.monotonic() + RETRY_S  # those settle first
                else:
                    self._reset()
                break
            box.mark_sent(entry, sent)
            future = sent
        if future is not None:
            future.add_callback(self._acked)
            future.add_errback(self._acked)

    def watch(self) -> None:
        """Gauges, and outage events when the destination stops acknowledging or is back."""
        box, metrics, destination = self.box, self._parts.metrics, self.destination
        memory, disk = box.sizes()
        metrics.outbox.labels(destination, "memory").set(memory)
        metrics.outbox.labels(destination, "disk").set(disk)
        metrics.topics_parked.labels(destination).set(len(box.parked_topics()))
        stalled = box.failed_at is not None or \
            box.oldest_in_flight_age() > self._config.stall_s
        if not stalled:
            self._reported = -math.inf
            if self.down_since is not None:
                self.down_since, self._failed = None, False
                logger.info("%s is back", destination)
                self._parts.events.destination_outage(destination, None)
            metrics.cluster_up.labels(destination).set(1)
            metrics.down_seconds.labels(destination).set(0)
            return
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
        down = now - self.down_since
        metrics.cluster_up.labels(destination).set(0)
        metrics.down_seconds.labels(destination).set(down)
        self._report_outage(down, memory + disk, disk, now)

    def _report_outage(self, down: float, held: int, disk: int, now: float) -> None:
        detail = f": {self.box.last_error}" if self.box.last_error else ""
        what = "Kafka cluster" if scheme_of(self.destination) == KAFKA else "Output"
        message = (f"{what} {self.destination} unreachable for {down:.0f} s; {held} "
                   f"records held ({disk} on disk){detail}")
        # The message changes with every record held; refreshing it (a logged, persisted
        # status change per processor) once per stall_s is enough, not on every loop.
        if now - self._reported >= self._config.stall_s:
            self._reported = now
            self._parts.events.destination_outage(self.destination, message)
        if down > self._config.unreachable_fail_s and not self._failed:
            self._failed = True
            self._parts.events.destination_unreachable(self.destination, message)

    # ---- the end -------------------------------------------------------------------------
    def retire(self) -> None:
        """After stop(): close the idle destination's client, forget its series and outage.

        Only while no other sender has the destination (the publisher's lock orders it).
        """
        try:
            self.transport.reset(self.destination)
        except Exception as exc:
            logger.warning("closing the client for %s: %r", self.destination, exc)
        metrics = self._parts.metrics
        for gauge, labels in ((metrics.outbox, (self.destination, "memory")),
                              (metrics.outbox, (self.destination, "disk")),
                              (metrics.cluster_up, (self.destination,)),
                              (metrics.down_seconds, (self.destination,)),
                              (metrics.topics_parked, (self.destination,))):
            try:
                gauge.remove(*labels)
            except KeyError:
                pass
        if self.down_since is not None:
            # Nothing is held for it any more: no processor should keep showing the outage.
            self._parts.events.destination_outage(self.destination, None)
        logger.info("%s: nothing held and no record for %.0f s; its client is closed",
                    self.destination, self._config.deleted_grace_s)
