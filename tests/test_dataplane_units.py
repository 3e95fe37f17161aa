"""Data-plane pieces on their own: state machine, redaction, queues, tracker, publisher.

The sampler and record times: test_timeline.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.tracking import IouTracker
from streamproc.processors.state import IllegalTransition, ProcessorState, ProcessorStatus
from streamproc.processors.urls import output_target, parse_kafka_url, redact, stream_name

S = ProcessorStatus


def test_state_machine_is_data_and_logs_every_change() -> None:
    seen: list[tuple[str, str, str]] = []
    state = ProcessorState("p", listener=lambda n, o, new, m: seen.append((o.value, new.value,
                                                                           m)))
    before = state.updated
    time.sleep(0.01)
    state.change(S.STARTING)
    state.change(S.RUNNING)
    state.change(S.FAILED, "Collection not found")
    assert state.status is S.FAILED and state.message == "Collection not found"
    assert state.updated > before
    with pytest.raises(IllegalTransition):
        state.change(S.STOPPING)
    assert not state.change_if(frozenset({S.RUNNING}), S.STOPPING)
    assert seen == [("STOPPED", "STARTING", ""), ("STARTING", "RUNNING", ""),
                    ("RUNNING", "FAILED", "Collection not found")]


def test_redaction_hides_credentials() -> None:
    assert redact("rtsp://user:pw@cam:554/s") == "rtsp://***:***@cam:554/s"
    assert redact("rtmp://token@cam/live") == "rtmp://***@cam/live"
    assert redact("https://h/x.m3u8?token=abc&channel=1") == \
        "https://h/x.m3u8?token=***&channel=1"
    assert redact("srt://h:9000?passphrase=hunter22") == "srt://h:9000?passphrase=***"
    assert redact("/videos/a.mp4") == "/videos/a.mp4"


def test_outputs_map_to_topics() -> None:
    assert output_target("arn:aws:kinesis:us-east-1:123456789012:stream/AmazonRek").topic == \
        "AmazonRek"
    target = parse_kafka_url("kafka://k1:9092,k2:9092/faces")
    assert target is not None and target.bootstrap == "k1:9092,k2:9092"
    assert parse_kafka_url("kafka://k1:9092/") is None
    assert stream_name("arn:aws:kinesisvideo:us-east-1:123456789012:stream/cam/123") == "cam"


def test_queue_policies_count_drops() -> None:
    drops: list[int] = []
    oldest = BoundedQueue(2, DropPolicy.DROP_OLDEST, on_drop=drops.append)
    for i in range(5):
        assert oldest.put(i)
    assert oldest.drain() == [3, 4] and oldest.dropped == 3 and sum(drops) == 3
    newest = BoundedQueue(2, DropPolicy.DROP_NEWEST)
    assert [newest.put(i) for i in range(3)] == [True, True, False]
    assert newest.drain() == [0, 1] and newest.dropped == 1
    blocking = BoundedQueue(1, DropPolicy.BLOCK)
    blocking.put("a")
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert blocking.put("b", stop=stop, timeout=5) is False
    assert time.monotonic() - started < 1 and blocking.dropped == 1
    threading.Timer(0.1, blocking.get).start()
    assert blocking.put("c", timeout=5) is True


def test_tracker_keeps_identity_and_paces_embeddings() -> None:
    tracker = IouTracker()
    a = tracker.update([np.array([0, 0, 10, 10.0]), np.array([50, 50, 60, 60.0])])
    b = tracker.update([np.array([51, 50, 61, 60.0]), np.array([1, 0, 11, 10.0])])
    assert [t.track_id for t in b] == [a[1].track_id, a[0].track_id]
    c = tracker.update([np.array([200, 200, 210, 210.0])])
    assert c[0].track_id not in {a[0].track_id, a[1].track_id}
    track = c[0]
    assert track.needs_embedding(now=0.0, interval=0.5)
    track.observe(np.array([1.0, 0.0], np.float32), now=0.0)
    assert not track.needs_embedding(now=0.4, interval=0.5)
    assert track.needs_embedding(now=0.5, interval=0.5)
    track.observe(np.array([0.0, 1.0], np.float32), now=0.5)
    assert np.allclose(track.mean_embedding, [0.70710677, 0.70710677])
    assert np.allclose(track.latest, [0.0, 1.0])


def _publisher(tmp_path: Any, factory: Any, **cfg: Any) -> Any:
    from prometheus_client import CollectorRegistry

    from streamproc.config import KafkaConfig
    from streamproc.dataplane.output.publish import kafka_publisher
    from streamproc.metrics import PublisherMetrics
    from streamproc.processors.mailbox import Mailbox, MailboxEvents
    from streamproc.storage.spool import Spool

    spool = Spool(tmp_path / "spool.db")
    spool.open()
    return kafka_publisher(KafkaConfig(**cfg), spool, PublisherMetrics.create(CollectorRegistry()),
                           lambda name: None, MailboxEvents(Mailbox()),
                           producer_factory=factory), spool


def _sensor() -> Any:
    from prometheus_client import CollectorRegistry

    from streamproc.metrics import ProcessorMetrics
    return ProcessorMetrics.create(CollectorRegistry()).sensor("p")


def test_shared_stages_stop_in_bounded_time(tmp_path: Any) -> None:
    from streamproc.dataplane.analyzer import Analyzer

    release, entered = threading.Event(), threading.Event()

    class StuckProducer:
        """A producer whose send blocks (a broker that never answers)."""

        def __init__(self, **_: object) -> None:
            pass

        def send(self, *_: object, **__: object) -> None:
            entered.set()
            release.wait(30)

        def partitions_for(self, topic: str) -> set[int]:
            return {0}

        def flush(self, timeout: float) -> None:
            pass

        def close(self, timeout: float) -> None:
            pass

    publisher, spool = _publisher(tmp_path, StuckProducer, flush_timeout_s=0.5)
    publisher.start()
    publisher.submit("h:1", "p", "t", b"v", time.monotonic(), _sensor())
    assert entered.wait(10), "the publisher never sent"
    started = time.monotonic()
    assert publisher.stop(timeout=0.5) is False  # its thread is stuck in send: abandoned
    assert time.monotonic() - started < 2.0
    release.set()
    analyzer = Analyzer(engine=None, searcher=None, publisher=publisher,  # type: ignore[arg-type]
                        batch_frames=4, max_matches=1, emit_empty=False,
                        wake=threading.Event())
    analyzer.start()
    started = time.monotonic()
    assert analyzer.stop(timeout=5.0) is True
    assert time.monotonic() - started < 1.0  # an idle analyzer ends at once, not at the timeout
    spool.close()


class _Future:
    """What kafka-python's send() returns, completed by the test."""

    def __init__(self) -> None:
        self.is_done = False
        self.exception: Exception | None = None
        self.callbacks: list[Any] = []

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def add_callback(self, fn: Any) -> None:
        self.callbacks.append(fn)

    add_errback = add_callback

    def ok(self) -> None:
        self.is_done = True
        for fn in self.callbacks:
            fn(None)

    def err(self, exc: Exception) -> None:
        self.is_done, self.exception = True, exc
        for fn in self.callbacks:
            fn(exc)


class _ScriptedProducer:
    """Records sends; the test decides when each is acknowledged or fails."""

    sent: list[tuple[bytes, _Future]] = []

    def __init__(self, **_: object) -> None:
        pass

    def send(self, topic: str, key: bytes, value: bytes) -> _Future:
        future = _Future()
        _ScriptedProducer.sent.append((value, future))
        return future

    def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def _confirm(sender: Any, topic: str = "t") -> None:
    """Turn the sender until its destination confirmed ``topic`` (checked on a thread)."""
    deadline = time.monotonic() + 10
    while topic not in sender._admitted:
        assert time.monotonic() < deadline, f"{topic} was never confirmed"
        sender.box.sync_disk()
        sender.pump()
        time.sleep(0.001)


def test_outbox_keeps_order_through_disk_and_failures(tmp_path: Any) -> None:
    _ScriptedProducer.sent = []
    publisher, spool = _publisher(tmp_path, _ScriptedProducer, memory_records=3,
                                  max_in_flight=2)
    sensor = _sensor()
    for i in range(10):
        publisher.submit("c:1", "p", "t", str(i).encode(), time.monotonic(), sensor)
    sender = publisher._sender("c:1")
    box = sender.box
    box.sync_disk()
    assert box.sizes() == (3, 7)  # bounded memory, the rest on disk
    _confirm(sender)
    delivered: list[bytes] = []
    for _ in range(200):
        sender.retry_at = 0.0  # as if the retry delay had passed
        box.sync_disk()
        sender.pump()
        if not _ScriptedProducer.sent:
            if len(delivered) == 10:
                break
            continue
        value, future = _ScriptedProducer.sent.pop(0)
        if value == b"4" and b"4" not in delivered and not getattr(box, "_failed_once", False):
            box._failed_once = True  # type: ignore[attr-defined]
            future.err(RuntimeError("broker gone"))
            _ScriptedProducer.sent.clear()  # in-flight sends of the dead producer are lost
            continue
        if value not in delivered:
            delivered.append(value)
        future.ok()
    assert delivered == [str(i).encode() for i in range(10)]
    assert box.sizes() == (0, 0) and spool.clusters() == {}
    spool.close()


def test_spool_never_reuses_positions(tmp_path: Any) -> None:
    from streamproc.storage.spool import Spool

    spool = Spool(tmp_path / "s.db")
    spool.open()
    spool.append("c", [("p", "t", b"k", b"1"), ("p", "t", b"k", b"2")])
    rows = spool.read("c", float("-inf"), 10)
    spool.delete([r.row_id for r in rows])
    spool.append("c", [("p", "t", b"k", b"3")])
    later = spool.read("c", rows[-1].pos, 10)  # a reader whose cursor is past the old rows
    assert [r.value for r in later] == [b"3"]
    spool.close()


def test_outbox_delivers_a_backlog_larger_than_memory_twice(tmp_path: Any) -> None:
    _ScriptedProducer.sent = []
    publisher, spool = _publisher(tmp_path, _ScriptedProducer, memory_records=5,
                                  max_in_flight=3)
    sender = publisher._sender("c:1")
    box = sender.box
    delivered: list[bytes] = []
    for wave in range(2):  # the second wave arrives after the spool emptied once
        for i in range(20):
            publisher.submit("c:1", "p", "t", f"{wave}-{i}".encode(), time.monotonic(),
                             _sensor())
        deadline = time.monotonic() + 10  # (the topic's first check runs on a thread)
        while box.sizes() != (0, 0) and time.monotonic() < deadline:
            box.sync_disk()
            sender.pump()
            time.sleep(0 if _ScriptedProducer.sent else 0.001)
            while _ScriptedProducer.sent:
                value, future = _ScriptedProducer.sent.pop(0)
                delivered.append(value)
                future.ok()
    assert delivered == [f"{w}-{i}".encode() for w in range(2) for i in range(20)]
    spool.close()


def test_unacknowledged_records_survive_a_restart_in_order(tmp_path: Any) -> None:
    _ScriptedProducer.sent = []
    publisher, spool = _publisher(tmp_path, _ScriptedProducer, memory_records=2,
                                  max_in_flight=1)
    for i in range(5):
        publisher.submit("c:1", "p", "t", str(i).encode(), time.monotonic(), _sensor())
    sender = publisher._sender("c:1")
    sender.box.sync_disk()
    sender.pump()  # "0" in flight, never acknowledged
    publisher.stop(timeout=1)
    assert spool.clusters() == {"c:1": 5}
    assert [r.value for r in spool.read("c:1", float("-inf"), 10)] == [
        b"0", b"1", b"2", b"3", b"4"]
    spool.close()


def test_records_go_to_disk_at_stop_even_when_the_transport_cannot_reset(tmp_path: Any) -> None:
    """A node whose publisher gave up stops with a broken transport: nothing may be lost."""
    from prometheus_client import CollectorRegistry

    from streamproc.config import KafkaConfig
    from streamproc.dataplane.output.publish import Publisher
    from streamproc.metrics import PublisherMetrics
    from streamproc.processors.mailbox import Mailbox, MailboxEvents
    from streamproc.storage.spool import Spool

    class Broken:
        def send(self, *_: object) -> Any:
            msg = "cannot send"
            raise RuntimeError(msg)

        def reset(self, destination: str) -> None:
            msg = "cannot reset"
            raise RuntimeError(msg)

        def flush(self, destination: str, timeout: float) -> None:
            pass

        def check_topic(self, destination: str, topic: str) -> None:
            msg = "cannot check"
            raise RuntimeError(msg)

        def refuses(self, error: BaseException) -> bool:
            return False

        def topic_trouble(self, error: BaseException) -> bool:
            return False

    spool = Spool(tmp_path / "spool.db")
    spool.open()
    publisher = Publisher(KafkaConfig(), spool, PublisherMetrics.create(CollectorRegistry()),
                          lambda name: None, MailboxEvents(Mailbox()), {"kafka": Broken()})
    for i in range(3):  # never started: as after its thread gave up
        publisher.submit("k:9092", "p", "t", b"r%d" % i, 0.0, _sensor())
    publisher.stop(1.0)
    assert spool.clusters() == {"k:9092": 3}
    spool.close()
