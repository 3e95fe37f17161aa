"""The data plane's feed tap and the analyzer's use of it, in process (no daemon, no model).

The analyzer does no work for a processor no one watches (no crop is cut, no frame encoded);
each watcher's buffer is bounded (drop_oldest, every drop counted and told to the watcher);
at most ``max_feeds`` are open; threads subscribing and leaving while the analyzer's thread
offers leave the counts consistent.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import cv2
import numpy as np
import pytest
from fakes import live_session

from streamproc.dataplane import analyzer as analyzer_module
from streamproc.dataplane.analyzer import Analyzer
from streamproc.dataplane.live.source import VideoFrame
from streamproc.dataplane.output.tap import SHUTDOWN, FeedsFull, FeedTap, FramesBusy
from streamproc.faces.types import Face

pytestmark = pytest.mark.unit

BOXES = (np.array([40.0, 30.0, 120.0, 130.0]), np.array([300.0, 50.0, 380.0, 150.0]))


class _Engine:
    """Finds the same two faces in every frame; embeddings are fixed unit vectors."""

    face_model_version = "7.0"

    def detect_many(self, images: list[np.ndarray], max_faces: int = 0) -> list[list[Face]]:
        return [[Face(box=box.copy(), score=0.99, landmarks=np.zeros((5, 2)), confidence=99.9)
                 for box in BOXES] for _ in images]

    def embed_many(self, items: list[tuple[np.ndarray, list[Face]]]) -> None:
        for _, faces in items:
            for face in faces:
                vector = np.zeros(4, np.float32)
                vector[0] = 1.0
                face.embedding = vector


class _Searcher:
    def search(self, collection: str, vectors: np.ndarray, top: int, threshold: float,
               expect: Any = None) -> list[list[Any]]:
        return [[] for _ in range(len(vectors))]


class _Publisher:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def submit(self, destination: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: Any) -> None:
        self.values.append(value)


def _frame(height: int = 720, width: int = 1280) -> VideoFrame:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 1] = 128  # green: a decoded JPEG is not all black
    return VideoFrame(image, "1", time.time(), time.time(), 0.0, time.monotonic())


def _analyzer(tap: FeedTap | None) -> tuple[Analyzer, _Publisher]:
    publisher = _Publisher()
    return Analyzer(_Engine(), _Searcher(), publisher, 4, 1, False,  # type: ignore[arg-type]
                    threading.Event(), 0.0, tap), publisher


def _noop() -> None:
    pass


def test_unwatched_processor_costs_no_crop_and_no_frame(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    calls: list[str] = []

    def counting_crop(*args: Any, **kwargs: Any) -> bytes:
        calls.append("crop")
        return b"jpeg"

    def counting_frame(*args: Any, **kwargs: Any) -> bytes:
        calls.append("frame")
        return b"jpeg"

    monkeypatch.setattr(analyzer_module, "face_crop", counting_crop)
    monkeypatch.setattr(analyzer_module, "frame_jpeg", counting_frame)
    tap = FeedTap(8, 4)
    analyzer, publisher = _analyzer(tap)
    session = live_session("cam")
    other = tap.subscribe("another-cam", _noop, _noop)  # someone watches, but not "cam"
    analyzer.analyse([(session, _frame()) for _ in range(3)])
    assert len(publisher.values) == 3  # published as ever
    assert calls == []  # but nothing was cut or encoded for a watcher
    assert other.take() == []
    # Once "cam" is watched, each record brings one crop per face.
    watcher = tap.subscribe("cam", _noop, _noop)
    analyzer.analyse([(session, _frame())])
    assert calls == ["crop", "crop"]
    (delivery,) = watcher.take()
    assert delivery.event.record == publisher.values[-1]
    assert delivery.event.crops == (b"jpeg", b"jpeg") and delivery.dropped == 0


def test_watched_records_carry_real_crops_and_frames_are_cut_on_request() -> None:
    tap = FeedTap(8, 4)
    analyzer, publisher = _analyzer(tap)
    session = live_session("cam")
    watcher = tap.subscribe("cam", _noop, _noop)
    woken = threading.Event()
    wanted = tap.want_frame("cam", woken.set)
    analyzer.analyse([(session, _frame())])
    (delivery,) = watcher.take()
    record = json.loads(delivery.event.record)
    assert len(record["FaceSearchResponse"]) == len(delivery.event.crops) == 2
    for crop in delivery.event.crops:
        assert crop is not None
        image = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and max(image.shape[:2]) <= 160
    assert woken.is_set() and wanted.jpeg is not None
    frame = cv2.imdecode(np.frombuffer(wanted.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None
    assert frame.shape[:2] == (540, 960)  # 1280x720 to a longest side of 960
    assert not tap.frame_wanted("cam")  # answered once: the next frame is not encoded
    tap.forget_frame(wanted)  # after an answer, forgetting is a no-op
    assert abs(delivery.event.at_ms - time.time() * 1000) < 5000
    assert len(publisher.values) == 1


def test_a_full_buffer_drops_its_oldest_counts_and_tells_the_watcher() -> None:
    drops: list[int] = []
    wakes: list[int] = []
    tap = FeedTap(3, 4)
    watcher = tap.subscribe("cam", lambda: wakes.append(1), lambda: drops.append(1))
    for n in range(5):  # 2 too many for a buffer of 3
        tap.offer("cam", b'{"n":%d}' % n, ())
    assert len(drops) == 2 and watcher.dropped == 2 and len(wakes) == 5
    taken = watcher.take()
    assert [json.loads(d.event.record)["n"] for d in taken] == [2, 3, 4]
    assert [d.dropped for d in taken] == [2, 0, 0]  # lost just before the first one kept
    tap.offer("cam", b'{"n":5}', ())
    assert [(d.dropped, d.event.record) for d in watcher.take()] == [(0, b'{"n":5}')]


def test_a_buffer_of_one_carries_every_drop_forward() -> None:
    tap = FeedTap(1, 1)
    watcher = tap.subscribe("cam", _noop, _noop)
    for n in range(4):
        tap.offer("cam", b"%d" % n, ())
    (delivery,) = watcher.take()
    assert delivery.event.record == b"3" and delivery.dropped == 3


def test_at_most_max_feeds_and_frame_requests() -> None:
    tap = FeedTap(4, 2)
    first = tap.subscribe("a", _noop, _noop)
    tap.subscribe("b", _noop, _noop)
    with pytest.raises(FeedsFull, match="At most 2 live feeds"):
        tap.subscribe("a", _noop, _noop)
    assert tap.open_feeds == 2
    tap.unsubscribe(first)
    tap.unsubscribe(first)  # a second time changes nothing
    assert tap.open_feeds == 1 and not tap.watching("a") and tap.watching("b")
    tap.subscribe("c", _noop, _noop)
    waits = [tap.want_frame("a", _noop), tap.want_frame("a", _noop)]
    with pytest.raises(FramesBusy):
        tap.want_frame("b", _noop)
    tap.forget_frame(waits[0])
    assert tap.frame_wanted("a")
    tap.offer_frame("a", b"jpeg")
    assert waits[0].jpeg is None and waits[1].jpeg == b"jpeg"
    assert not tap.frame_wanted("a")
    tap.want_frame("b", _noop)  # room again


def test_close_ends_every_feed_and_refuses_new_ones() -> None:
    tap = FeedTap(4, 4)
    woken = threading.Event()
    watcher = tap.subscribe("cam", woken.set, _noop)
    tap.close()
    assert watcher.ended == SHUTDOWN and woken.is_set()
    assert tap.open_feeds == 0 and not tap.watching("cam")
    tap.offer("cam", b"{}", ())
    assert watcher.take() == []
    late = tap.subscribe("cam", _noop, _noop)
    assert late.ended == SHUTDOWN and tap.open_feeds == 0
    tap.unsubscribe(watcher)  # after close: nothing to undo


def test_subscribers_coming_and_going_while_the_analyzer_offers() -> None:
    capacity, names = 5, ("a", "b", "c")
    tap = FeedTap(capacity, 8)
    drop_lock = threading.Lock()
    drops = [0]

    def dropped() -> None:
        with drop_lock:
            drops[0] += 1

    stop = threading.Event()
    errors: list[BaseException] = []
    offered = [0]
    subscriptions: list[Any] = []
    seen_lock = threading.Lock()
    received = [0]
    lost = [0]

    def offerer() -> None:
        try:
            while not stop.is_set():
                name = names[offered[0] % len(names)]
                if tap.watching(name):
                    tap.offer(name, b"{}", (None,))
                offered[0] += 1
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    def watcher(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(300):
                try:
                    sub = tap.subscribe(rng.choice(names), _noop, dropped)
                except FeedsFull:
                    continue
                for _ in range(rng.randrange(1, 4)):
                    taken = sub.take()
                    assert len(taken) <= capacity
                    with seen_lock:
                        received[0] += len(taken)
                        lost[0] += sum(d.dropped for d in taken)
                tap.unsubscribe(sub)
                with seen_lock:
                    subscriptions.append(sub)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    producer = threading.Thread(target=offerer)
    producer.start()
    watchers = [threading.Thread(target=watcher, args=(n,)) for n in range(6)]
    for t in watchers:
        t.start()
    for t in watchers:
        t.join(60)
    stop.set()
    producer.join(10)
    assert not errors, errors
    assert not any(t.is_alive() for t in (producer, *watchers))
    assert tap.open_feeds == 0 and not any(tap.watching(n) for n in names)
    assert offered[0] > 0 and subscriptions
    # Every drop was counted once, on the watcher it happened to; what a watcher was told
    # it lost never exceeds what it lost (the rest was still buffered when it left).
    assert drops[0] == sum(s.dropped for s in subscriptions)
    assert lost[0] <= drops[0]
    for sub in subscriptions:  # left: nothing more reaches a gone watcher's buffer
        before = len(sub.take())
        tap.offer(sub.name, b"{}", ())
        assert len(sub.take()) == 0 and before <= capacity


def test_a_match_event_on_the_wire_keeps_the_record_and_says_what_was_lost() -> None:
    from streamproc.console.feed import _match
    from streamproc.dataplane.output.tap import Delivery, FeedEvent

    record = b'{"FaceSearchResponse":[{"MatchedFaces":[]},{"MatchedFaces":[]}],"x":"a\\nb"}'
    wire = _match(Delivery(FeedEvent(1_700_000_000_123, record, (b"\xff\xd8jpeg", None)), 7))
    event, data, blank = wire.split(b"\n", 2)
    assert event == b"event: match" and blank == b"\n"  # one data line: the record has no \n
    body = json.loads(data.removeprefix(b"data: "))
    assert body == {"at": 1_700_000_000_123, "record": json.loads(record),
                    "crops": ["data:image/jpeg;base64,/9hqcGVn", None], "dropped": 7}


def test_a_feed_whose_client_left_before_the_first_event_still_ends_its_subscription() -> None:
    import anyio
    from starlette.requests import ClientDisconnect

    from streamproc.console.feed import _EventStream

    closed: list[str] = []
    started: list[str] = []

    async def events() -> AsyncIterator[bytes]:
        started.append("yes")
        yield b"never read"

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        raise OSError("the client is gone")  # before the response even started

    async def run() -> None:
        stream = _EventStream(events(), lambda: closed.append("closed"))
        try:
            await stream({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
        except (OSError, ClientDisconnect):
            pass

    anyio.run(run)
    assert closed == ["closed"] and started == []


def test_one_owner_holds_at_most_its_share_of_the_feeds() -> None:
    tap = FeedTap(4, 3, max_per_owner=2)
    held = [tap.subscribe("cam", lambda: None, lambda: None, owner="AK1") for _ in range(2)]
    with pytest.raises(FeedsFull, match="max_feeds_per_key"):
        tap.subscribe("cam", lambda: None, lambda: None, owner="AK1")
    other = tap.subscribe("cam", lambda: None, lambda: None, owner="AK2")
    with pytest.raises(FeedsFull, match=r"\(console.max_feeds\)"):
        tap.subscribe("cam", lambda: None, lambda: None, owner="AK3")
    tap.unsubscribe(held[0])
    tap.unsubscribe(held[0])  # twice: counted once
    again = tap.subscribe("cam", lambda: None, lambda: None, owner="AK1")
    assert tap.open_feeds == 3 and again.owner == "AK1" and other.owner == "AK2"
