"""The trainer behind the live stream processors, and its calibration groups, with fakes.

The trainer (projects/versions_training.py) makes no model call while the live side says a
live frame waits, batches are small while a live session is attached, a stop ends the wait,
and train_heads is given the groups :func:`calibration_group` derives. No timing is
asserted: the fake live load is driven by the calls made, not by the clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamproc.config import load_config
from streamproc.ledger import Appliers
from streamproc.moderation.features import FeatureBatch
from streamproc.projects.datasets import Entry
from streamproc.projects.versions import Version, VersionStatus
from streamproc.projects.versions_inputs import InputReader
from streamproc.projects.versions_outputs import OutputWriter
from streamproc.projects.versions_rules import VersionRules
from streamproc.projects.versions_training import VersionTrainer
from streamproc.rekognition.constants import Arns
from streamproc.storage.datasets import DatasetStore, StoredDataset
from streamproc.storage.db import Database
from streamproc.storage.object_keys import ObjectRef
from streamproc.storage.objects import ObjectStore
from streamproc.storage.projects import ProjectStore, StoredProject
from streamproc.storage.tags import TagStore
from streamproc.storage.versions import StoredVersion, VersionStore

ARNS = Arns("us-east-1", "000000000000")


@dataclass
class World:
    store: VersionStore
    datasets: DatasetStore
    config: Any


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    (tmp_path / "objects" / "out").mkdir(parents=True)
    config = load_config(None, {"objects.local_root": str(tmp_path / "objects"),
                                "projects.training_min_per_class": 4})
    db = Database(tmp_path / "db.sqlite")
    db.open()
    projects = ProjectStore(db)
    projects.create(StoredProject("p", ARNS.project("p", 1), 1, "CUSTOM_LABELS", None,
                                  "CREATED"))
    store = VersionStore(db)
    VersionRules(store, projects, TagStore(db), config).register(Appliers())
    store.put(StoredVersion("p", 1, "v1", 10, "CUSTOM_LABELS", "TRAINING_IN_PROGRESS", "",
                            10, "local", {"OutputConfig": {"S3Bucket": "out"}}, {}, None, None))
    datasets = DatasetStore(db)
    for kind, count in (("TRAIN", 24), ("TEST", 8)):
        datasets.put(StoredDataset("p", 1, kind, 5, 5, "CREATE_COMPLETE", "", "SUCCESS"))
        rows = []
        for n in range(count):
            ref = f"s3://img/{kind}-{n}.jpg"
            rows.append(Entry(f'{{"source-ref":"{ref}"}}', ref, ("a" if n % 2 else "b",),
                              True, False).stored())
        datasets.add("p", kind, rows)
    yield World(store, datasets, config)
    db.close()


@dataclass
class Live:
    """A live side that says a frame waits for the next ``busy`` asks, then none."""

    busy: int
    attached: bool = False
    asks: int = 0
    log: list[str] = field(default_factory=list)  # "live" per busy answer, "model" per call

    def live_attached(self) -> bool:
        return self.attached

    def live_waiting(self) -> bool:
        self.asks += 1
        if self.busy > 0:
            self.busy -= 1
            self.log.append("live")
            return True
        return False


class Features:
    """Two separable clusters (first pixel 255 vs 0); logs each model call in ``live``."""

    identity = "fake:1"

    def __init__(self, live: Live) -> None:
        self.live = live
        self.sizes: list[int] = []

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        self.live.log.append("model")
        self.sizes.append(len(images))
        rng = np.random.default_rng(len(images))
        rows = [np.full(8, float(image[0, 0, 0] > 0)) + rng.normal(0, 0.1, 8)
                for image in images]
        return FeatureBatch(np.array(rows, np.float32), np.zeros(len(images)))


def _read(ref: ObjectRef) -> np.ndarray:
    bright = int(ref.name.split("-")[1].split(".")[0]) % 2
    return np.full((32, 32, 3), 255 * bright, np.uint8)


def _trainer(world: World, live: Live, features: Features,
             batch: int = 100) -> VersionTrainer:
    objects = ObjectStore(world.config.objects)
    config = world.config.projects.model_copy(update={"training_batch": batch})
    return VersionTrainer(InputReader(world.datasets, objects, config),
                          OutputWriter(objects, "7.0"), features, _read, lambda i: [],
                          config, live=live, beside_live=3, yield_s=0.0)


def _version(world: World) -> Version:
    row = world.store.get("p", "v1")
    assert row is not None
    return Version.of(row)


def test_no_model_call_runs_while_a_live_frame_waits(world: World) -> None:
    live = Live(busy=5)
    features = Features(live)
    done = _trainer(world, live, features).train(_version(world), "arn", threading.Event())
    assert done.status is VersionStatus.TRAINING_COMPLETED, done.message
    # All five "waiting" answers come before the first model call; each call asks first.
    assert live.log[:6] == ["live"] * 5 + ["model"]
    assert live.asks == 5 + len(features.sizes)


def test_batches_are_small_while_a_live_session_is_attached(world: World) -> None:
    quiet, busy = Live(busy=0), Live(busy=0, attached=True)
    alone, beside = Features(quiet), Features(busy)
    for live, features in ((quiet, alone), (busy, beside)):
        done = _trainer(world, live, features, batch=8).train(_version(world), "arn",
                                                              threading.Event())
        assert done.status is VersionStatus.TRAINING_COMPLETED, done.message
    assert alone.sizes == [8, 8, 8, 8]  # 24 train, then 8 test
    assert max(beside.sizes) == 3 and sum(beside.sizes) == 32


def test_a_stop_ends_the_wait_for_live_frames(world: World) -> None:
    from streamproc.training import TrainingStopped

    stop = threading.Event()

    class Endless(Live):
        def live_waiting(self) -> bool:
            if self.asks == 3:
                stop.set()  # the runner stops while live frames keep coming
            super().live_waiting()
            return True

    live = Endless(busy=0)
    features = Features(live)
    with pytest.raises(TrainingStopped):
        _trainer(world, live, features).train(_version(world), "arn", stop)
    assert features.sizes == []  # no model call was made


def test_the_server_trains_with_the_derived_calibration_groups(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamproc.projects.versions_training as training

    seen: list[Sequence[object] | None] = []
    real = training.train_classifier

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("groups"))
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_classifier", spy)
    live = Live(busy=0)
    done = _trainer(world, live, Features(live)).train(_version(world), "arn",
                                                       threading.Event())
    assert done.status is VersionStatus.TRAINING_COMPLETED, done.message
    # TRAIN-0 .. TRAIN-23: three blocks of eight numbered images.
    assert seen == [[f"ref:s3://img/TRAIN-#{n // 8}.jpg" for n in range(24)]]
