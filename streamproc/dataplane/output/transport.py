"""Output sinks: how records leave the daemon, behind one small interface.

The publisher owns ordering, the outbox and the disk spool for every sink; a transport only
sends one record and hands back a future that says, when polled, whether the destination
took it. Kafka is the transport today (:class:`KafkaTransport`); another sink (S3, HTTP)
plugs in by implementing :class:`Transport` and registering a scheme with the publisher.

A transport also judges failures, three ways: the record's fault (:meth:`Transport.refuses`:
it is moved aside, never retried), the topic's trouble (:class:`TopicUnavailable`,
:meth:`Transport.topic_trouble`: the topic is parked, its records held in order and the
topic checked again with backoff while the destination's other topics go on), and
everything else, the destination's trouble (retried, and an outage once it lasts).
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
# kafka.errors types that condemn the record (its topic name, size or content), not the
# topic or the cluster: the same record fails the same way every time, so it is moved
# aside instead of retried. Only when the error is also not retriable.
_RECORD_ERRORS = ("MessageSizeTooLargeError", "RecordListTooLargeError", "InvalidTopicError",
                  "InvalidRecordError", "InvalidTimestampError", "CorruptRecordError")
# kafka.errors types about the topic while the cluster answers: a topic that is not there
# (auto-creation off) or that this client may not write to (a missing ACL can be added).
_TOPIC_ERRORS = ("TopicAuthorizationFailedError", "UnknownTopicOrPartitionError")
# A metadata wait that timed out although the cluster answered a metadata request this
# recently (seconds) was about the topic; kafka-python re-asks every retry_backoff_ms
# (100 ms) while the cluster answers, so a live cluster's metadata is younger than this.
_ANSWERED_S = 1.0


class DestinationError(RuntimeError):
    """The destination's client could not be made (a cluster that cannot be reached)."""

    def __repr__(self) -> str:
        # Shown in outage messages as the cause alone: "KafkaTimeoutError(...)".
        return str(self)


class TopicUnavailable(RuntimeError):
    """The destination answers, but this topic cannot take records now."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"topic {topic!r}: {reason}")
        self.topic, self.reason = topic, reason


def legal_topic(topic: str) -> bool:
    """Whether Kafka accepts ``topic`` as a topic name (``.`` and ``..`` are reserved)."""
    return bool(_LEGAL_TOPIC.fullmatch(topic)) and topic not in (".", "..")


class Answer(Protocol):
    """A send's outcome as the outbox polls it: done yet, and with which error."""

    @property
    def is_done(self) -> bool:
        """True once the destination took the record or failed it."""

    @property
    def exception(self) -> BaseException | None:
        """The error, once failed."""

    def failed(self) -> bool:
        """True once done with an error."""


class SendFuture(Answer, Protocol):
    """What a transport's send returns (kafka-python's FutureRecordMetadata fits)."""

    def add_callback(self, fn: Callable[[object], None]) -> object:
        """Call ``fn`` on success."""

    def add_errback(self, fn: Callable[[object], None]) -> object:
        """Call ``fn`` on failure."""


class Transport(Protocol):
    """Sends records to destinations of one kind."""

    def send(self, destination: str, topic: str, key: bytes, value: bytes) -> SendFuture:
        """Hand one record over; raise if the destination (or the topic) cannot take it now.

        Only for topics :meth:`check_topic` confirmed: a send to any other may block.
        """

    def check_topic(self, destination: str, topic: str) -> str | None:
        """None if a send for ``topic`` can be tried now; else why not (the topic's trouble).

        A topic whose records the send refuses at once (an illegal name) passes. May block
        (off the sender's thread); raises for the destination's trouble.
        """

    def reset(self, destination: str) -> None:
        """Forget the destination's client after a failure (a fresh one is made on send)."""

    def flush(self, destination: str, timeout: float) -> None:
        """Wait up to ``timeout`` for sends in flight."""

    def refuses(self, error: BaseException) -> bool:
        """True if ``error`` (raised by send, or a future's) means this record never fits."""

    def topic_trouble(self, error: BaseException) -> bool:
        """True if ``error`` (a send's or a future's) is about the topic, not the record."""


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
        # Each destination has its own sender thread (dataplane.output.sender); the lock guards
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
            kept = self._producers.get(cluster)
            if kept is None and self._resets.get(cluster, 0) == resets:
                self._producers[cluster] = producer
                return producer
        # Another thread made one meanwhile (a topic check beside the sender), or a reset
        # came while this one connected (a shutdown that gave up waiting): not kept, not
        # leaked.
        try:
            producer.close(timeout=0)
        except Exception as exc:
            logger.warning("closing the producer for %s: %r", cluster, exc)
        if kept is not None:
            return kept
        msg = f"{cluster}: the client was reset while it connected"
        raise DestinationError(msg)

    def _create(self, cluster: str) -> Any:
        factory = self._factory
        if factory is None:
            from kafka import KafkaProducer

            factory = KafkaProducer
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
        """Hand a record to the cluster's producer.

        The topic name is checked here, the one place every record passes before Kafka:
        a name Kafka never takes condemns the record (InvalidTopicError), whatever
        kafka-python would have raised for it.
        """
        if not legal_topic(topic):
            from kafka.errors import InvalidTopicError

            msg = (f"{topic!r} is not a legal Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, "
                   "and not . or ..)")
            raise InvalidTopicError(msg)
        producer = self._client(destination)
        try:
            future = producer.send(topic, key=key, value=value)
        except Exception as exc:
            if _metadata_timeout(exc) and _answered(producer):
                raise TopicUnavailable(topic, repr(exc)) from exc
            raise
        # A topic error while kafka-python waited for metadata comes back as a failed future.
        error = future.exception if future.is_done and future.failed() else None
        if error is not None and self.topic_trouble(error):
            raise TopicUnavailable(topic, repr(error)) from error
        return future

    def _client(self, destination: str) -> Any:
        try:
            return self._producer(destination)
        except Exception as exc:
            # Whatever making the client raised (no broker, a bad setting) is about the
            # cluster, never about this record: it must not read as a refusal of it.
            raise DestinationError(repr(exc)) from exc

    def check_topic(self, destination: str, topic: str) -> str | None:
        """Ask the cluster for the topic's partitions (blocks up to ``max_block_ms``)."""
        if not legal_topic(topic):
            return None  # nothing to wait for: a send refuses its records at once
        producer = self._client(destination)
        try:
            producer.partitions_for(topic)
        except Exception as exc:
            if (_metadata_timeout(exc) and _answered(producer)) or self.topic_trouble(exc):
                return repr(exc)
            raise
        return None

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

        An illegal topic name (checked in :meth:`send`), a record over max_request_size
        (kafka-python's MessageSizeTooLargeError) or the broker's non-retriable answer of
        a record-level type. Not a bare ValueError or TypeError: kafka-python raises
        ``ValueError('Partitioner did not assign a partition ...')`` while a topic is
        briefly missing from its metadata, which the next try gets past. Retriable errors
        (timeouts, no broker), the topic's trouble (:meth:`topic_trouble`) and errors
        about the producer or the cluster (closed producer, cluster authorisation,
        sequence errors) are retried.
        """
        from kafka import errors

        refusals = tuple(getattr(errors, name) for name in _RECORD_ERRORS
                         if hasattr(errors, name))
        return isinstance(error, refusals) and not getattr(error, "retriable", False)

    def topic_trouble(self, error: BaseException) -> bool:
        """Whether the error is the topic's: not authorised to write it, not there."""
        from kafka import errors

        kinds = tuple(getattr(errors, name) for name in _TOPIC_ERRORS if hasattr(errors, name))
        return isinstance(error, (TopicUnavailable, *kinds))


def _metadata_timeout(error: BaseException) -> bool:
    """kafka-python's "Failed to update metadata after N secs." (not a full buffer)."""
    from kafka.errors import KafkaTimeoutError

    return isinstance(error, KafkaTimeoutError) and "metadata" in str(error)


def _answered(producer: Any) -> bool:
    """Whether the cluster answered a metadata request within the last ``_ANSWERED_S``.

    Read from kafka-python's ``metadata-age`` metric (public, if marked unstable); when it
    cannot be read, the timeout counts as the destination's (the safe, older judgement).
    """
    try:
        age = producer.metrics()["producer-metrics"]["metadata-age"]
    except Exception:
        return False
    return isinstance(age, (int, float)) and 0 <= age < _ANSWERED_S
