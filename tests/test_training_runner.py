"""The training runner (daemon/training.py) and the trainer (projects/versions_training.py)
with fakes: bounded stop, nothing recorded for a training cut short, restart, failures; and
the trainer's handling of unreadable images, on fake features (no model)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamproc.config import load_config
from streamproc.daemon.training import TrainingRunner
from streamproc.errors import (
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceInUseException,
)
from streamproc.ledger import Appliers, LocalLedger
from streamproc.moderation.features import FeatureBatch
from streamproc.projects.datasets import Entry
from streamproc.projects.types import Feature
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.projects.versions_commands import SetVersionStatus, model_parts
from streamproc.projects.versions_inputs import InputReader, TrainingFailure
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
    ledger: LocalLedger
    root: Path
    config: Any


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    (tmp_path / "objects" / "out").mkdir(parents=True)
    config = load_config(None, {"objects.local_root": str(tmp_path / "objects"),
                                "projects.training_min_per_class": 4})
    db = Database(tmp_path / "db.sqlite")
    db.open()
    appliers = Appliers()
    projects = ProjectStore(db)
    projects.create(StoredProject("p", ARNS.project("p", 1), 1, "CUSTOM_LABELS", None,
                                  "CREATED"))
    store = VersionStore(db)
    VersionRules(store, projects, TagStore(db), config).register(appliers)
    yield World(store, DatasetStore(db), LocalLedger(appliers), tmp_path / "objects", config)
    db.close()


def _put(w: World, name: str, node: str = "local") -> VersionRef:
    w.store.put(StoredVersion("p", 1, name, 10, "CUSTOM_LABELS", "TRAINING_IN_PROGRESS", "",
                              10, node, {"OutputConfig": {"S3Bucket": "out"}}, {}, None, None))
    return VersionRef("p", name, 10)


def _status(w: World, name: str) -> str:
    row = w.store.get("p", name)
    assert row is not None
    return row.status


class Blocking:
    """Trains until stopped (a long training)."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def train(self, version: Version, arn: str, stop: threading.Event) -> SetVersionStatus:
        self.started.set()
        stop.wait(30)
        return SetVersionStatus(version.ref, VersionStatus.TRAINING_FAILED, "stopped", 1)


class Done:
    """Completes every version at once; raises for those named ``bad``."""

    def __init__(self) -> None:
        self.trained: list[str] = []

    def train(self, version: Version, arn: str, stop: threading.Event) -> SetVersionStatus:
        self.trained.append(arn)
        if version.ref.name.startswith("bad"):
            msg = "a bug"
            raise RuntimeError(msg)
        return SetVersionStatus(version.ref, VersionStatus.TRAINING_COMPLETED, "ok", 2,
                                {"EvaluationResult": {"F1Score": 1.0}}, b"model")


def _wait(predicate: Any, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_stop_is_bounded_and_a_cut_training_records_nothing(world: World) -> None:
    _put(world, "v1")
    trainer = Blocking()
    runner = TrainingRunner(world.store, world.ledger, lambda: trainer, ARNS, "local", 0.05)
    runner.start()
    assert trainer.started.wait(5)
    began = time.monotonic()
    assert runner.stop(2.0)
    assert time.monotonic() - began < 1.0
    assert _status(world, "v1") == "TRAINING_IN_PROGRESS"  # retrained on the next start
    done = Done()
    again = TrainingRunner(world.store, world.ledger, lambda: done, ARNS, "local", 0.05,
                           part_bytes=2)  # the model goes in three parts, then the status
    again.start()
    try:
        _wait(lambda: _status(world, "v1") == "TRAINING_COMPLETED")
    finally:
        again.stop(2.0)
    assert done.trained == [ARNS.version("p", "v1", 10)]
    assert world.store.model("p", "v1") == b"model"


def test_model_parts_are_written_in_order_and_only_while_training(world: World) -> None:
    ref = _put(world, "v1")
    command = SetVersionStatus(ref, VersionStatus.TRAINING_COMPLETED, "ok", 2, {}, b"abcdefg")
    parts, end = model_parts(command, 3)
    assert [p.data for p in parts] == [b"abc", b"def", b"g"] and end.model is None
    with pytest.raises(InvalidParameterException, match="needs its model"):
        world.ledger.submit(end)
    with pytest.raises(InvalidParameterException, match="out of order"):
        world.ledger.submit(parts[1])
    for part in parts:
        world.ledger.submit(part)
    world.ledger.submit(end)
    assert world.store.model("p", "v1") == b"abcdefg"
    with pytest.raises(ResourceInUseException, match="only in training"):
        world.ledger.submit(parts[0])
    assert model_parts(command, 7) == ([], command)


def test_only_this_nodes_versions_are_trained_and_a_bug_fails_one(world: World) -> None:
    _put(world, "bad1")
    _put(world, "theirs", node="node-b")
    done = Done()
    runner = TrainingRunner(world.store, world.ledger, lambda: done, ARNS, "local", 0.05)
    runner.start()
    try:
        _wait(lambda: _status(world, "bad1") == "TRAINING_FAILED")
        _put(world, "v2")
        runner.wake()
        _wait(lambda: _status(world, "v2") == "TRAINING_COMPLETED")
    finally:
        assert runner.stop(2.0)
    row = world.store.get("p", "bad1")
    assert row is not None and row.message == "The training failed: a server error"
    assert _status(world, "theirs") == "TRAINING_IN_PROGRESS"


def test_a_server_without_a_backbone_fails_versions_with_the_reason(world: World) -> None:
    _put(world, "v1")

    def broken() -> Done:
        msg = "moderation model 'open_nsfw' is not an open_nsfw model"
        raise ValueError(msg)

    runner = TrainingRunner(world.store, world.ledger, broken, ARNS, "local", 0.05)
    runner.start()
    try:
        _wait(lambda: _status(world, "v1") == "TRAINING_FAILED")
    finally:
        runner.stop(2.0)
    row = world.store.get("p", "v1")
    assert row is not None and "training is not available" in row.message


class Features:
    """Two separable clusters: images whose first pixel is 255 vs 0."""

    identity = "fake:1"

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        rng = np.random.default_rng(len(images))
        rows = [np.full(8, float(image[0, 0, 0] > 0)) + rng.normal(0, 0.1, 8)
                for image in images]
        return FeatureBatch(np.array(rows, np.float32), np.zeros(len(images)))


def _entries(world: World, kind: str, count: int) -> None:
    world.datasets.put(StoredDataset("p", 1, kind, 5, 5, "CREATE_COMPLETE", "", "SUCCESS"))
    rows = []
    for n in range(count):
        name = "a" if n % 2 else "b"
        ref = f"s3://img/{kind}-{n}.jpg"
        rows.append(Entry(f'{{"source-ref":"{ref}"}}', ref, (name,), True, False).stored())
    world.datasets.add("p", kind, rows)


def _trainer(world: World, unreadable: set[str]) -> VersionTrainer:
    def read(ref: ObjectRef) -> np.ndarray:
        if ref.name in unreadable:
            raise InvalidS3ObjectException("no such object")
        bright = int(ref.name.split("-")[1].split(".")[0]) % 2
        return np.full((96, 96, 3), 255 * bright, np.uint8)

    objects = ObjectStore(world.config.objects)
    return VersionTrainer(InputReader(world.datasets, objects, world.config.projects),
                          OutputWriter(objects, "7.0"), Features(), read, lambda i: [],
                          world.config.projects)


def _version(world: World) -> Version:
    row = world.store.get("p", "v1")
    assert row is not None
    return Version.of(row)


def test_unreadable_images_are_counted_and_fatal_only_when_too_few_remain(
        world: World) -> None:
    _put(world, "v1")
    _entries(world, "TRAIN", 12)
    _entries(world, "TEST", 6)
    stop = threading.Event()
    ok = _trainer(world, {"TRAIN-0.jpg", "TRAIN-1.jpg"}).train(_version(world), "arn", stop)
    assert ok.status is VersionStatus.TRAINING_COMPLETED, ok.message
    assert ok.result is not None and ok.result["EvaluationResult"]["F1Score"] == 1.0
    summary = world.root / "out" / ok.result["ManifestSummary"]["S3Object"]["Name"]
    assert summary.read_text().count("ERROR_INVALID_IMAGE") == 2
    assert ok.model is not None and b"fake:1" in ok.model
    many = {f"TRAIN-{n}.jpg" for n in range(6)}
    failed = _trainer(world, many).train(_version(world), "arn", stop)
    assert failed.status is VersionStatus.TRAINING_FAILED
    assert "too few usable images" in failed.message and failed.model is None


def test_a_custom_labels_version_of_one_class_fails(world: World) -> None:
    _put(world, "v1")
    _entries(world, "TRAIN", 12)
    _entries(world, "TEST", 6)
    odd = {f"TRAIN-{n}.jpg" for n in range(0, 12, 2)}  # every "b" image unreadable
    failed = _trainer(world, odd).train(_version(world), "arn", threading.Event())
    assert failed.status is VersionStatus.TRAINING_FAILED
    assert "two classes" in failed.message
    assert Feature.CUSTOM_LABELS.value == _version(world).feature.value


def _adapter(world: World, manifest: dict[str, str]) -> Version:
    return Version(VersionRef("p", "a", 1), 1, Feature.CONTENT_MODERATION,
                   VersionStatus.TRAINING_IN_PROGRESS, "", 1, "local",
                   {"OutputConfig": {"S3Bucket": "out"}, "TrainingData": {"Assets": [
                       {"GroundTruthManifest": {"S3Object": manifest}}]}}, {})


def test_labels_outside_the_taxonomy_and_refused_buckets_fail_with_the_reason(
        tmp_path: Path) -> None:
    root = tmp_path / "objects"
    (root / "img").mkdir(parents=True)
    (root / "secret").mkdir()
    config = load_config(None, {"objects.local_root": str(root), "objects.buckets": ["img"]})
    lines = [{"source-ref": f"s3://img/{n}.jpg", "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": "Cute Kittens" if n < 5 else "Violence"}]}}
        for n in range(10)]
    (root / "img" / "m.manifest").write_text("".join(f"{json.dumps(x)}\n" for x in lines))
    db = Database(tmp_path / "db.sqlite")
    db.open()
    try:
        reader = InputReader(DatasetStore(db), ObjectStore(config.objects), config.projects)
        world = World(VersionStore(db), DatasetStore(db), LocalLedger(Appliers()), root,
                      config)
        with pytest.raises(TrainingFailure, match="ERROR_UNKNOWN_MODERATION_LABEL"):
            reader.gather(_adapter(world, {"Bucket": "img", "Name": "m.manifest"}),
                          threading.Event())
        with pytest.raises(TrainingFailure, match="objects.buckets"):
            reader.gather(_adapter(world, {"Bucket": "secret", "Name": "m.manifest"}),
                          threading.Event())
        refs = [{**x, "source-ref": f"s3://secret/{n}.jpg"} for n, x in enumerate(lines[5:])]
        (root / "img" / "s.manifest").write_text("".join(f"{json.dumps(x)}\n" for x in refs))
        with pytest.raises(TrainingFailure, match="ERROR_INVALID_PERMISSIONS_IMAGES_S3_BUCKET"):
            reader.gather(_adapter(world, {"Bucket": "img", "Name": "s.manifest"}),
                          threading.Event())
    finally:
        db.close()
