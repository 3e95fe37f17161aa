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
from deadletters import dead_letters
from prometheus_client import CollectorRegistry

from streamproc.config import KafkaConfig
from streamproc.dataplane.output.publish import Publisher
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


class Illegal(ValueError):
    """What the fake raises for a topic Kafka would never take (the record's fault)."""


class Fake:
    """A transport: ``dead`` destinations block ``block_s`` per send and then fail;
    ``missing`` topics have no metadata (the cluster answers, the topic is not there)."""

    def __init__(self, dead: set[str] | None = None, block_s: float = 0.0,
                 missing: set[str] | None = None) -> None:
        self.dead, self.block_s = dead or set(), block_s
        self.missing = missing or set()
        self.sent: list[tuple[str, str, bytes]] = []
        self.sent_at: dict[bytes, float] = {}
        self.resets: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send(self, destination: str, topic: str, key: bytes, value: bytes) -> Done:
        if destination in self.dead or topic in self.missing:
            time.sleep(self.block_s)
            msg = "Failed to update metadata"
            raise TimeoutError(msg)
        if not _TOPIC.fullmatch(topic):
            msg = f"Topic name {topic!r} is illegal"
            raise Illegal(msg)
        with self.lock:
            self.sent.append((destination, topic, value))
            self.sent_at[value] = time.monotonic()
        return Done()

    def check_topic(self, destination: str, topic: str) -> str | None:
        with self.lock:
            self.checks[topic] += 1
        if destination in self.dead:
            time.sleep(self.block_s)
            msg = "Failed to update metadata"
            raise TimeoutError(msg)
        if topic in self.missing:
            time.sleep(self.block_s)
            return f"UnknownTopicOrPartitionError: {topic}"
        return None

    def reset(self, destination: str) -> None:
        self.resets[destination] += 1

    def flush(self, destination: str, timeout: float) -> None:
        pass

    def refuses(self, error: BaseException) -> bool:
        return isinstance(error, Illegal)

    def values(self, destination: str, topic: str | None = None) -> list[bytes]:
        with self.lock:
            return [v for d, t, v in self.sent if d == destination and topic in (None, t)]


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
    (letter,) = dead_letters(rig.spool, "k:9092")
    assert (letter.processor, letter.topic, letter.value) == ("job-b", "bad topic", b"poison")
    assert letter.error.startswith("Illegal: Topic name 'bad topic' is illegal")
    assert rig.value("streamproc_records_set_aside_total", cluster="k:9092",
                     error="Illegal") == 1
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
    assert [d.value for d in dead_letters(rig.spool, "k:9092")] == [b"poison"]


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
    # (It leaves the table first, then its thread stops and its series go.)
    assert wait_until(lambda: rig.registry.get_sample_value(
        "streamproc_kafka_cluster_up", {"cluster": "dead:1"}) is None)
    assert fake.resets["dead:1"] >= 1  # its client is closed
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


def test_retiring_an_idle_sender_leaves_the_client_of_its_successor_alone(
        rigs: Callable[..., Rig]) -> None:
    """A submit() that comes while an idle sender is retired makes a new sender, which
    shares the destination's client and series: the old one must not close them."""
    fake = Fake()
    rig = rigs(fake, deleted_grace_s=60.0)
    rig.publisher.start()
    rig.submit("k:9092", b"first")
    assert wait_until(lambda: fake.values("k:9092") == [b"first"])
    assert wait_until(lambda: rig.publisher.report()["k:9092"]["records_held"] == 0)
    old = rig.publisher._sender("k:9092")
    real_stop = old.stop

    def stop_while_a_record_comes(timeout: float = 5.0) -> bool:
        rig.submit("k:9092", b"second")  # between leaving the table and closing
        return real_stop(timeout)

    old.stop = stop_while_a_record_comes  # type: ignore[method-assign]
    rig.publisher.sweep(time.monotonic() + 120)
    new = rig.publisher._sender("k:9092")
    assert new is not old
    assert wait_until(lambda: fake.values("k:9092") == [b"first", b"second"])
    assert fake.resets["k:9092"] == 0  # the client the new sender uses was not closed
    assert wait_until(lambda: rig.registry.get_sample_value(
        "streamproc_kafka_cluster_up", {"cluster": "k:9092"}) == 1)
    time.sleep(0.2)  # the new sender's series stay (the old one removed none after it)
    assert rig.registry.get_sample_value("streamproc_kafka_cluster_up",
                                         {"cluster": "k:9092"}) == 1


def test_idle_senders_retire_under_a_stream_of_submits_without_closing_live_clients(
        rigs: Callable[..., Rig]) -> None:
    """Hammer: sweeps that retire idle senders while threads submit to them."""
    fake = Fake()
    rig = rigs(fake, deleted_grace_s=60.0)
    rig.publisher.start()
    stop, closed_live = threading.Event(), []
    real_reset = fake.reset

    def reset(destination: str) -> None:
        if destination in rig.publisher._senders:  # a sender for it is live: its client
            closed_live.append(destination)
        real_reset(destination)

    fake.reset = reset  # type: ignore[method-assign]
    submitted: list[bytes] = []

    def submit(n: int) -> None:
        i = 0
        while not stop.is_set():
            value = b"%d-%d" % (n, i)
            rig.submit(f"d{n % 3}:1", value)
            submitted.append(value)
            i += 1
            time.sleep(0.001)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        rig.publisher.sweep(time.monotonic() + 120)  # every sender counts as idle
        time.sleep(0.005)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert closed_live == []
    assert wait_until(lambda: set(fake.values("d0:1") + fake.values("d1:1") +
                                  fake.values("d2:1")) == set(submitted), 10)


def test_stop_is_bounded_however_many_destinations_are_dead(tmp_path: Path) -> None:
    """Producers whose clusters died: every flush would wait its whole timeout."""
    from streamproc.dataplane.output.publish import kafka_publisher

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

        def partitions_for(self, topic: str) -> set[int]:
            return {0}  # (metadata cached before the cluster died)

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

    from streamproc.dataplane.output.publish import kafka_publisher

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

def test_the_kafka_transport_tells_the_records_fault_from_the_topics_and_the_clusters(
) -> None:
    from kafka import errors

    from streamproc.dataplane.output.transport import (
        DestinationError,
        KafkaTransport,
        TopicUnavailable,
    )

    transport = KafkaTransport(KafkaConfig())
    record_level = [errors.MessageSizeTooLargeError("5 MB"), errors.InvalidTopicError(),
                    errors.RecordListTooLargeError(), errors.InvalidRecordError(),
                    errors.InvalidTimestampError(), errors.CorruptRecordError()]
    topic_level = [errors.TopicAuthorizationFailedError(), errors.UnknownTopicOrPartitionError(),
                   TopicUnavailable("t", "KafkaTimeoutError('Failed to update metadata')")]
    destination_level = [
        # kafka-python raises this while a topic is briefly missing from its metadata: the
        # next try gets past it, so it must not condemn the record.
        ValueError("Partitioner did not assign a partition for topic t!"), TypeError("key"),
        errors.KafkaTimeoutError("metadata"), errors.IllegalStateError("closed"),
        errors.KafkaConnectionError(), errors.ClusterAuthorizationFailedError(),
        errors.OutOfOrderSequenceNumberError(), errors.NotLeaderForPartitionError(),
        errors.RequestTimedOutError(), DestinationError("ValueError('a bad setting')"),
        RuntimeError("x"), OSError("disk")]
    assert [e for e in record_level if not transport.refuses(e)] == []
    assert [e for e in topic_level + destination_level if transport.refuses(e)] == []
    assert [e for e in topic_level if not transport.topic_trouble(e)] == []
    assert [e for e in record_level + destination_level if transport.topic_trouble(e)] == []


class World:
    """What a fake kafka-python producer meets: topics, ACLs, hiccups."""

    def __init__(self) -> None:
        self.locked: set[str] = set()  # no permission to write (and describe) these
        self.write_locked: set[str] = set()  # may describe, may not write
        self.partitioner_hiccups = 0  # next sends raising kafka-python's partitioner error
        self.made = 0
        self.sent: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    def factory(self, **_: object) -> Producer:
        with self.lock:
            self.made += 1
        return Producer(self)

    def values(self, topic: str) -> list[bytes]:
        with self.lock:
            return [v for t, v in self.sent if t == topic]


class Failed:
    """A future that failed (at once, or ``after_s`` after it was made)."""

    def __init__(self, error: Exception, after_s: float = 0.0) -> None:
        self.exception, self._at = error, time.monotonic() + after_s

    @property
    def is_done(self) -> bool:
        return time.monotonic() >= self._at

    def failed(self) -> bool:
        return self.is_done

    def add_callback(self, fn: Callable[[Any], None]) -> None:
        pass

    def add_errback(self, fn: Callable[[Any], None]) -> None:
        threading.Timer(max(0.0, self._at - time.monotonic()), fn, (self.exception,)).start()


class Producer:
    """Just enough of kafka-python's KafkaProducer, over a :class:`World`."""

    def __init__(self, world: World) -> None:
        self.world = world

    def send(self, topic: str, key: bytes, value: bytes) -> Any:
        from kafka import errors

        world = self.world
        with world.lock:
            if world.partitioner_hiccups:
                world.partitioner_hiccups -= 1
                msg = f"Partitioner did not assign a partition for topic {topic}!"
                raise ValueError(msg)
        if topic in world.locked:  # kafka-python returns the metadata error as a future
            return Failed(errors.TopicAuthorizationFailedError({topic}))
        if topic in world.write_locked:  # the broker refuses the produce request
            return Failed(errors.TopicAuthorizationFailedError({topic}), after_s=0.05)
        with world.lock:
            world.sent.append((topic, value))
        return Done()

    def partitions_for(self, topic: str) -> set[int]:
        from kafka import errors

        if topic in self.world.locked:
            raise errors.TopicAuthorizationFailedError({topic})
        return {0}

    def metrics(self) -> dict[str, dict[str, float]]:
        return {"producer-metrics": {"metadata-age": 0.05}}

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def _kafka_rig(rigs: Callable[..., Rig], world: World, **cfg: Any) -> Rig:
    from streamproc.dataplane.output.transport import KafkaTransport

    rig = rigs(Fake(), **cfg)
    transport = KafkaTransport(KafkaConfig(**cfg), producer_factory=world.factory)
    rig.publisher._transports["kafka"] = transport
    return rig


def test_an_illegal_topic_is_refused_before_the_producer_sees_it() -> None:
    from streamproc.dataplane.output.transport import KafkaTransport

    world = World()
    transport = KafkaTransport(KafkaConfig(), producer_factory=world.factory)
    for topic in ("bad topic", "", "..", "x" * 250):
        assert transport.check_topic("c:1", topic) is None  # nothing to wait for ...
        with pytest.raises(Exception) as caught:
            transport.send("c:1", topic, b"k", b"v")  # ... it is refused at once
        assert transport.refuses(caught.value), caught.value
    assert world.made == 0 and world.sent == []


def test_a_partitioner_hiccup_is_retried_not_set_aside(rigs: Callable[..., Rig]) -> None:
    world = World()
    world.partitioner_hiccups = 2
    rig = _kafka_rig(rigs, world)
    rig.publisher.start()
    rig.submit("k:9092", b"0")
    rig.submit("k:9092", b"1")
    assert wait_until(lambda: world.values("t") == [b"0", b"1"], 15), world.sent
    assert dead_letters(rig.spool, "k:9092") == []
    assert rig.value("streamproc_records_set_aside_total", cluster="k:9092",
                     error="ValueError") == 0


def test_a_topic_without_permission_is_parked_not_set_aside_and_comes_back(
        rigs: Callable[..., Rig]) -> None:
    """A missing ACL is the topic's trouble: its records wait, checked with backoff."""
    world = World()
    world.locked.add("locked")
    rig = _kafka_rig(rigs, world, topic_retry_max_s=0.2)
    rig.publisher.start()
    for i in range(5):
        rig.submit("k:9092", b"l-%d" % i, topic="locked", processor="pl")
        rig.submit("k:9092", b"o-%d" % i, topic="open", processor="po")
    assert wait_until(lambda: len(world.values("open")) == 5), world.sent
    assert wait_until(lambda: "TopicAuthorizationFailed" in rig.publisher.report()[
        "k:9092"].get("parked_topics", {}).get("locked", {}).get("error", ""))
    parked = rig.publisher.report()["k:9092"]["parked_topics"]["locked"]
    assert parked["records_held"] == 5 and parked["processors"] == ["pl"]
    assert rig.value("streamproc_kafka_topics_parked", cluster="k:9092") == 1
    assert dead_letters(rig.spool, "k:9092") == [] and world.values("locked") == []
    world.locked.clear()  # the ACL is added
    assert wait_until(lambda: world.values("locked") == [b"l-%d" % i for i in range(5)])
    assert wait_until(lambda: "parked_topics" not in rig.publisher.report()["k:9092"])
    assert rig.value("streamproc_kafka_topics_parked", cluster="k:9092") == 0
    assert world.values("open") == [b"o-%d" % i for i in range(5)]


def test_a_topic_the_broker_will_not_let_us_write_is_parked_after_the_failed_send(
        rigs: Callable[..., Rig]) -> None:
    """Describe allowed, Write denied: the failure comes with the acknowledgement."""
    world = World()
    world.write_locked.add("locked")
    rig = _kafka_rig(rigs, world, topic_retry_max_s=0.3)
    rig.publisher.start()
    for i in range(3):
        rig.submit("k:9092", b"l-%d" % i, topic="locked", processor="pl")
    assert wait_until(lambda: "locked" in rig.publisher.report()["k:9092"].get(
        "parked_topics", {}))
    for i in range(20):
        rig.submit("k:9092", b"o-%d" % i, topic="open", processor="po")
    assert wait_until(lambda: len(world.values("open")) == 20), world.sent
    time.sleep(1.0)  # several checks and failed sends of "locked" meanwhile
    assert dead_letters(rig.spool, "k:9092") == []
    world.write_locked.clear()
    assert wait_until(lambda: world.values("locked") == [b"l-%d" % i for i in range(3)])
    assert world.values("open") == [b"o-%d" % i for i in range(20)]


# ---- a topic that cannot take records must not hold up the destination's others --------

def test_a_topic_without_metadata_is_parked_while_the_other_topics_flow_in_order(
        rigs: Callable[..., Rig]) -> None:
    fake = Fake(missing={"absent"}, block_s=3.0)  # a metadata wait: max_block_ms
    rig = rigs(fake, memory_records=4)
    rig.publisher.start()
    started = time.monotonic()
    for i in range(20):
        rig.submit("k:9092", b"a-%d" % i, topic="absent", processor="pa")
        rig.submit("k:9092", b"x-%d" % i, topic="t1", processor="px")
        rig.submit("k:9092", b"y-%d" % i, topic="t2", processor="py")
    xs, ys = [b"x-%d" % i for i in range(20)], [b"y-%d" % i for i in range(20)]
    assert wait_until(lambda: fake.values("k:9092", "t1") == xs and
                      fake.values("k:9092", "t2") == ys, 10), fake.sent
    assert time.monotonic() - started < 2.5  # none of the 3 s checks of "absent" shows
    assert fake.resets["k:9092"] == 0 and dead_letters(rig.spool, "k:9092") == []
    assert wait_until(lambda: "Unknown" in rig.publisher.report()["k:9092"].get(
        "parked_topics", {}).get("absent", {}).get("error", ""), 10)
    report = rig.publisher.report()["k:9092"]
    assert report["state"] == "ok"  # the cluster is fine; one topic is not
    assert report["parked_topics"]["absent"]["records_held"] == 20
    assert report["parked_topics"]["absent"]["processors"] == ["pa"]
    assert rig.value("streamproc_kafka_topics_parked", cluster="k:9092") == 1
    for i in range(20, 25):  # and the others go on while it stays parked
        rig.submit("k:9092", b"x-%d" % i, topic="t1", processor="px")
        rig.submit("k:9092", b"a-%d" % i, topic="absent", processor="pa")
    xs += [b"x-%d" % i for i in range(20, 25)]
    assert wait_until(lambda: fake.values("k:9092", "t1") == xs, 5)
    fake.missing.clear()  # the topic is created
    assert wait_until(lambda: fake.values("k:9092", "absent") == [
        b"a-%d" % i for i in range(25)], 15), fake.values("k:9092", "absent")
    assert wait_until(lambda: "parked_topics" not in rig.publisher.report()["k:9092"])
    assert wait_until(lambda: rig.publisher.report()["k:9092"]["records_held"] == 0)
    assert rig.spool.clusters() == {} and fake.resets["k:9092"] == 0
    assert fake.values("k:9092", "t2") == ys  # each once


def test_a_parked_topics_records_survive_a_restart_in_order(
        rigs: Callable[..., Rig]) -> None:
    fake = Fake(missing={"absent"}, block_s=0.2)
    rig = rigs(fake, memory_records=3)
    rig.publisher.start()
    for i in range(10):
        rig.submit("k:9092", b"a-%d" % i, topic="absent", processor="pa")
        rig.submit("k:9092", b"x-%d" % i, topic="t1", processor="px")
    assert wait_until(lambda: len(fake.values("k:9092", "t1")) == 10)
    assert wait_until(lambda: rig.publisher.report()["k:9092"].get("parked_topics", {}).get(
        "absent", {}).get("records_held") == 10)
    rig.publisher.stop(2.0)
    rows = rig.spool.read("k:9092", float("-inf"), 100)
    assert [r.value for r in rows] == [b"a-%d" % i for i in range(10)]
    again = rigs(Fake())  # the next run: the topic exists now
    again.spool.close()
    again.spool = rig.spool
    again.publisher = Publisher(KafkaConfig(memory_records=3), rig.spool,
                                PublisherMetrics.create(CollectorRegistry()), lambda n: None,
                                MailboxEvents(Mailbox()), {"kafka": again.transport})
    again.publisher.load()
    again.publisher.start()
    assert wait_until(lambda: again.transport.values("k:9092", "absent") == [
        b"a-%d" % i for i in range(10)])


def test_records_of_a_deleted_processor_on_a_parked_topic_are_dropped_after_the_grace(
        rigs: Callable[..., Rig]) -> None:
    """Its rows lie behind the read cursor (the others' rows after them were read)."""
    fake = Fake(missing={"absent"})
    alive = {"pa", "px"}
    rig = rigs(fake, owner_exists=lambda name: name in alive, deleted_grace_s=0.5,
               memory_records=2)
    rig.publisher.start()
    for i in range(10):
        rig.submit("k:9092", b"a-%d" % i, topic="absent", processor="pa")
        rig.submit("k:9092", b"x-%d" % i, topic="t1", processor="px")
    assert wait_until(lambda: len(fake.values("k:9092", "t1")) == 10)
    assert wait_until(lambda: rig.publisher.report()["k:9092"]["records_held"] == 10)
    alive.discard("pa")
    assert wait_until(lambda: rig.publisher.report()["k:9092"]["records_held"] == 0, 15)
    assert rig.value("streamproc_records_dropped_total", cluster="k:9092",
                     reason="processor_deleted") == 10
    assert rig.spool.clusters() == {}
    assert wait_until(lambda: "parked_topics" not in rig.publisher.report()["k:9092"])
    rig.submit("k:9092", b"x-late", topic="t1", processor="px")
    assert wait_until(lambda: b"x-late" in fake.values("k:9092", "t1"))


def test_a_new_topic_is_checked_once_and_then_sent_at_once(rigs: Callable[..., Rig]) -> None:
    fake = Fake()
    rig = rigs(fake)
    rig.publisher.start()
    for i in range(50):
        rig.submit("k:9092", b"%d" % i)
    assert wait_until(lambda: len(fake.values("k:9092")) == 50)
    assert fake.values("k:9092") == [b"%d" % i for i in range(50)]
    assert fake.checks == {"t": 1}


def test_a_client_made_while_the_destination_is_reset_is_closed_not_kept() -> None:
    from streamproc.dataplane.output.transport import DestinationError, KafkaTransport

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
    assert made[0].closed
    transport.send("c:1", "t", b"k", b"v")  # the next send makes a fresh client: none was kept
    assert len(made) == 2 and not made[1].closed
    transport.send("c:1", "t", b"k", b"v")  # ... and that one is kept
    assert len(made) == 2


def test_a_failed_connect_is_the_destinations_trouble_not_the_records() -> None:
    from streamproc.dataplane.output.transport import DestinationError, KafkaTransport

    def refuse(**_: object) -> None:
        msg = "a setting kafka-python does not take"
        raise ValueError(msg)  # a ValueError, like an illegal topic: it must not read so

    transport = KafkaTransport(KafkaConfig(), producer_factory=refuse)
    with pytest.raises(DestinationError) as caught:
        transport.send("c:1", "t", b"k", b"v")
    assert not transport.refuses(caught.value)
    assert repr(caught.value) == "ValueError('a setting kafka-python does not take')"


def test_the_real_client_tells_a_live_topic_from_a_dead_cluster() -> None:
    """kafka-python 3 and a real broker: a check of a live topic passes; once the broker is
    gone, a check or a send of a topic without metadata is the cluster's trouble (an outage),
    not a topic to park. (tansu creates every topic asked for, so a missing topic itself is
    tested over the fake transport above.)"""
    from streamproc.dataplane.output.transport import KafkaTransport
    from streamproc.tools.broker import EmbeddedBroker

    broker = EmbeddedBroker()
    broker.start()
    transport = KafkaTransport(KafkaConfig(max_block_ms=1500))
    try:
        assert transport.check_topic(broker.bootstrap, "faces") is None
        future = transport.send(broker.bootstrap, "faces", b"k", b"v")
        transport.flush(broker.bootstrap, 10)
        assert future.is_done and not future.failed()
    finally:
        broker.stop()
    try:
        for attempt in (lambda: transport.check_topic(broker.bootstrap, "other"),
                        lambda: transport.send(broker.bootstrap, "another", b"k", b"v")):
            with pytest.raises(Exception) as caught:
                attempt()
            assert "metadata" in str(caught.value)
            assert not transport.topic_trouble(caught.value)
            assert not transport.refuses(caught.value)
    finally:
        transport.reset(broker.bootstrap)
