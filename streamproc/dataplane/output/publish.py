"""Publishing records: one ordered outbox and one sender thread per destination.

Records are keyed by processor name so each processor's records stay in order within
its partition. At most ``kafka.max_in_flight`` records per destination are handed to the
transport; the rest wait in the outbox (memory, then disk), so an outage costs disk, not
memory or records. The publisher never changes processor state itself: outages are reported
through :class:`DeliveryEvents` to the processors' owner.

Every destination has its own :class:`~sender.Sender` thread, so a dead one delays only its
own records. The publisher's thread watches them: a sender that crashed takes the publisher
down with it (the supervisor restarts both); records of processors (and jobs) that no
longer exist are dropped once they have been gone ``kafka.deleted_grace_s`` (counted in
``streamproc_records_dropped_total{reason="processor_deleted"}``); and a destination that
holds nothing and took no record for that long is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from streamproc.config import KafkaConfig
from streamproc.dataplane.output.outbox import Entry, Outbox
from streamproc.dataplane.output.sender import (
    KAFKA,
    DeliveryEvents,
    Sender,
    SenderParts,
    scheme_of,
)
from streamproc.dataplane.output.transport import KafkaTransport, Transport
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor, PublisherMetrics
from streamproc.storage.spool import Spool

__all__ = ["KAFKA", "DeliveryEvents", "Publisher", "kafka_publisher", "scheme_of"]
logger = logging.getLogger(__name__)
SWEEP_S = 5.0  # at most this long between two looks for deleted owners and idle senders


class _NoTransport:
    """Stands in for a scheme nothing sends to: its records wait, and the outage shows."""

    def __init__(self, scheme: str) -> None:
        self._message = f"no output transport for {scheme}:// destinations"

    def send(self, destination: str, topic: str, key: bytes, value: bytes) -> NoReturn:
        """Always refused (the destination's trouble, not the record's)."""
        raise RuntimeError(self._message)

    def check_topic(self, destination: str, topic: str) -> str | None:
        """No topic can be confirmed (the destination's trouble)."""
        raise RuntimeError(self._message)

    def reset(self, destination: str) -> None:
        """Nothing to forget."""

    def flush(self, destination: str, timeout: float) -> None:
        """Nothing to flush."""

    def refuses(self, error: BaseException) -> bool:
        """Never the record's fault."""
        return False

    def topic_trouble(self, error: BaseException) -> bool:
        """Never the topic's either."""
        return False


class Publisher(Service):
    """Gives each destination a sender; drops deleted owners' records; closes idle ones."""

    def __init__(self, config: KafkaConfig, spool: Spool, metrics: PublisherMetrics,
                 sensor_for: Callable[[str], ProcessorSensor | None], events: DeliveryEvents,
                 transports: dict[str, Transport],
                 owner_exists: Callable[[str], bool] | None = None) -> None:
        super().__init__("publisher")
        self._config = config
        self._spool = spool
        self._parts = SenderParts(config, spool, metrics, events, sensor_for)
        self._transports = transports
        # Whether a processor (or job) still exists; None: records are never dropped.
        self._owner_exists = owner_exists
        self._senders: dict[str, Sender] = {}
        self._missing: dict[str, float] = {}  # owner -> monotonic time it was first missed
        self._swept_at = -float("inf")
        self._closing = False  # stop() began: a sender made now writes straight to disk
        self._lock = threading.Lock()  # guards _senders, and orders put() against retire

    def load(self) -> None:
        """Pick up records spooled by an earlier run; they are delivered first."""
        for destination, count in self._spool.clusters().items():
            logger.info("%d spooled records for %s from an earlier run", count, destination)
            with self._lock:
                self._sender_locked(destination, self._spool.held(destination))

    def _transport(self, destination: str) -> Transport:
        scheme = scheme_of(destination)
        return self._transports.get(scheme) or _NoTransport(scheme)

    def _sender_locked(self, destination: str,
                       spooled: dict[tuple[str, str], int] | None = None) -> Sender:
        sender = self._senders.get(destination)
        if sender is None:
            sender = Sender(destination, self._transport(destination), self._parts, spooled)
            self._senders[destination] = sender
            if self._closing:
                sender.box.persist_unsent()  # (empty) closed: late records go to the spool
            elif self.running and not self.stopping:
                sender.start()
        return sender

    def _sender(self, destination: str) -> Sender:
        """A destination's sender, made if need be (for benchmarks and tests)."""
        with self._lock:
            return self._sender_locked(destination)

    def _outbox(self, destination: str) -> Outbox:
        """A destination's outbox (for benchmarks and tests)."""
        return self._sender(destination).box

    def _all(self) -> list[Sender]:
        with self._lock:
            return list(self._senders.values())

    def submit(self, destination: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: ProcessorSensor) -> None:
        """Queue one record for ``topic`` at ``destination``, keyed by ``processor``."""
        sensor.emitted()
        entry = Entry(processor, topic, processor.encode(), value, decoded_at, sensor)
        with self._lock:
            self._sender_locked(destination).put(entry)

    def report(self) -> dict[str, dict[str, Any]]:
        """Each destination for /health: state (ok or unreachable, since), records held."""
        return {s.destination: s.report() for s in self._all()}

    # ---- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        with self._lock:
            for sender in self._senders.values():
                sender.start()  # (a restart starts the ones that died)
        while not self.stopping:
            self.beat()
            self._check_senders()
            now = time.monotonic()
            if now - self._swept_at >= min(SWEEP_S, self._config.deleted_grace_s / 2):
                self._swept_at = now
                self.sweep(now)
            self.wait(0.1)

    def _check_senders(self) -> None:
        for sender in self._all():
            if sender.started and not sender.running and not sender.stopping:
                msg = f"the sender for {sender.destination} died: {sender.error!r}"
                raise RuntimeError(msg) from sender.error

    def sweep(self, now: float) -> None:
        """Drop records of owners gone for the grace period; close idle senders."""
        senders = self._all()
        if self._owner_exists is not None:
            held = {s.destination: s.box.owners() for s in senders}
            gone = self._gone(set().union(*held.values()), now)
            for sender in senders:
                if gone & held[sender.destination]:
                    sender.drop_later(gone & held[sender.destination])
        self._retire_idle(now)

    def _gone(self, owners: set[str], now: float) -> frozenset[str]:
        for name in owners:
            if self._exists(name):
                self._missing.pop(name, None)
            else:
                self._missing.setdefault(name, now)
        for name in set(self._missing) - owners:
            del self._missing[name]
        grace = self._config.deleted_grace_s
        return frozenset(n for n, since in self._missing.items() if now - since >= grace)

    def _exists(self, name: str) -> bool:
        assert self._owner_exists is not None
        try:
            return self._owner_exists(name)
        except Exception:  # storage closing at shutdown: keep the records
            logger.exception("could not tell whether %s still exists", name)
            return True

    def _retire_idle(self, now: float) -> None:
        grace = self._config.deleted_grace_s
        with self._lock:  # submit() holds it too: no record can slip into a retired box
            idle = [s for s in self._senders.values()
                    if now - s.active_at >= grace and s.box.sizes() == (0, 0)]
            for sender in idle:
                del self._senders[sender.destination]
        for sender in idle:
            sender.stop(1.0)  # outside the lock: submit() does not wait for a thread's end
        for sender in idle:
            with self._lock:
                # The client and the series belong to the destination, not to this sender:
                # a submit() since made a new sender for it, which uses them now.
                if sender.destination not in self._senders:
                    sender.retire()

    # ---- shutdown ----------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the threads, flush what transports hold, spool everything unacknowledged.

        Returns within about ``timeout`` + ``kafka.flush_timeout_s``, however many
        destinations are dead: the senders stop together within ``timeout`` (one blocked
        in a dead cluster's connect is abandoned), and all flushes share one deadline.
        """
        deadline = time.monotonic() + timeout
        stopped = super().stop(timeout)
        with self._lock:
            self._closing = True
            senders = list(self._senders.values())
        for sender in senders:
            sender.request_stop()
        joined = []
        for sender in senders:
            if sender.join(max(0.0, deadline - time.monotonic())):
                joined.append(sender)
            else:
                stopped = False
                logger.error("the sender for %s did not stop within %.1fs; abandoning it",
                             sender.destination, timeout)
        self._flush([s for s in joined if s.down_since is None])
        for sender in senders:
            self._keep(sender)
        return stopped

    def _flush(self, senders: list[Sender]) -> None:
        # Flushing into a dead destination would only wait out the timeout: those are
        # left out, and the live ones share one deadline.
        deadline = time.monotonic() + self._config.flush_timeout_s
        for sender in senders:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.warning("no time left to flush records to %s at shutdown",
                               sender.destination)
                continue
            try:
                sender.transport.flush(sender.destination, left)
            except Exception as exc:
                logger.warning("could not flush records to %s at shutdown: %r",
                               sender.destination, exc)

    def _keep(self, sender: Sender) -> None:
        destination = sender.destination
        try:
            sender.transport.reset(destination)
        except Exception as exc:
            # A broken transport must not keep the records off disk: a record the broker
            # had after all comes again (at least once), a record not kept is lost.
            logger.warning("could not reset the transport for %s: %r", destination, exc)
        try:
            kept = sender.box.persist_unsent()
        except Exception:
            # One destination's disk trouble must not keep the others' records off disk.
            logger.exception("could not keep the undelivered records for %s on disk",
                             destination)
            return
        if kept:
            logger.info("%d undelivered records for %s kept on disk", kept, destination)


def kafka_publisher(config: KafkaConfig, spool: Spool, metrics: PublisherMetrics,
                    sensor_for: Callable[[str], ProcessorSensor | None],
                    events: DeliveryEvents,
                    producer_factory: Callable[..., object] | None = None,
                    owner_exists: Callable[[str], bool] | None = None) -> Publisher:
    """A publisher whose only transport is Kafka (what the daemon runs today)."""
    return Publisher(config, spool, metrics, sensor_for, events,
                     {KAFKA: KafkaTransport(config, producer_factory)}, owner_exists)
