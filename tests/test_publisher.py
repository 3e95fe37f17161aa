"""The publisher over a fake transport: poison records, dead destinations, deleted owners.

No broker and no models: the transport is a fake whose destinations acknowledge at once,
refuse illegal topics as kafka-python does (ValueError before anything is sent), or are
dead (every send blocks, then fails as a metadata timeout would).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamproc.config import KafkaConfig
from streamproc.dataplane.publish import Publisher
from streamproc.metrics import ProcessorMetrics, PublisherMetrics
from streamproc.processors.mailbox import Mailbox, MailboxEvents
from streamproc.storage.spool import Spool
from streamproc.tools.clusterkit import poll

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


class Done:
    """A send future that is already acknowledged."""

    is_done, exception = True, None

    def failed(self) -> bool:
        return False

    def add_callback(self, fn: Callable[[Any], None]) -> None:
        fn(None)

    add_errback = add_callback


class Fake:
    """A transport: ``dead`` destinations block ``block_s`` per send and then fail."""

    def __init__(self, dead: set[str] | None = None, block_s: float = 0.0) -> None:
        self.dead, self.block_s = dead or set(), block_s
        self.sent: list[tuple[str, str, bytes]] = []
        self.sent_at: dict[bytes, float] = {}
        self.resets: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send(self, destination: str, topic: str, key: bytes, value: bytes) -> Done:
        if destination in self.dead:
            time.sleep(self.block_s)
            msg = "Failed to update metadata"
            raise TimeoutError(msg)
        if not _TOPIC.fullmatch(topic):
            msg = f"Topic name {topic!r} is illegal"
            raise ValueError(msg)
        with self.lock:
            self.sent.append((destination, topic, value))
            self.sent_at[value] = time.monotonic()
        return Done()

    def reset(self, destination: str) -> None:
        self.resets[destination] += 1

    def flush(self, destination: str, timeout: float) -> None:
        pass

    def refuses(self, error: BaseException) -> bool:
        return isinstance(error, ValueError)

    def values(self, destination: str) -> list[bytes]:
        with self.lock:
            return [v for d, _, v in self.sent if d == destination]


class Rig:
    """A publisher on a private registry and spool, and what it reports."""

    def __init__(self, tmp: Path, transport: Fake, owner_exists: Any = None,
                 **cfg: Any) -> None:
        self.registry = CollectorRegistry()
        self.spool = Spool(tmp / "spool.db")
        self.spool.open()
        self.transport = transport
        self.mailbox = Mailbox()
        self.sensors = ProcessorMetrics.create(self.registry)
        kwargs = {"owner_exists": owner_exists} if owner_exists is not None else {}
        self.publisher = Publisher(KafkaConfig(**cfg), self.spool,
                                   PublisherMetrics.create(self.registry), lambda name: None,
                                   MailboxEvents(self.mailbox), {"kafka": transport},
                                   **kwargs)

    def submit(self, destination: str, value: bytes, topic: str = "t",
               processor: str = "p") -> None:
        self.publisher.submit(destination, processor, topic, value, time.monotonic(),
                              self.sensors.sensor(processor))

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def close(self) -> None:
        self.publisher.stop(2.0)
        self.spool.close()


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    return bool(poll(check, timeout, every=0.01))


@pytest.fixture
def rigs(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(transport: Fake, **kwargs: Any) -> Rig:
        rig = Rig(tmp_path / str(len(made)), transport, **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


# ---- records that can never be sent ---------------------------------------------------------

def test_a_record_with_an_illegal_topic_is_set_aside_and_nothing_is_sent_twice(
        rigs: Callable[..., Rig]) -> None:
    fake = Fake()
    rig = rigs(fake)
    rig.submit("k:9092", b"good-1", processor="job-a")
    rig.submit("k:9092", b"poison", topic="bad topic", processor="job-b")
    rig.submit("k:9092", b"good-2", processor="job-c")
    rig.publisher.start()
    assert wait_until(lambda: b"good-2" in fake.values("k:9092")), fake.sent
    time.sleep(2.5)  # longer than a reset's retry delay: a reset would send good-1 again
    assert fake.values("k:9092") == [b"good-1", b"good-2"]
    assert fake.resets["k:9092"] == 0
    (letter,) = rig.spool.dead_letters("k:9092")
    assert (letter.processor, letter.topic, letter.value) == ("job-b", "bad topic", b"poison")
    assert letter.error.startswith("ValueError: Topic name 'bad topic' is illegal")
    assert rig.value("streamproc_records_set_aside_total", cluster="k:9092",
                     error="ValueError") == 1
    assert rig.publisher.report()["k:9092"]["set_aside"] == 1
    rig.submit("k:9092", b"good-3")  # and delivery goes on
    assert wait_until(lambda: b"good-3" in fake.values("k:9092"))


def test_a_poison_record_spooled_by_an_earlier_run_no_longer_blocks_the_line(
        rigs: Callable[..., Rig], tmp_path: Path) -> None:
    fake = Fake()
    rig = rigs(fake)
    rig.spool.append("k:9092", [("old-job", "bad topic", b"old-job", b"poison"),
                                ("p", "t", b"p", b"spooled-good")])
    rig.publisher.load()
    rig.publisher.start()
    rig.submit("k:9092", b"new")
    assert wait_until(lambda: fake.values("k:9092") == [b"spooled-good", b"new"]), fake.sent
    assert rig.spool.clusters() == {}
    assert [d.value for d in rig.spool.dead_letters("k:9092")] == [b"poison"]


# ---- dead destinations --------------------------------------------------------------------

def test_a_dead_destination_does_not_delay_the_others(rigs: Callable[..., Rig]) -> None:
    fake = Fake(dead={"dead:1"}, block_s=1.0)
    rig = rigs(fake)
    rig.publisher.start()
    rig.submit("dead:1", b"never")
    time.sleep(0.1)  # its sender is inside a blocking send now
    delays = []
    for i in range(40):
        value = b"live-%d" % i
        queued = time.monotonic()
        rig.submit("live:1", value)
        assert wait_until(lambda v=value: v in fake.sent_at, 5.0)
        delays.append(fake.sent_at[value] - queued)
        time.sleep(0.05)
    assert max(delays) < 0.5, delays  # a dead send blocks 1 s; none of that shows here


def test_a_dead_destination_shows_in_health_and_metrics(rigs: Callable[..., Rig]) -> None:
    fake = Fake(dead={"dead:1"})
    rig = rigs(fake, stall_s=0.2)
    rig.publisher.start()
    rig.submit("dead:1", b"held")
    rig.submit("live:1", b"sent")
    started = time.time()
    assert wait_until(lambda: rig.publisher.report()["dead:1"]["state"] == "unreachable")
    assert wait_until(lambda: rig.publisher.report()["live:1"]["records_held"] == 0)
    report = rig.publisher.report()
    dead, live = report["dead:1"], report["live:1"]
    assert dead["records_held"] == 1 and "Failed to update metadata" in dead["error"]
    since = time.mktime(time.strptime(dead["since"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert started - 2 <= since <= time.time() + 1
    assert live["state"] == "ok" and live["records_held"] == 0 and "since" not in live
    assert rig.value("streamproc_kafka_cluster_up", cluster="dead:1") == 0
    assert rig.value("streamproc_kafka_cluster_up", cluster="live:1") == 1
    assert wait_until(lambda: rig.value("streamproc_kafka_cluster_down_seconds",
                                        cluster="dead:1") > 0)
    assert rig.value("streamproc_kafka_cluster_down_seconds", cluster="live:1") == 0


def test_records_of_deleted_processors_are_dropped_after_the_grace_then_the_destination_closes(
        rigs: Callable[..., Rig]) -> None:
    fake = Fake(dead={"dead:1"})
    alive = {"kept", "gone"}
    rig = rigs(fake, owner_exists=lambda name: name in alive, deleted_grace_s=0.5)
    for i in range(3):
        rig.submit("dead:1", b"gone-%d" % i, processor="gone")
        rig.submit("dead:1", b"kept-%d" % i, processor="kept")
    rig.publisher.start()
    time.sleep(0.8)  # more than the grace, all of them still exist: nothing is dropped
    assert rig.publisher.report()["dead:1"]["records_held"] == 6
    alive.discard("gone")
    deleted_at = time.monotonic()
    assert wait_until(lambda: rig.publisher.report()["dead:1"]["records_held"] == 3)
    assert time.monotonic() - deleted_at >= 0.5  # not before the grace ran out
    assert rig.value("streamproc_records_dropped_total", cluster="dead:1",
                     reason="processor_deleted") == 3
    alive.discard("kept")
    assert wait_until(lambda: "dead:1" not in rig.publisher.report())
    assert rig.value("streamproc_records_dropped_total", cluster="dead:1",
                     reason="processor_deleted") == 6
    assert fake.resets["dead:1"] >= 1  # its client is closed
    assert rig.registry.get_sample_value("streamproc_kafka_cluster_up",
                                         {"cluster": "dead:1"}) is None
    rig.publisher.stop(2.0)
    assert rig.spool.clusters() == {}  # nothing left to retry at the next start


def test_records_of_a_processor_deleted_before_a_restart_are_dropped_too(
        rigs: Callable[..., Rig]) -> None:
    fake = Fake(dead={"dead:1"})
    rig = rigs(fake, owner_exists=lambda name: name == "kept", deleted_grace_s=0.3)
    rig.spool.append("dead:1", [("gone", "t", b"gone", b"old-%d" % i) for i in range(5)])
    rig.spool.append("dead:1", [("kept", "t", b"kept", b"old-kept")])
    rig.publisher.load()
    rig.publisher.start()
    assert wait_until(lambda: rig.value("streamproc_records_dropped_total", cluster="dead:1",
                                        reason="processor_deleted") == 5)
    rig.publisher.stop(2.0)
    assert [r.value for r in rig.spool.read("dead:1", float("-inf"), 10)] == [b"old-kept"]


def test_stop_is_bounded_however_many_destinations_are_dead(tmp_path: Path) -> None:
    """Producers whose clusters died: every flush would wait its whole timeout."""
    from streamproc.dataplane.publish import kafka_publisher

    class Pending:
        is_done, exception = False, None

        def failed(self) -> bool:
            return False

        def add_callback(self, fn: Callable[[Any], None]) -> None:
            pass

        add_errback = add_callback

    sends: list[object] = []

    class DeadProducer:
        def __init__(self, **_: object) -> None:
            pass

        def send(self, *_: object, **__: object) -> Pending:
            sends.append(_)
            return Pending()

        def flush(self, timeout: float) -> None:
            time.sleep(timeout)

        def close(self, timeout: float) -> None:
            pass

    spool = Spool(tmp_path / "spool.db")
    spool.open()
    publisher = kafka_publisher(KafkaConfig(flush_timeout_s=1.0), spool,
                                PublisherMetrics.create(CollectorRegistry()),
                                lambda name: None, MailboxEvents(Mailbox()),
                                producer_factory=DeadProducer)
    sensor = ProcessorMetrics.create(CollectorRegistry()).sensor("p")
    publisher.start()
    for n in range(4):
        publisher.submit(f"dead{n}:9092", "p", "t", b"v", time.monotonic(), sensor)
    assert wait_until(lambda: len(sends) == 4)  # each in flight, never acknowledged
    started = time.monotonic()
    publisher.stop(1.0)
    assert time.monotonic() - started < 2.5  # 1 s for the threads + 1 s for all flushes
    assert spool.clusters() == {f"dead{n}:9092": 1 for n in range(4)}
    spool.close()


def test_stop_is_bounded_while_a_sender_connects_to_a_closed_port(tmp_path: Path) -> None:
    """The real kafka-python producer, connecting to nothing (what a dead output is)."""
    import socket

    from streamproc.dataplane.publish import kafka_publisher

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends
    spool = Spool(tmp_path / "spool.db")
    spool.open()
    publisher = kafka_publisher(KafkaConfig(max_block_ms=4000, flush_timeout_s=1.0), spool,
                                PublisherMetrics.create(CollectorRegistry()),
                                lambda name: None, MailboxEvents(Mailbox()))
    sensor = ProcessorMetrics.create(CollectorRegistry()).sensor("p")
    publisher.start()
    publisher.submit(dead, "p", "t", b"v", time.monotonic(), sensor)
    time.sleep(0.5)  # its sender is connecting (that blocks up to max_block_ms)
    started = time.monotonic()
    publisher.stop(1.0)
    assert time.monotonic() - started < 2.5
    assert spool.clusters() == {dead: 1}
    spool.close()


def test_a_sender_that_dies_takes_the_publisher_down_and_comes_back_with_it(
        rigs: Callable[..., Rig]) -> None:
    fake = Fake()
    rig = rigs(fake, memory_records=1)
    box_spool = rig.spool
    real_append = box_spool.append
    failures = iter([OSError("disk full")])

    def append(*args: Any, **kwargs: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_append(*args, **kwargs)

    box_spool.append = append  # type: ignore[method-assign]
    rig.submit("k:9092", b"0")
    rig.submit("k:9092", b"1")  # memory is full: this one is written to disk, which fails
    rig.publisher.start()
    assert wait_until(lambda: not rig.publisher.running)
    assert "disk full" in repr(rig.publisher.error) + repr(rig.publisher.error.__cause__)
    rig.publisher.start()  # as the supervisor does
    assert wait_until(lambda: fake.values("k:9092") == [b"0", b"1"]), fake.sent


# ---- the Kafka transport's judgement and its clients ----------------------------------------

def test_the_kafka_transport_refuses_only_what_condemns_the_record() -> None:
    from kafka import errors

    from streamproc.dataplane.transport import DestinationError, KafkaTransport

    transport = KafkaTransport(KafkaConfig())
    record_level = [ValueError("Topic name 'bad topic' is illegal"), TypeError("key"),
                    errors.MessageSizeTooLargeError("5 MB"), errors.InvalidTopicError(),
                    errors.RecordListTooLargeError(), errors.TopicAuthorizationFailedError(),
                    errors.InvalidRecordError(), errors.InvalidTimestampError()]
    destination_level = [errors.KafkaTimeoutError("metadata"),
                         errors.IllegalStateError("closed"), errors.KafkaConnectionError(),
                         errors.ClusterAuthorizationFailedError(),
                         errors.OutOfOrderSequenceNumberError(),
                         errors.NotLeaderForPartitionError(), errors.RequestTimedOutError(),
                         DestinationError("ValueError('a bad setting')"), RuntimeError("x"),
                         OSError("disk")]
    assert [e for e in record_level if not transport.refuses(e)] == []
    assert [e for e in destination_level if transport.refuses(e)] == []


def test_a_client_made_while_the_destination_is_reset_is_closed_not_kept() -> None:
    from streamproc.dataplane.transport import DestinationError, KafkaTransport

    release, entered = threading.Event(), threading.Event()
    made: list[Any] = []

    class Slow:
        def __init__(self, **_: object) -> None:
            self.closed = False
            made.append(self)
            if len(made) == 1:
                entered.set()
                release.wait(10)  # a connect to a dead cluster

        def send(self, topic: str, key: bytes, value: bytes) -> Done:
            return Done()

        def close(self, timeout: float) -> None:
            self.closed = True

    transport = KafkaTransport(KafkaConfig(), producer_factory=Slow)
    failures: list[BaseException] = []

    def send() -> None:
        try:
            transport.send("c:1", "t", b"k", b"v")
        except DestinationError as exc:
            failures.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert entered.wait(10)
    transport.reset("c:1")  # what a shutdown does once it stops waiting for the sender
    release.set()
    sender.join(10)
    assert len(failures) == 1 and "reset while it connected" in repr(failures[0])
    assert made[0].closed and transport.destinations() == []
    transport.send("c:1", "t", b"k", b"v")  # the next send makes a fresh client
    assert transport.destinations() == ["c:1"] and not made[1].closed


def test_a_failed_connect_is_the_destinations_trouble_not_the_records() -> None:
    from streamproc.dataplane.transport import DestinationError, KafkaTransport

    def refuse(**_: object) -> None:
        msg = "a setting kafka-python does not take"
        raise ValueError(msg)  # a ValueError, like an illegal topic: it must not read so

    transport = KafkaTransport(KafkaConfig(), producer_factory=refuse)
    with pytest.raises(DestinationError) as caught:
        transport.send("c:1", "t", b"k", b"v")
    assert not transport.refuses(caught.value)
    assert repr(caught.value) == "ValueError('a setting kafka-python does not take')"
