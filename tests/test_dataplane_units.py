"""Data-plane pieces on their own: state machine, redaction, queues, tracker, sampler."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.source import FrameSampler
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
    assert redact("https://h/x.m3u8?token=abc&q=1") == "https://h/x.m3u8?token=***&q=1"
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


def test_tracker_keeps_identity_across_frames() -> None:
    tracker = IouTracker()
    emb = np.ones(4, np.float32) / 2
    a = tracker.update([np.array([0, 0, 10, 10.0]), np.array([50, 50, 60, 60.0])], [emb, emb])
    b = tracker.update([np.array([51, 50, 61, 60.0]), np.array([1, 0, 11, 10.0])], [emb, emb])
    assert [t.track_id for t in b] == [a[1].track_id, a[0].track_id]
    c = tracker.update([np.array([200, 200, 210, 210.0])], [emb])
    assert c[0].track_id not in {a[0].track_id, a[1].track_id}


class _Frame:
    def __init__(self, t: float, key: bool) -> None:
        self.time, self.key_frame = t, key

    def to_ndarray(self, format: str) -> np.ndarray:  # noqa: A002 - PyAV's signature
        return np.zeros((4, 4, 3), np.uint8)


def test_sampler_rate_and_fragment_timing() -> None:
    sampler = FrameSampler(fps=5)
    frames = [_Frame(i / 25, key=(i % 25 == 0)) for i in range(100)]  # 4 s at 25 fps
    out = [s for s in (sampler.offer(f) for f in frames) if s is not None]
    assert len(out) == 20
    assert all(0 <= s.offset_s < 1.0 for s in out)
    fragments = sorted({s.fragment_number for s in out})
    assert len(fragments) == 4 and all(f.isdigit() for f in fragments)
    frame_times = [s.producer_ts + s.offset_s for s in out]
    assert np.allclose(np.diff(frame_times), 0.2, atol=0.002)


def test_shared_stages_stop_in_bounded_time() -> None:
    from streamproc.config import KafkaConfig
    from streamproc.dataplane.analyzer import Analyzer
    from streamproc.dataplane.publish import KafkaPublisher, OutRecord
    from streamproc.metrics import ProcessorMetrics
    from prometheus_client import CollectorRegistry

    release = threading.Event()

    class StuckProducer:
        """A producer whose send blocks (a broker that never answers)."""

        def __init__(self, **_: object) -> None:
            self.flushed = False

        def send(self, *_: object, **__: object) -> None:
            release.wait(30)

        def flush(self, timeout: float) -> None:
            self.flushed = True

        def close(self, timeout: float) -> None:
            pass

    sensor = ProcessorMetrics.create(CollectorRegistry()).sensor("p")
    publisher = KafkaPublisher(KafkaConfig(flush_timeout_s=0.5), lambda b, m: None,
                               producer_factory=StuckProducer)
    publisher.start()
    publisher.submit(OutRecord("h:1", "t", b"k", b"v", time.monotonic(), sensor))
    time.sleep(0.2)
    started = time.monotonic()
    assert publisher.stop(timeout=0.5) is False  # its thread is stuck in send: abandoned
    assert time.monotonic() - started < 2.0
    release.set()
    analyzer = Analyzer(engine=None, store=None, publisher=publisher,  # type: ignore[arg-type]
                        batch_frames=4, max_matches=1, emit_empty=False,
                        wake=threading.Event())
    analyzer.start()
    started = time.monotonic()
    assert analyzer.stop(timeout=1.0) is True
    assert time.monotonic() - started < 0.5
