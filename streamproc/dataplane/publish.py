"""Publishing records to Kafka from one thread, through one ordered outbox per cluster.

One ``KafkaProducer`` per cluster (thread-safe, batching, idempotent, acks=all); records are
keyed by processor name so each processor's records stay in order within its partition.
At most ``kafka.max_in_flight`` records per cluster are handed to the producer; the rest
wait in the outbox (memory, then disk), so an outage costs disk, not memory or records.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from streamproc.config import KafkaConfig
from streamproc.dataplane.outbox import Entry, Outbox
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor, PublisherMetrics
from streamproc.storage.spool import Spool

logger = logging.getLogger(__name__)
RETRY_S = 2.0


class KafkaPublisher(Service):
    """Moves records from outboxes to producers and watches each cluster's health.

    ``on_outage(cluster, message)`` is called when a cluster stops acknowledging records
    (message) and when it recovers (None); ``on_unreachable(cluster, message)`` once an
    outage has lasted ``kafka.unreachable_fail_s``.
    """

    def __init__(self, config: KafkaConfig, spool: Spool, metrics: PublisherMetrics,
                 sensor_for: Callable[[str], ProcessorSensor | None],
                 on_outage: Callable[[str, str | None], None],
                 on_unreachable: Callable[[str, str], None],
                 producer_factory: Callable[..., Any] | None = None) -> None:
        super().__init__("kafka-publisher")
        self._config = config
        self._spool = spool
        self._metrics = metrics
        self._sensor_for = sensor_for
        self._on_outage = on_outage
        self._on_unreachable = on_unreachable
        self._factory = producer_factory
        self._outboxes: dict[str, Outbox] = {}
        self._producers: dict[str, Any] = {}
        self._retry_at: dict[str, float] = {}
        self._down: dict[str, float] = {}  # cluster -> monotonic time the outage began
        self._reported: dict[str, float] = {}  # cluster -> when its outage was last shown
        self._failed_clusters: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def load(self) -> None:
        """Pick up records spooled by an earlier run; they are delivered first."""
        for cluster, count in self._spool.clusters().items():
            logger.info("%d spooled records for %s from an earlier run", count, cluster)
            self._outbox(cluster, count)

    def _outbox(self, cluster: str, on_disk: int = 0) -> Outbox:
        with self._lock:
            box = self._outboxes.get(cluster)
            if box is None:
                box = Outbox(cluster, self._spool, self._config.memory_records,
                             self._sensor_for, on_disk)
                self._outboxes[cluster] = box
            return box

    def submit(self, cluster: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: ProcessorSensor) -> None:
        """Queue one record for ``topic`` on ``cluster``, keyed by ``processor``."""
        sensor.emitted()
        self._outbox(cluster).put(Entry(processor, topic, processor.encode(), value,
                                        decoded_at, sensor))
        self._wake.set()

    # ---- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            # Woken by submit() and by the acknowledgement of the last record of each send
            # round; the timeout only bounds how often outages are checked.
            self._wake.wait(0.05)
            self._wake.clear()
            for box in list(self._outboxes.values()):
                try:
                    box.sync_disk()
                    self._pump(box)
                    self._watch(box)
                except Exception:
                    logger.exception("publishing to %s failed", box.cluster)

    def _producer(self, cluster: str) -> Any:
        producer = self._producers.get(cluster)
        if producer is None:
            factory = self._factory
            if factory is None:
                from kafka import KafkaProducer as factory  # noqa: N813
            cfg = self._config
            producer = factory(
                bootstrap_servers=cluster.split(","), linger_ms=cfg.linger_ms,
                batch_size=cfg.batch_size, max_request_size=cfg.max_request_size,
                compression_type=cfg.compression_type,
                max_block_ms=cfg.max_block_ms, acks="all", enable_idempotence=True,
                delivery_timeout_ms=cfg.delivery_timeout_ms,
                bootstrap_timeout_ms=cfg.max_block_ms)
            self._producers[cluster] = producer
        return producer

    def _acked(self, _result: object) -> None:
        self._wake.set()

    def _drop_producer(self, cluster: str) -> None:
        # A failed idempotent producer cannot continue its sequence: start a new one.
        producer = self._producers.pop(cluster, None)
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:
                logger.warning("closing the producer for %s: %r", cluster, exc)
        self._retry_at[cluster] = time.monotonic() + RETRY_S

    def _pump(self, box: Outbox) -> None:
        cluster = box.cluster
        box.reap()
        if box.reset_pending:
            box.reset_pending = False
            self._drop_producer(cluster)
            return
        if time.monotonic() < self._retry_at.get(cluster, 0.0):
            return
        entries = box.take_unsent(self._config.max_in_flight)
        if not entries:
            return
        try:
            producer = self._producer(cluster)
            future = None
            for entry in entries:
                future = producer.send(entry.topic, key=entry.key, value=entry.value)
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
            self._drop_producer(cluster)

    def _watch(self, box: Outbox) -> None:
        cluster = box.cluster
        memory, disk = box.sizes()
        self._metrics.outbox.labels(cluster, "memory").set(memory)
        self._metrics.outbox.labels(cluster, "disk").set(disk)
        stalled = box.failed_at is not None or \
            box.oldest_in_flight_age() > self._config.stall_s
        if not stalled:
            self._reported.pop(cluster, None)
            if self._down.pop(cluster, None) is not None:
                logger.info("Kafka cluster %s is back", cluster)
                self._failed_clusters.discard(cluster)
                self._on_outage(cluster, None)
            self._metrics.cluster_up.labels(cluster).set(1)
            return
        self._metrics.cluster_up.labels(cluster).set(0)
        since = self._down.setdefault(cluster, time.monotonic())
        down = time.monotonic() - since
        detail = f": {box.last_error}" if box.last_error else ""
        message = (f"Kafka cluster {cluster} unreachable for {down:.0f} s; {memory + disk} "
                   f"records held ({disk} on disk){detail}")
        # The message changes with every record held; refreshing it (a logged, persisted
        # status change per processor) once per stall_s is enough, not on every loop.
        now = time.monotonic()
        if now - self._reported.get(cluster, -math.inf) >= self._config.stall_s:
            self._reported[cluster] = now
            self._on_outage(cluster, message)
        if down > self._config.unreachable_fail_s and cluster not in self._failed_clusters:
            self._failed_clusters.add(cluster)
            self._on_unreachable(cluster, message)

    # ---- shutdown ----------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread, flush what the producers hold, spool everything unacknowledged."""
        stopped = super().stop(timeout)
        for cluster, producer in list(self._producers.items()):
            if cluster in self._down:
                continue  # flushing into a dead cluster would only wait out the timeout
            try:
                producer.flush(timeout=self._config.flush_timeout_s)
            except Exception as exc:
                logger.warning("could not flush records to %s at shutdown: %r", cluster, exc)
        for cluster in list(self._producers):
            self._drop_producer(cluster)
        for box in self._outboxes.values():
            kept = box.persist_unsent()
            if kept:
                logger.info("%d undelivered records for %s kept on disk", kept, box.cluster)
        return stopped
