"""Output sinks: how records leave the daemon, behind one small interface.

The publisher owns ordering, the outbox and the disk spool for every sink; a transport only
sends one record and hands back a future that says, when polled, whether the destination
took it. Kafka is the transport today (:class:`KafkaTransport`); another sink (S3, HTTP)
plugs in by implementing :class:`Transport` and registering a scheme with the publisher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from streamproc.config import KafkaConfig, KafkaSecurity

logger = logging.getLogger(__name__)


class SendFuture(Protocol):
    """What a transport's send returns (kafka-python's FutureRecordMetadata fits)."""

    is_done: bool
    exception: Any

    def failed(self) -> bool:
        """True once done with an error."""

    def add_callback(self, fn: Callable[[Any], None]) -> Any:
        """Call ``fn`` on success."""

    def add_errback(self, fn: Callable[[Any], None]) -> Any:
        """Call ``fn`` on failure."""


class Transport(Protocol):
    """Sends records to destinations of one kind."""

    def send(self, destination: str, topic: str, key: bytes, value: bytes) -> SendFuture:
        """Hand one record over; raise if the destination cannot take it now."""

    def reset(self, destination: str) -> None:
        """Forget the destination's client after a failure (a fresh one is made on send)."""

    def flush(self, destination: str, timeout: float) -> None:
        """Wait up to ``timeout`` for sends in flight."""


def protect_kafka_logs() -> None:
    """Keep kafka-python at INFO or above, whatever level the daemon logs at.

    Its DEBUG output prints the raw bytes of every request, SASL PLAIN passwords included.
    """
    kafka_logger = logging.getLogger("kafka")
    if kafka_logger.level == logging.NOTSET or kafka_logger.level < logging.INFO:
        kafka_logger.setLevel(logging.INFO)


def security_options(security: KafkaSecurity) -> dict[str, Any]:
    """kafka-python client settings for a cluster's TLS/SASL (secrets unwrapped only here)."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.protocol in ("SSL", "SASL_SSL"):
        options.update(
            ssl_cafile=_path(security.ssl_cafile), ssl_certfile=_path(security.ssl_certfile),
            ssl_keyfile=_path(security.ssl_keyfile),
            ssl_password=security.ssl_password.get_secret_value()
            if security.ssl_password else None,
            ssl_check_hostname=security.ssl_check_hostname)
    if security.sasl_mechanism is not None:
        assert security.sasl_password is not None  # the config's validator guarantees it
        options.update(sasl_mechanism=security.sasl_mechanism,
                       sasl_plain_username=security.sasl_username,
                       sasl_plain_password=security.sasl_password.get_secret_value())
    return options


def _path(value: object) -> str | None:
    return str(value) if value is not None else None


class KafkaTransport:
    """One idempotent, batching producer per Kafka cluster (``destination`` = bootstrap)."""

    def __init__(self, config: KafkaConfig,
                 producer_factory: Callable[..., Any] | None = None) -> None:
        self._config = config
        self._factory = producer_factory
        self._producers: dict[str, Any] = {}

    def _producer(self, cluster: str) -> Any:
        producer = self._producers.get(cluster)
        if producer is None:
            factory = self._factory
            if factory is None:
                from kafka import KafkaProducer as factory  # noqa: N813
            protect_kafka_logs()
            cfg = self._config
            producer = factory(
                bootstrap_servers=cluster.split(","), linger_ms=cfg.linger_ms,
                batch_size=cfg.batch_size, max_request_size=cfg.max_request_size,
                compression_type=cfg.compression_type,
                max_block_ms=cfg.max_block_ms, acks="all", enable_idempotence=True,
                delivery_timeout_ms=cfg.delivery_timeout_ms,
                bootstrap_timeout_ms=cfg.max_block_ms,
                **security_options(cfg.security_for(cluster)))
            self._producers[cluster] = producer
        return producer

    def send(self, destination: str, topic: str, key: bytes, value: bytes) -> SendFuture:
        """Hand a record to the cluster's producer."""
        return self._producer(destination).send(topic, key=key, value=value)

    def reset(self, destination: str) -> None:
        """A failed idempotent producer cannot continue its sequence: close it."""
        producer = self._producers.pop(destination, None)
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:
                logger.warning("closing the producer for %s: %r", destination, exc)

    def flush(self, destination: str, timeout: float) -> None:
        """Flush the cluster's producer, if there is one."""
        producer = self._producers.get(destination)
        if producer is not None:
            producer.flush(timeout=timeout)

    def destinations(self) -> list[str]:
        """Clusters with a live producer."""
        return list(self._producers)
