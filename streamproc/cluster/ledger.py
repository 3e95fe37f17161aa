"""The cluster's ledger: commands in a one-partition Kafka topic, applied by every node.

One partition gives every command one place in one order, so every node applies the same
commands in the same order and reaches the same state; a rule that decides between two
concurrent requests (two nodes creating one collection) decides the same way everywhere,
and exactly one of them succeeds. A node answers a write only after it has applied its own
command (read-your-writes): the applier thread hands the result to the waiting request.

The topic keeps every command (``retention.ms=-1``, no compaction: records are commands
whose order decides conflicts, not per-key facts a compactor could thin out). A command's
offset is stored in the SQLite transaction that holds its effects, and every (re)start seeks
to the stored offset + 1 (a new node: the beginning), so a node that dies right after a
command goes on at exactly the next one: none applied twice, none skipped.
Records that are not commands, or whose kind no node knows, are skipped with a logged
error and a metric, never retried in a loop.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from streamproc.errors import InternalServerError, StreamprocError, ThrottlingException
from streamproc.ledger import Applied, Appliers, Command, Envelope, UnknownCommand, encode
from streamproc.lifecycle import Service
from streamproc.metrics import ClusterMetrics
from streamproc.storage.cluster import ClusterLog

logger = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass(frozen=True)
class Barrier(Command[None]):
    """Changes nothing: once it is applied here, so is every command written before it."""

    kind: ClassVar[str] = "ledger.barrier"


@dataclass
class _Waiter:
    event: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class LedgerSettings:
    """Where the log lives and how long writes wait."""

    bootstrap: str
    topic: str
    node_id: str
    write_timeout_s: float = 10.0
    client_options: dict[str, Any] = field(default_factory=dict)  # TLS / SASL


class KafkaLedger(Service):
    """Appends commands to the shared log and applies the log, in order, on its own thread."""

    def __init__(self, appliers: Appliers, settings: LedgerSettings, log: ClusterLog,
                 metrics: ClusterMetrics,
                 producer_factory: Callable[..., Any] | None = None,
                 consumer_factory: Callable[..., Any] | None = None) -> None:
        super().__init__("ledger")
        self.node_id = settings.node_id
        self._appliers = appliers
        self._settings = settings
        self._log = log
        self._metrics = metrics
        self._producer_factory = producer_factory
        self._consumer_factory = consumer_factory
        self._producer: Any = None
        self._consumer: Any = None
        self._waiting: dict[str, _Waiter] = {}
        self._lock = threading.Lock()  # guards _waiting
        appliers.register(Barrier, lambda command, where: None)

    # ---- opening ----------------------------------------------------------------------------
    def _on_start(self) -> None:
        if self._producer is None:
            self._open()
        self._seek()  # every start: after a crash the consumer may be past what was stored

    def _open(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        s = self._settings
        servers = s.bootstrap.split(",")
        producer = self._producer_factory or KafkaProducer
        self._producer = producer(
            bootstrap_servers=servers, acks="all", enable_idempotence=True, linger_ms=0,
            max_block_ms=int(s.write_timeout_s * 1000), max_request_size=16 * 1024 * 1024,
            compression_type="lz4", **s.client_options)
        consumer = self._consumer_factory or KafkaConsumer
        self._consumer = consumer(
            bootstrap_servers=servers, enable_auto_commit=False, fetch_max_wait_ms=100,
            max_partition_fetch_bytes=16 * 1024 * 1024, **s.client_options)
        self._consumer.assign([TopicPartition(s.topic, 0)])

    def _seek(self) -> None:
        """Read on from the command after the last one whose effects were stored."""
        from kafka import TopicPartition

        partition = TopicPartition(self._settings.topic, 0)
        applied = self._log.applied()
        if applied is None:
            self._consumer.seek_to_beginning(partition)
        else:
            self._consumer.seek(partition, applied + 1)

    # ---- writing ------------------------------------------------------------------------------
    def submit(self, command: Command[R]) -> R:
        """Append a command and wait until this node has applied it; its result or error."""
        result: R = self._wait(self._append(command), self._settings.write_timeout_s)
        return result

    def _append(self, command: Command[Any]) -> tuple[str, _Waiter]:
        command_id = str(uuid.uuid4())
        value = self._encode(command, command_id)
        waiter = _Waiter()
        with self._lock:
            self._waiting[command_id] = waiter
        try:
            future = self._send(command, value)
        except Exception as exc:  # not even queued (no broker metadata within the timeout)
            self._forget(command_id)
            msg = (f"The cluster's state log (Kafka at {self._settings.bootstrap}) cannot be "
                   f"reached ({type(exc).__name__}); nothing was changed. Retry later.")
            raise ThrottlingException(msg) from None
        try:
            future.get(timeout=self._settings.write_timeout_s)
        except Exception as exc:  # sent, but not acknowledged: it may still land
            self._forget(command_id)
            msg = (f"The cluster's state log (Kafka at {self._settings.bootstrap}) did not "
                   f"acknowledge the change within {self._settings.write_timeout_s:.0f} s "
                   f"({type(exc).__name__}); it may still be applied when the log answers. "
                   "Check before you retry.")
            raise ThrottlingException(msg) from None
        return command_id, waiter

    def _forget(self, command_id: str) -> None:
        with self._lock:
            self._waiting.pop(command_id, None)

    def _wait(self, pending: tuple[str, _Waiter], timeout: float) -> Any:
        command_id, waiter = pending
        if not waiter.event.wait(timeout):
            self._forget(command_id)
            msg = (f"The change is in the cluster's log but this node has not applied it "
                   f"within {timeout:.0f} s (it is replaying older changes); it will take "
                   "effect. Check before retrying.")
            raise ThrottlingException(msg)
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _encode(self, command: Command[Any], command_id: str) -> bytes:
        """The record, read back once: a command that would not decode never enters the log.

        Every node would skip it as corrupt, and its submitter would wait in vain; here it
        fails at once, as it does on a single node (:class:`~streamproc.ledger.LocalLedger`).
        """
        value = encode(command, command_id, self.node_id)
        self._appliers.decode(value)
        return value

    def _send(self, command: Command[Any], value: bytes) -> Any:
        return self._producer.send(self._settings.topic, key=command.kind.encode(),
                                   value=value)

    def post(self, command: Command[Any]) -> None:
        """Append without waiting (reports; their senders post again when they get lost)."""
        try:
            self._send(command, self._encode(command, str(uuid.uuid4())))
        except Exception as exc:
            logger.warning("could not post %s to the cluster log: %r", command.kind, exc)

    def catch_up(self, timeout: float) -> None:
        """Return once every command written before this call has been applied here."""
        self._wait(self._append(Barrier()), timeout)

    # ---- applying -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            batches = self._consumer.poll(timeout_ms=200)
            last = None
            for records in batches.values():
                for record in records:
                    with self._log.applying(record.offset):
                        done = self._apply(record)
                    if done is not None:  # answered once its effects are stored
                        done.event.set()
                    last = record.offset
            if last is not None:  # commands that changed nothing, and so stored nothing
                self._log.save(last)
                self._metrics.applied.set(last)
            self._report_lag()

    def _apply(self, record: Any) -> _Waiter | None:
        """Apply one record; the waiter to wake (this node's own command), if any."""
        try:
            envelope = self._appliers.decode(record.value)
        except ValueError as exc:
            logger.error("skipping record %d of the cluster log: not a command (%s)",
                         record.offset, exc)
            self._metrics.skipped.labels("corrupt").inc()
            return None
        where = Applied(envelope.node, record.offset, envelope.node == self.node_id)
        result, error = self._run_applier(envelope, where)
        if not where.local:
            return None
        with self._lock:
            waiter = self._waiting.pop(envelope.command_id, None)
        if waiter is not None:
            waiter.result, waiter.error = result, error
        return waiter

    def _run_applier(self, envelope: Envelope, where: Applied
                     ) -> tuple[Any, BaseException | None]:
        kind = envelope.command.kind
        try:
            return self._appliers.apply(envelope.command, where), None
        except StreamprocError as exc:  # a rule said no: the same on every node
            return None, exc
        except UnknownCommand as exc:
            logger.error("skipping the command at offset %s: %s", where.offset, exc)
            self._metrics.skipped.labels("unknown").inc()
        except Exception:
            logger.exception("skipping command %s at offset %s: applying it failed", kind,
                             where.offset)
            self._metrics.skipped.labels("failed").inc()
        return None, InternalServerError()

    def _report_lag(self) -> None:
        from kafka import TopicPartition

        partition = TopicPartition(self._settings.topic, 0)
        try:
            high, position = self._consumer.highwater(partition), \
                self._consumer.position(partition)
        except Exception:  # no fetch yet, or the broker is away: keep the last value
            return
        if high is not None and position is not None:
            self._metrics.lag.set(max(0, high - position))

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop applying; close the clients."""
        stopped = super().stop(timeout)
        for client in (self._producer, self._consumer):
            if client is not None:
                try:
                    client.close(timeout=1) if client is self._producer else client.close()
                except Exception as exc:
                    logger.warning("closing a cluster-log client: %r", exc)
        return stopped
