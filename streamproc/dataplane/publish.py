"""Publishing records to Kafka from one thread, fed by a bounded queue.

One ``KafkaProducer`` per cluster (kafka-python's producer is thread-safe and batches);
records are keyed by processor name so each processor's records stay in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamproc.config import KafkaConfig
from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor

logger = logging.getLogger(__name__)


@dataclass
class OutRecord:
    """One record on its way to Kafka."""

    bootstrap: str
    topic: str
    key: bytes
    value: bytes
    decoded_at: float
    sensor: ProcessorSensor


class KafkaPublisher(Service):
    """Drains the record queue into producers; reports clusters that stay unreachable."""

    def __init__(self, config: KafkaConfig,
                 on_unreachable: Callable[[str, str], None],
                 producer_factory: Callable[..., Any] | None = None) -> None:
        super().__init__("kafka-publisher")
        self._config = config
        self._on_unreachable = on_unreachable
        self._factory = producer_factory
        self._producers: dict[str, Any] = {}
        self._failing_since: dict[str, tuple[float, str]] = {}
        # A cluster whose producer could not be created is retried at most this often,
        # so one dead cluster does not stall records bound for the others.
        self._retry_at: dict[str, float] = {}
        self.queue: BoundedQueue[OutRecord] = BoundedQueue(
            config.queue_size, DropPolicy.DROP_OLDEST, on_drop=None)

    def submit(self, record: OutRecord) -> None:
        """Queue a record (the oldest is dropped, and counted, if the queue is full)."""
        before = self.queue.dropped
        self.queue.put(record)
        if self.queue.dropped != before:
            record.sensor.publish_failed()

    def _producer(self, bootstrap: str) -> Any:
        producer = self._producers.get(bootstrap)
        if producer is None:
            factory = self._factory
            if factory is None:
                from kafka import KafkaProducer as factory  # noqa: N813
            cfg = self._config
            producer = factory(
                bootstrap_servers=bootstrap.split(","), linger_ms=cfg.linger_ms,
                batch_size=cfg.batch_size, compression_type=cfg.compression_type,
                max_block_ms=cfg.max_block_ms, acks="all",
                bootstrap_timeout_ms=cfg.max_block_ms)
            self._producers[bootstrap] = producer
        return producer

    def _run(self) -> None:
        while not self.stopping:
            record = self.queue.get(timeout=0.2)
            if record is not None:
                self._send(record)
            self._check_outages()

    def _send(self, record: OutRecord) -> None:
        if time.monotonic() < self._retry_at.get(record.bootstrap, 0.0):
            record.sensor.publish_failed()
            return
        try:
            future = self._producer(record.bootstrap).send(
                record.topic, key=record.key, value=record.value)
        except Exception as exc:  # KafkaTimeoutError, NoBrokersAvailable, ...
            if record.bootstrap not in self._producers:
                self._retry_at[record.bootstrap] = time.monotonic() + 5.0
            self._failed(record, exc)
            return
        future.add_callback(lambda _meta: self._ok(record))
        future.add_errback(lambda exc: self._failed(record, exc))

    def _ok(self, record: OutRecord) -> None:
        self._failing_since.pop(record.bootstrap, None)
        record.sensor.published(time.monotonic() - record.decoded_at)

    def _failed(self, record: OutRecord, exc: BaseException) -> None:
        record.sensor.publish_failed()
        self._failing_since.setdefault(record.bootstrap, (time.monotonic(), repr(exc)))
        logger.warning("publish to %s/%s failed: %r", record.bootstrap, record.topic, exc)

    def _check_outages(self) -> None:
        for bootstrap, (since, error) in list(self._failing_since.items()):
            down = time.monotonic() - since
            if down > self._config.unreachable_fail_s:
                self._failing_since.pop(bootstrap, None)
                self._on_unreachable(bootstrap, f"Kafka cluster {bootstrap} unreachable for "
                                                f"{down:.0f} s: {error}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop taking records, then flush and close every producer (bounded)."""
        stopped = super().stop(timeout)
        deadline = time.monotonic() + self._config.flush_timeout_s
        for record in self.queue.drain():
            if time.monotonic() > deadline:
                record.sensor.publish_failed()
                continue
            self._send(record)
        for bootstrap, producer in self._producers.items():
            try:
                producer.flush(timeout=self._config.flush_timeout_s)
            except Exception as exc:  # KafkaTimeoutError: the cluster is gone
                logger.warning("could not flush records to %s at shutdown: %r", bootstrap, exc)
            try:
                producer.close(timeout=0 if bootstrap in self._failing_since else 1)
            except Exception as exc:
                logger.warning("closing the producer for %s failed: %r", bootstrap, exc)
        self._producers.clear()
        return stopped
