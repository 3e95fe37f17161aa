"""Output sinks: how records leave the daemon, behind one small interface.

The publisher owns ordering, the outbox and the disk spool for every sink; a transport only
sends one record and hands back a future that says, when polled, whether the destination
took it. Kafka is the transport today (:class:`KafkaTransport`); another sink (S3, HTTP)
plugs in by implementing :class:`Transport` and registering a scheme with the publisher.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

from streamproc.config import KafkaConfig, KafkaSecurity

logger = logging.getLogger(__name__)
# Kafka's own rule for topic names (kafka-python refuses others before sending anything).
_LEGAL_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
# kafka.errors types that condemn the record (its topic, size or content), not the cluster:
# the same record fails the same way every time, so it is moved aside instead of retried.
_RECORD_ERRORS = ("MessageSizeTooLargeError", "RecordListTooLargeError", "InvalidTopicError",
                  "TopicAuthorizationFailedError", "InvalidRecordError",
                  "InvalidTimestampError")


class DestinationError(RuntimeError):
    """The destination's client could not be made (a cluster that cannot be reached)."""

    def __repr__(self) -> str:
        # Shown in outage messages as the cause alone: "KafkaTimeoutError(...)".
        return str(self)


def legal_topic(topic: str) -> bool:
    """Whether Kafka accepts ``topic`` as a topic name (``.`` and ``..`` are reserved)."""
    return bool(_LEGAL_TOPIC.fullmatch(topic)) and topic not in (".", "..")


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

    def refuses(self, error: BaseException) -> bool:
        """True if ``error`` (raised by send, or a future's) means this record never fits."""


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
        self._resets: dict[str, int] = {}  # per cluster: resets so far
        # Each destination has its own sender thread (dataplane.sender); the lock guards
        # the tables only, never a connect, so a dead cluster's blocking one holds no other.
        self._lock = threading.Lock()

    def _producer(self, cluster: str) -> Any:
        with self._lock:
            producer = self._producers.get(cluster)
            resets = self._resets.get(cluster, 0)
        if producer is not None:
            return producer
        producer = self._create(cluster)  # blocks up to max_block_ms on a dead cluster
        with self._lock:
            if self._resets.get(cluster, 0) == resets:
                self._producers[cluster] = producer
                return producer
        # Reset while it connected (a shutdown that gave up waiting): not kept, not leaked.
        try:
            producer.close(timeout=0)
        except Exception as exc:
            logger.warning("closing the producer for %s: %r", cluster, exc)
        msg = f"{cluster}: the client was reset while it connected"
        raise DestinationError(msg)

    def _create(self, cluster: str) -> Any:
        factory = self._factory
        if factory is None:
            from kafka import KafkaProducer as factory  # noqa: N813
        protect_kafka_logs()
        cfg = self._config
        return factory(
            bootstrap_servers=cluster.split(","), linger_ms=cfg.linger_ms,
            batch_size=cfg.batch_size, max_request_size=cfg.max_request_size,
            compression_type=cfg.compression_type,
            max_block_ms=cfg.max_block_ms, acks="all", enable_idempotence=True,
            delivery_timeout_ms=cfg.delivery_timeout_ms,
            bootstrap_timeout_ms=cfg.max_block_ms,
            **security_options(cfg.security_for(cluster)))

    def send(self, destination: str, topic: str, key: bytes, value: bytes) -> SendFuture:
        """Hand a record to the cluster's producer."""
        try:
            producer = self._producer(destination)
        except Exception as exc:
            # Whatever making the client raised (no broker, a bad setting) is about the
            # cluster, never about this record: it must not read as a refusal of it.
            raise DestinationError(repr(exc)) from exc
        return producer.send(topic, key=key, value=value)

    def reset(self, destination: str) -> None:
        """A failed idempotent producer cannot continue its sequence: close it."""
        with self._lock:
            producer = self._producers.pop(destination, None)
            self._resets[destination] = self._resets.get(destination, 0) + 1
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:
                logger.warning("closing the producer for %s: %r", destination, exc)

    def flush(self, destination: str, timeout: float) -> None:
        """Flush the cluster's producer, if there is one."""
        with self._lock:
            producer = self._producers.get(destination)
        if producer is not None:
            producer.flush(timeout=timeout)

    def refuses(self, error: BaseException) -> bool:
        """Whether the cluster (or kafka-python before it) refused the record for good.

        kafka-python checks a record before sending it and raises ValueError or TypeError
        (an illegal topic name) or MessageSizeTooLargeError (over max_request_size); the
        broker answers with a non-retriable error of a record-level type. Retriable errors
        (timeouts, no broker) and errors about the producer or the cluster (closed producer,
        cluster authorisation, sequence errors) are the destination's trouble: retried.
        """
        if isinstance(error, (ValueError, TypeError)):
            return True
        from kafka import errors

        refusals = tuple(getattr(errors, name) for name in _RECORD_ERRORS
                         if hasattr(errors, name))
        return isinstance(error, refusals) and not getattr(error, "retriable", False)

    def destinations(self) -> list[str]:
        """Clusters with a live producer."""
        with self._lock:
            return list(self._producers)
