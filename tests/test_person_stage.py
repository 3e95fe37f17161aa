"""The person stage over fakes: persons per frame, faces per batch, failures, live first.

Model-free: the stage's thread runs against a fake pack, a fake face finder and owners that
record what they are handed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from test_moderation_stage import Live

from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.regions import Region
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.person_stage import PersonAnalysis, PersonStage
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import IouTracker
from streamproc.faces.types import Face
from streamproc.labels.types import Box, Instance, Label
from streamproc.tools.clusterkit import poll


def _until(check: Callable[[], bool]) -> bool:
    return bool(poll(check, 10.0, 0.01))


def _frame(value: int) -> StoredFrame:
    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 2] = value  # red in BGR: the pack must see it in channel 0 (RGB)
    return StoredFrame(image, value, value / 1000)


class Pack:
    """Finds one person per frame, its confidence the frame's red value; a Car too."""

    model_version = "fake-1"

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken

    def detect(self, image: np.ndarray, min_confidence: float) -> tuple[Label, ...]:
        if self.broken:
            raise RuntimeError("model error")
        red = float(image[0, 0, 0])
        return (Label("Car", 99.0, (Instance(Box(0, 0, 1, 1), 99.0),)),
                Label("Person", red, (Instance(Box(0.1, 0.1, 0.2, 0.5), red),)))


class Faces:
    """One face per image; records each call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def detect_many(self, images: list[np.ndarray], max_faces: int = 0) -> list[list[Face]]:
        self.calls.append(len(images))
        return [[Face(np.array([1, 1, 5, 5], np.float32), 0.9, np.zeros((5, 2)))]
                for _ in images]


class Owner:
    def __init__(self) -> None:
        self.name = "job"
        self.frames: BoundedQueue[StoredFrame] = BoundedQueue(64, DropPolicy.BLOCK)
        self.regions: tuple[Region, ...] = ()
        self.tracker = IouTracker()
        self.embed_interval: float | None = None
        self.finished: list[tuple[int, PersonAnalysis]] = []
        self.failures: list[str] = []

    def finish(self, frame: StoredFrame, analysis: PersonAnalysis) -> None:
        self.finished.append((frame.timestamp_ms, analysis))

    def fail(self, reason: str) -> None:
        self.failures.append(reason)


@pytest.fixture
def run() -> Iterator[Callable[..., tuple[Owner, Faces]]]:
    stages: list[PersonStage] = []

    def start(pack: Pack | None, frames: int = 6, live: Live | None = None
              ) -> tuple[Owner, Faces]:
        faces = Faces()
        stage = PersonStage(pack, faces, 4, live or Live(), yield_s=0.01)
        feed: BackgroundFeed[PersonAnalysis] = BackgroundFeed()
        stage.add_background(feed, 1)
        owner = Owner()
        feed.attach(owner)
        for value in range(10, 10 + frames):
            assert owner.frames.put(_frame(value))
        stage.start()
        stages.append(stage)
        return owner, faces

    yield start
    for stage in stages:
        stage.stop(2.0)


def test_each_frame_gets_its_persons_and_faces_in_order(run: Callable[..., tuple[Owner, Faces]]
                                                         ) -> None:
    owner, faces = run(Pack())
    assert _until(lambda: len(owner.finished) == 6)
    assert faces.calls == [4, 2]  # one face-detector call per batch
    assert [ts for ts, _ in owner.finished] == list(range(10, 16))
    for ts, analysis in owner.finished:
        assert [p.confidence for p in analysis.persons] == [float(ts)]  # RGB, Person only
        assert len(analysis.faces) == 1 and analysis.found == 1
    assert owner.failures == []


def test_no_pack_fails_every_frame_with_label_pack_missing(
        run: Callable[..., tuple[Owner, Faces]]) -> None:
    owner, faces = run(None, frames=2)
    assert _until(lambda: len(owner.failures) == 2)
    assert "no label pack" in owner.failures[0] and owner.finished == [] and faces.calls == []


def test_a_model_error_fails_the_owner_and_the_stage_goes_on(
        run: Callable[..., tuple[Owner, Faces]]) -> None:
    owner, _ = run(Pack(broken=True), frames=5)
    assert _until(lambda: len(owner.failures) == 2)  # two batches, both lost
    assert owner.failures[0] == "Analysing a frame failed: RuntimeError"


def test_live_frames_go_first(run: Callable[..., tuple[Owner, Faces]]) -> None:
    live = Live(waiting=True)
    owner, faces = run(Pack(), frames=2, live=live)
    assert _until(lambda: live.asked > 5)
    assert owner.finished == [] and faces.calls == []
    live.waiting = False
    assert _until(lambda: len(owner.finished) == 2)
