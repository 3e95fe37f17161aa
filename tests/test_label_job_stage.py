"""The label stage over a fake label pack: batches, owners, failures, live first, stop.

Model-free (unit tier): the stage's thread runs against :class:`FakeDetector` and owners that
record what they are handed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.regions import Region
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.label_stage import FLOOR, LabelAnalysis, LabelStage
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import IouTracker
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.types import Label
from streamproc.tools.clusterkit import poll

DEADLINE_S = 10.0


def _until(check: Callable[[], bool], timeout: float = DEADLINE_S) -> bool:
    return bool(poll(check, timeout, 0.01))


def _frame(value: int) -> StoredFrame:
    """A BGR image whose blue channel is ``value`` (red 0): the fake reads it back."""
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0] = value
    return StoredFrame(image, value, value / 1000)


class FakeDetector:
    """``Index`` at the frame's index (the pixel the stage hands it, as RGB); records calls."""

    model_version = "fake-1"

    def __init__(self, broken: Sequence[int] = ()) -> None:
        self.calls: list[tuple[int, float]] = []  # (frame index, min_confidence)
        self.broken = set(broken)  # frame indices whose detection raises
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def detect(self, image: npt.NDArray[np.uint8], min_confidence: float) -> tuple[Label, ...]:
        self.entered.set()
        self.release.wait(30)
        assert image.flags["C_CONTIGUOUS"] and image[0, 0, 0] == 0  # RGB: blue is last
        index = int(image[0, 0, 2])
        self.calls.append((index, min_confidence))
        if index in self.broken:
            raise RuntimeError("model error")
        return (Label("Index", float(index)),)


class Owner:
    """A job launch's side as the stage sees it; records finishes and failures."""

    def __init__(self, name: str, broken_finish: bool = False) -> None:
        self.name = name
        self.frames: BoundedQueue[StoredFrame] = BoundedQueue(64, DropPolicy.BLOCK)
        self.regions: tuple[Region, ...] = ()
        self.tracker = IouTracker()
        self.embed_interval: float | None = None
        self.finished: list[tuple[int, float]] = []  # (timestamp, label confidence)
        self.failures: list[str] = []
        self._broken = broken_finish

    def finish(self, frame: StoredFrame, analysis: LabelAnalysis) -> None:
        if self._broken:
            raise ValueError("builder bug")
        assert analysis.found == 1
        self.finished.append((frame.timestamp_ms, analysis.labels[0].confidence))

    def fail(self, reason: str) -> None:
        self.failures.append(reason)

    def queue(self, *values: int) -> None:
        for value in values:
            assert self.frames.put(_frame(value))


class Live:
    """A fake live side: whether sessions are attached, whether a live frame waits."""

    def __init__(self, attached: bool = False, waiting: bool = False) -> None:
        self.attached = attached
        self.waiting = waiting
        self.asked = 0

    def live_attached(self) -> bool:
        return self.attached

    def live_waiting(self) -> bool:
        self.asked += 1
        return self.waiting


def _stage(detector: FakeDetector | None, live: Live, batch: int = 4, beside_live: int = 1,
           feeds: int = 1) -> tuple[LabelStage, list[BackgroundFeed[LabelAnalysis]]]:
    stage = LabelStage(detector, batch, live, yield_s=0.01)
    made: list[BackgroundFeed[LabelAnalysis]] = []
    for _ in range(feeds):
        feed: BackgroundFeed[LabelAnalysis] = BackgroundFeed()
        stage.add_background(feed, beside_live)
        made.append(feed)
    return stage, made


@pytest.fixture
def stopped() -> Iterator[list[LabelStage]]:
    """Stages started by a test, stopped after it whatever happened."""
    started: list[LabelStage] = []
    yield started
    for stage in started:
        stage.stop(2.0)


def test_every_frame_goes_back_to_its_owner_in_order_at_the_floor(
        stopped: list[LabelStage]) -> None:
    detector = FakeDetector()
    stage, (feed,) = _stage(detector, Live())
    a, b = Owner("a"), Owner("b")
    feed.attach(a)
    feed.attach(b)
    a.queue(1, 2, 3)
    b.queue(7, 8)
    stage.start()
    stopped.append(stage)
    feed.notify()
    assert _until(lambda: len(a.finished) == 3 and len(b.finished) == 2)
    assert a.finished == [(1, 1.0), (2, 2.0), (3, 3.0)] and b.finished == [(7, 7.0), (8, 8.0)]
    assert {m for _, m in detector.calls} == {FLOOR}  # every launch filters at its own
    assert a.failures == b.failures == []


def test_batches_are_full_size_alone_and_beside_live_small() -> None:
    stage, (feed,) = _stage(FakeDetector(), Live(attached=False), batch=4, beside_live=1)
    owner = Owner("job")
    feed.attach(owner)
    owner.queue(*range(6))
    assert len(stage._take()) == 4
    stage._live = Live(attached=True)  # type: ignore[assignment]
    assert len(stage._take()) == 1


def test_feeds_take_turns() -> None:
    stage, (first, second) = _stage(FakeDetector(), Live(), batch=2, feeds=2)
    a, b = Owner("a"), Owner("b")
    first.attach(a)
    second.attach(b)
    a.queue(1, 2, 3, 4)
    b.queue(9)
    owners = [[o.name for o, _ in stage._take()] for _ in range(3)]
    assert owners == [["a", "a"], ["b", "a"], ["a"]]


def test_a_detection_that_raises_fails_only_its_owner_and_the_stage_goes_on(
        stopped: list[LabelStage]) -> None:
    detector = FakeDetector(broken=[2])
    stage, (feed,) = _stage(detector, Live())
    bad, good = Owner("bad"), Owner("good")
    feed.attach(bad)
    feed.attach(good)
    bad.queue(2)
    good.queue(5, 6)
    stage.start()
    stopped.append(stage)
    feed.notify()
    assert _until(lambda: len(good.finished) == 2 and bad.failures)
    assert bad.failures == ["Analysing a frame failed: RuntimeError"] and not bad.finished


def test_an_owner_whose_finish_raises_fails_alone() -> None:
    stage, _ = _stage(FakeDetector(), Live())
    broken, fine = Owner("broken", broken_finish=True), Owner("fine")
    stage.analyse([(broken, _frame(1)), (fine, _frame(2))])
    assert broken.failures == ["Analysing a frame failed: ValueError: builder bug"]
    assert fine.finished == [(2, 2.0)] and fine.failures == []


def test_without_a_pack_every_frame_fails_its_owner_with_the_pack_message() -> None:
    stage, _ = _stage(None, Live())
    owner = Owner("job")
    stage.analyse([(owner, _frame(1))])
    assert owner.failures == [LabelPackMissing().message] and owner.finished == []
    assert "streamproc models convert labels" in owner.failures[0]


def test_the_stage_waits_while_a_live_frame_waits(stopped: list[LabelStage]) -> None:
    detector = FakeDetector()
    live = Live(attached=True, waiting=True)
    stage, (feed,) = _stage(detector, live, batch=4, beside_live=1)
    owner = Owner("job")
    feed.attach(owner)
    owner.queue(1, 2, 3)
    stage.start()
    stopped.append(stage)
    asked = live.asked
    assert _until(lambda: live.asked > asked + 5)  # it keeps looking, in short waits
    assert detector.calls == []  # ... and labels nothing while live work waits
    assert stage.last_beat > time.monotonic() - 1.0  # busy yielding, never stuck
    live.waiting = False
    assert _until(lambda: len(owner.finished) == 3)


def test_between_the_frames_of_a_batch_a_waiting_live_frame_goes_first() -> None:
    detector = FakeDetector()
    live = Live()
    stage, _ = _stage(detector, live)
    owner = Owner("job")
    order: list[str] = []
    real_detect = detector.detect

    def detect(image: npt.NDArray[np.uint8], floor: float) -> tuple[Label, ...]:
        order.append("job")
        live.waiting = len(order) == 1  # a live frame arrives during the first detection
        return real_detect(image, floor)

    detector.detect = detect  # type: ignore[method-assign]
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        order.append("live")
        live.waiting = False  # the live frame was analysed meanwhile
        waits.append(seconds)
        return False

    stage.wait = wait  # type: ignore[method-assign]
    stage.analyse([(owner, _frame(1)), (owner, _frame(2))])
    assert order == ["job", "live", "job"] and waits == [0.01]
    assert [ts for ts, _ in owner.finished] == [1, 2]


def test_start_and_stop_are_bounded(stopped: list[LabelStage]) -> None:
    stage, _ = _stage(FakeDetector(), Live())
    stage.start()
    started = time.monotonic()
    assert stage.stop(timeout=5.0) is True
    assert time.monotonic() - started < 1.0  # an idle stage ends at once, not at the timeout
    stage.start()  # a supervisor's restart
    assert stage.running
    assert stage.stop(timeout=5.0) is True

    detector = FakeDetector()
    detector.release.clear()  # a model call that does not return
    stuck, (feed,) = _stage(detector, Live())
    owner = Owner("job")
    feed.attach(owner)
    owner.queue(1)
    stuck.start()
    feed.notify()
    assert detector.entered.wait(DEADLINE_S)
    started = time.monotonic()
    assert stuck.stop(timeout=0.3) is False  # abandoned, not waited for
    assert time.monotonic() - started < 1.0
    detector.release.set()
    assert stuck.join(DEADLINE_S)


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LabelStage(FakeDetector(), 0, Live())
