"""The moderation stage over a fake moderator: batches, owners, failures, live first, stop.

Model-free (unit tier): the stage's thread runs against :class:`FakeModerator` and owners
that record what they are handed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from fakes import live_session
from prometheus_client import CollectorRegistry

from streamproc.dataplane.analyzer import Analyzer
from streamproc.dataplane.live.source import VideoFrame
from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.regions import Region
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.jobrun import JobFrames, JobPlan
from streamproc.dataplane.stored.moderation_stage import ModerationStage
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import IouTracker
from streamproc.metrics import JobMetrics, JobSensor
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel
from streamproc.tools.clusterkit import poll

DEADLINE_S = 10.0


def _until(check: Callable[[], bool], timeout: float = DEADLINE_S) -> bool:
    return bool(poll(check, timeout, 0.01))


def _frame(value: int) -> StoredFrame:
    """An image whose every pixel is ``value``: the fake's confidence names the image."""
    return StoredFrame(np.full((32, 32, 3), value, np.uint8), value, value / 1000)


def _analysis(image: np.ndarray) -> ModerationAnalysis:
    return ModerationAnalysis((ModerationLabel("Weapons", "Violence", 2,
                                               float(image[0, 0, 0])),))


class FakeModerator:
    """Records each call's batch size; raises on the calls listed in ``broken``."""

    model_version = "7.0-fake"
    served = ("Weapons", "Violence")

    def __init__(self, broken: Sequence[int] = (), short: bool = False) -> None:
        self.calls: list[int] = []
        self.broken = set(broken)
        self.short = short  # hand back one analysis too few
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        self.entered.set()
        self.release.wait(30)
        call = len(self.calls)
        self.calls.append(len(images))
        if call in self.broken:
            raise RuntimeError("model error")
        out = [_analysis(image) for image in images]
        return out[:-1] if self.short else out


class Owner:
    """A job launch's side as the stage sees it; records finishes and failures."""

    def __init__(self, name: str, broken_finish: bool = False) -> None:
        self.name = name
        self.frames: BoundedQueue[StoredFrame] = BoundedQueue(64, DropPolicy.BLOCK)
        self.regions: tuple[Region, ...] = ()
        self.tracker = IouTracker()
        self.embed_interval: float | None = None
        self.finished: list[tuple[int, float]] = []  # (timestamp, confidence handed back)
        self.failures: list[str] = []
        self._broken = broken_finish

    def finish(self, frame: StoredFrame, analysis: ModerationAnalysis) -> None:
        if self._broken:
            raise ValueError("builder bug")
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


def _stage(moderator: FakeModerator, live: Live, batch: int = 4, beside_live: int = 1,
           feeds: int = 1) -> tuple[ModerationStage, list[BackgroundFeed[ModerationAnalysis]]]:
    stage = ModerationStage(moderator, batch, live, yield_s=0.01)
    made: list[BackgroundFeed[ModerationAnalysis]] = []
    for _ in range(feeds):
        feed: BackgroundFeed[ModerationAnalysis] = BackgroundFeed()
        stage.add_background(feed, beside_live)
        made.append(feed)
    return stage, made


@pytest.fixture
def stopped() -> Any:
    """Stages started by a test, stopped after it whatever happened."""
    started: list[ModerationStage] = []
    yield started
    for stage in started:
        stage.stop(2.0)


def test_batches_of_the_configured_size_and_every_image_back_to_its_owner(stopped: Any) -> None:
    moderator = FakeModerator()
    stage, (feed,) = _stage(moderator, Live(), batch=4)
    one, two = Owner("one"), Owner("two")
    for owner, base in ((one, 10), (two, 100)):
        feed.attach(owner)
        owner.queue(*range(base, base + 6))
    stage.start()
    stopped.append(stage)
    assert _until(lambda: len(one.finished) + len(two.finished) == 12)
    assert moderator.calls == [4, 4, 4]  # one model call per batch, never one per image
    # Each owner got its own images back, in order, with the analysis of that image.
    assert one.finished == [(v, float(v)) for v in range(10, 16)]
    assert two.finished == [(v, float(v)) for v in range(100, 106)]
    assert one.failures == two.failures == []


def test_a_notify_wakes_the_idle_stage(stopped: Any) -> None:
    moderator = FakeModerator()
    stage, (feed,) = _stage(moderator, Live())
    owner = Owner("late")
    feed.attach(owner)
    stage.start()
    stopped.append(stage)
    time.sleep(0.1)  # idle, nothing queued: no call
    assert moderator.calls == []
    owner.queue(7)
    feed.notify()
    assert _until(lambda: owner.finished == [(7, 7.0)])


def test_feeds_take_turns(stopped: Any) -> None:
    moderator = FakeModerator()
    stage, (videos, images) = _stage(moderator, Live(), batch=2, feeds=2)
    a, b = Owner("video"), Owner("manifest")
    videos.attach(a)
    images.attach(b)
    a.queue(*range(1, 7))
    b.queue(*range(101, 107))
    batches: list[list[str]] = []
    for _ in range(3):
        taken = stage._take()
        batches.append([o.name for o, _ in taken])
        stage.analyse(taken)
    assert batches == [["video", "video"], ["manifest", "manifest"], ["video", "video"]]


def test_a_batch_that_raises_fails_its_owners_once_and_the_stage_goes_on(stopped: Any) -> None:
    moderator = FakeModerator(broken=[0])
    moderator.release.clear()  # hold the first call until every image is queued
    stage, (feed,) = _stage(moderator, Live(), batch=4)
    one, two, later = Owner("one"), Owner("two"), Owner("later")
    for owner in (one, two):
        feed.attach(owner)
    one.queue(1, 2)
    two.queue(3, 4)
    stage.start()
    stopped.append(stage)
    assert moderator.entered.wait(DEADLINE_S)
    feed.attach(later)
    later.queue(9)
    moderator.release.set()
    assert _until(lambda: later.finished == [(9, 9.0)])  # the next batch is analysed
    assert one.failures == two.failures == ["Analysing a frame failed: RuntimeError"]
    assert one.finished == two.finished == []
    assert later.failures == []
    assert stage.running and stage.error is None


def test_an_answer_of_the_wrong_length_fails_the_batch() -> None:
    stage, _ = _stage(FakeModerator(short=True), Live())
    owner = Owner("o")
    stage.analyse([(owner, _frame(1)), (owner, _frame(2))])
    assert owner.finished == []
    assert owner.failures == ["Analysing a frame failed: RuntimeError"]


def test_an_owner_whose_finish_raises_fails_alone() -> None:
    stage, _ = _stage(FakeModerator(), Live())
    bad, good = Owner("bad", broken_finish=True), Owner("good")
    stage.analyse([(bad, _frame(1)), (good, _frame(2))])
    assert bad.failures == ["Analysing a frame failed: ValueError: builder bug"]
    assert good.finished == [(2, 2.0)] and good.failures == []


class Tuned(FakeModerator):
    """An adapter's moderator: confidence is the pixel value plus 1000 (so it is told apart)."""

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        base = super().analyse_many(images)
        return [ModerationAnalysis((ModerationLabel("Weapons", "Violence", 2,
                                                    a.labels[0].confidence + 1000),))
                for a in base]


def _tuned_owner(name: str, moderator: FakeModerator) -> Owner:
    owner = Owner(name)
    owner.moderator = moderator  # type: ignore[attr-defined]  # a launch with an adapter
    return owner


def test_a_batch_is_split_by_moderator_and_each_owner_keeps_its_order() -> None:
    engine, tuned, other = FakeModerator(), Tuned(), Tuned()
    stage, _ = _stage(engine, Live())
    plain, adapted, second = Owner("plain"), _tuned_owner("a", tuned), _tuned_owner("b", other)
    batch: list[Any] = [(plain, _frame(1)), (adapted, _frame(2)), (plain, _frame(3)),
             (second, _frame(4)), (adapted, _frame(5))]
    stage.analyse(batch)
    assert (engine.calls, tuned.calls, other.calls) == ([2], [2], [1])  # one call per group
    assert plain.finished == [(1, 1.0), (3, 3.0)]
    assert adapted.finished == [(2, 1002.0), (5, 1005.0)]
    assert second.finished == [(4, 1004.0)]


def test_an_adapter_that_raises_fails_only_its_owners() -> None:
    engine, broken = FakeModerator(), Tuned(broken=[0])
    stage, _ = _stage(engine, Live())
    plain, adapted = Owner("plain"), _tuned_owner("a", broken)
    stage.analyse([(adapted, _frame(1)), (plain, _frame(2)), (adapted, _frame(3))])
    assert adapted.failures == ["Analysing a frame failed: RuntimeError"]
    assert adapted.finished == []
    assert plain.finished == [(2, 2.0)] and plain.failures == []


def test_owners_with_and_without_an_adapter_share_the_running_stage(stopped: Any) -> None:
    engine, tuned = FakeModerator(), Tuned()
    stage, (feed,) = _stage(engine, Live(), batch=4)
    plain, adapted = Owner("plain"), _tuned_owner("a", tuned)
    for owner, base in ((plain, 10), (adapted, 100)):
        feed.attach(owner)
        owner.queue(*range(base, base + 6))
    stage.start()
    stopped.append(stage)
    assert _until(lambda: len(plain.finished) + len(adapted.finished) == 12)
    assert plain.finished == [(v, float(v)) for v in range(10, 16)]
    assert adapted.finished == [(v, v + 1000.0) for v in range(100, 106)]
    assert sum(engine.calls) == 6 and sum(tuned.calls) == 6


def test_job_frames_get_their_results_through_the_builder() -> None:
    """The real owner of a job launch (JobFrames) takes a ModerationAnalysis."""

    class Builder:
        needs_embeddings = False

        def build(self, frame: StoredFrame, analysis: ModerationAnalysis) -> list[Any]:
            return [(frame.timestamp_ms, [label.name for label in analysis.labels])]

    sensor = JobSensor(JobMetrics.create(CollectorRegistry()), "moderation", "j")
    plan = JobPlan("j", 1, "moderation", None, None)  # type: ignore[arg-type]
    owner: JobFrames[ModerationAnalysis] = JobFrames(plan, Builder(), 4, sensor)
    stage, _ = _stage(FakeModerator(), Live())
    stage.analyse([(owner, _frame(5))])
    assert owner.take(1) == [(5, ["Weapons"])]
    assert owner.failure is None


def test_the_stage_waits_while_a_live_frame_waits(stopped: Any) -> None:
    moderator = FakeModerator()
    live = Live(attached=True, waiting=True)
    stage, (feed,) = _stage(moderator, live, batch=4, beside_live=1)
    owner = Owner("job")
    feed.attach(owner)
    owner.queue(1, 2, 3)
    stage.start()
    stopped.append(stage)
    asked = live.asked
    assert _until(lambda: live.asked > asked + 5)  # it keeps looking, in short waits
    assert moderator.calls == []  # ... and takes nothing while live work waits
    assert stage.last_beat > time.monotonic() - 1.0  # busy yielding, never stuck
    live.waiting = False
    assert _until(lambda: len(owner.finished) == 3)
    assert moderator.calls == [1, 1, 1]  # beside attached live sessions: beside_live each


def test_without_live_sessions_batches_are_full_size() -> None:
    stage, (feed,) = _stage(FakeModerator(), Live(attached=False), batch=4, beside_live=1)
    owner = Owner("job")
    feed.attach(owner)
    owner.queue(*range(6))
    assert len(stage._take()) == 4


def test_start_and_stop_are_bounded(stopped: Any) -> None:
    stage, _ = _stage(FakeModerator(), Live())
    stage.start()
    started = time.monotonic()
    assert stage.stop(timeout=5.0) is True
    assert time.monotonic() - started < 1.0  # an idle stage ends at once, not at the timeout
    assert not stage.running
    stage.start()  # a supervisor's restart
    assert stage.running
    assert stage.stop(timeout=5.0) is True

    moderator = FakeModerator()
    moderator.release.clear()  # a model call that does not return
    stuck, (feed,) = _stage(moderator, Live())
    owner = Owner("job")
    feed.attach(owner)
    owner.queue(1)
    stuck.start()
    assert moderator.entered.wait(DEADLINE_S)
    started = time.monotonic()
    assert stuck.stop(timeout=0.3) is False  # abandoned, not waited for
    assert time.monotonic() - started < 1.0
    moderator.release.set()
    assert stuck.join(DEADLINE_S)


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ModerationStage(FakeModerator(), 0, Live())


def _live_frame() -> VideoFrame:
    return VideoFrame(np.zeros((64, 64, 3), np.uint8), "1", 0.0, 0.0, 0.0, time.monotonic())


class SlowDetector:
    """Finds nothing; holds each call until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def detect_many(self, images: list[np.ndarray]) -> list[list[Any]]:
        self.entered.set()
        self.release.wait(30)
        return [[] for _ in images]

    def embed_many(self, items: list[Any]) -> None:
        pass


def test_the_face_stage_says_when_live_frames_wait() -> None:
    detector = SlowDetector()
    analyzer = Analyzer(detector, None, None, batch_frames=8, max_matches=1,  # type: ignore[arg-type]
                        emit_empty=False, wake=threading.Event())
    assert not analyzer.live_attached() and not analyzer.live_waiting()
    cam = live_session("cam")
    analyzer.attach(cam)
    assert analyzer.live_attached() and not analyzer.live_waiting()  # attached, nothing queued
    cam.frames.put(_live_frame())
    assert analyzer.live_waiting()
    cam.active.clear()
    assert not analyzer.live_waiting()  # a halted session's frames are not live work
    cam.active.set()
    analyzer.start()
    try:
        assert detector.entered.wait(DEADLINE_S)
        assert len(cam.frames) == 0
        assert analyzer.live_waiting()  # dequeued and being analysed: still live work
        detector.release.set()
        assert _until(lambda: not analyzer.live_waiting())  # the batch is done
    finally:
        detector.release.set()
        assert analyzer.stop(5.0)
    analyzer.detach(cam)
    assert not analyzer.live_attached()
