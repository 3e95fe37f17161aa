"""Publishing records from one thread, through one ordered outbox per destination.

Records are keyed by processor name so each processor's records stay in order within
its partition. At most ``kafka.max_in_flight`` records per destination are handed to the
transport; the rest wait in the outbox (memory, then disk), so an outage costs disk, not
memory or records. The publisher never changes processor state itself: outages are reported
through :class:`DeliveryEvents` to the processors' owner.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from streamproc.config import KafkaConfig
from streamproc.dataplane.outbox import Entry, Outbox
from streamproc.dataplane.transport import KafkaTransport, Transport
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor, PublisherMetrics
from streamproc.storage.spool import Spool

logger = logging.getLogger(__name__)
RETRY_S = 2.0
KAFKA = "kafka"


class DeliveryEvents(Protocol):
    """What the publisher reports about destinations."""

    def destination_outage(self, destination: str, message: str | None) -> None:
        """A destination stopped acknowledging (message) or came back (None)."""

    def destination_unreachable(self, destination: str, message: str) -> None:
        """An outage lasted ``kafka.unreachable_fail_s``."""


def scheme_of(destination: str) -> str:
    """``s3://bucket`` -> ``s3``; a bare ``host:port[,host:port]`` is a Kafka cluster."""
    return destination.split("://", 1)[0] if "://" in destination else KAFKA


class Publisher(Service):
    """Moves records from outboxes to transports and watches each destination's health."""

    def __init__(self, config: KafkaConfig, spool: Spool, metrics: PublisherMetrics,
                 sensor_for: Callable[[str], ProcessorSensor | None], events: DeliveryEvents,
                 transports: dict[str, Transport]) -> None:
        super().__init__("publisher")
        self._config = config
        self._spool = spool
        self._metrics = metrics
        self._sensor_for = sensor_for
        self._events = events
        self._transports = transports
        self._outboxes: dict[str, Outbox] = {}
        self._retry_at: dict[str, float] = {}
        self._down: dict[str, float] = {}  # destination -> monotonic time its outage began
        self._reported: dict[str, float] = {}  # destination -> when its outage was last shown
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def load(self) -> None:
        """Pick up records spooled by an earlier run; they are delivered first."""
        for destination, count in self._spool.clusters().items():
            logger.info("%d spooled records for %s from an earlier run", count, destination)
            self._outbox(destination, count)

    def _outbox(self, destination: str, on_disk: int = 0) -> Outbox:
        with self._lock:
            box = self._outboxes.get(destination)
            if box is None:
                box = Outbox(destination, self._spool, self._config.memory_records,
                             self._sensor_for, on_disk)
                self._outboxes[destination] = box
            return box

    def _boxes(self) -> list[Outbox]:
        with self._lock:
            return list(self._outboxes.values())

    def submit(self, destination: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: ProcessorSensor) -> None:
        """Queue one record for ``topic`` at ``destination``, keyed by ``processor``."""
        sensor.emitted()
        self._outbox(destination).put(Entry(processor, topic, processor.encode(), value,
                                            decoded_at, sensor))
        self._wake.set()

    # ---- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            # Woken by submit() and by the acknowledgement of the last record of each send
            # round; the timeout only bounds how often outages are checked.
            self._wake.wait(0.05)
            self._wake.clear()
            for box in self._boxes():
                box.sync_disk()
                self._pump(box)
                self._watch(box)

    def _transport(self, destination: str) -> Transport:
        scheme = scheme_of(destination)
        transport = self._transports.get(scheme)
        if transport is None:
            msg = f"no output transport for {scheme}:// destinations"
            raise RuntimeError(msg)
        return transport

    def _acked(self, _result: object) -> None:
        self._wake.set()

    def _reset(self, destination: str) -> None:
        self._transport(destination).reset(destination)
        self._retry_at[destination] = time.monotonic() + RETRY_S

    def _pump(self, box: Outbox) -> None:
        destination = box.cluster
        box.reap()
        if box.reset_pending:
            box.reset_pending = False
            self._reset(destination)
            return
        if time.monotonic() < self._retry_at.get(destination, 0.0):
            return
        entries = box.take_unsent(self._config.max_in_flight)
        if not entries:
            return
        try:
            transport = self._transport(destination)
            future = None
            for entry in entries:
                future = transport.send(destination, entry.topic, entry.key, entry.value)
                box.mark_sent(entry, future)
            if future is not None:
                future.add_callback(self._acked)
                future.add_errback(self._acked)
        except Exception as exc:  # no cluster (KafkaTimeoutError), closed producer, ...
            for entry in entries:
                if entry.sensor is not None:
                    entry.sensor.publish_failed()
            box.fail(repr(exc))
            box.reset_pending = False
            self._reset(destination)

    def _watch(self, box: Outbox) -> None:
        destination = box.cluster
        memory, disk = box.sizes()
        self._metrics.outbox.labels(destination, "memory").set(memory)
        self._metrics.outbox.labels(destination, "disk").set(disk)
        stalled = box.failed_at is not None or \
            box.oldest_in_flight_age() > self._config.stall_s
        if not stalled:
            self._reported.pop(destination, None)
            if self._down.pop(destination, None) is not None:
                logger.info("%s is back", destination)
                self._failed.discard(destination)
                self._events.destination_outage(destination, None)
            self._metrics.cluster_up.labels(destination).set(1)
            return
        self._metrics.cluster_up.labels(destination).set(0)
        since = self._down.setdefault(destination, time.monotonic())
        down = time.monotonic() - since
        detail = f": {box.last_error}" if box.last_error else ""
        what = "Kafka cluster" if scheme_of(destination) == KAFKA else "Output"
        message = (f"{what} {destination} unreachable for {down:.0f} s; {memory + disk} "
                   f"records held ({disk} on disk){detail}")
        # The message changes with every record held; refreshing it (a logged, persisted
        # status change per processor) once per stall_s is enough, not on every loop.
        now = time.monotonic()
        if now - self._reported.get(destination, -math.inf) >= self._config.stall_s:
            self._reported[destination] = now
            self._events.destination_outage(destination, message)
        if down > self._config.unreachable_fail_s and destination not in self._failed:
            self._failed.add(destination)
            self._events.destination_unreachable(destination, message)

    # ---- shutdown ----------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread, flush what transports hold, spool everything unacknowledged."""
        stopped = super().stop(timeout)
        for box in self._boxes():
            destination = box.cluster
            if destination in self._down:
                continue  # flushing into a dead destination would only wait out the timeout
            try:
                self._transport(destination).flush(destination, self._config.flush_timeout_s)
            except Exception as exc:
                logger.warning("could not flush records to %s at shutdown: %r", destination,
                               exc)
        for box in self._boxes():
            try:
                self._transport(box.cluster).reset(box.cluster)
            except Exception as exc:
                # A broken transport must not keep the records off disk: a record the broker
                # had after all comes again (at least once), a record not kept is lost.
                logger.warning("could not reset the transport for %s: %r", box.cluster, exc)
            try:
                kept = box.persist_unsent()
            except Exception:
                # One destination's disk trouble must not keep the others' records off disk.
                logger.exception("could not keep the undelivered records for %s on disk",
                                 box.cluster)
                continue
            if kept:
                logger.info("%d undelivered records for %s kept on disk", kept, box.cluster)
        return stopped


def kafka_publisher(config: KafkaConfig, spool: Spool, metrics: PublisherMetrics,
                    sensor_for: Callable[[str], ProcessorSensor | None],
                    events: DeliveryEvents,
                    producer_factory: Callable[..., object] | None = None) -> Publisher:
    """A publisher whose only transport is Kafka (what the daemon runs today)."""
    return Publisher(config, spool, metrics, sensor_for, events,
                     {KAFKA: KafkaTransport(config, producer_factory)})
