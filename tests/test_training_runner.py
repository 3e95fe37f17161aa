"""The training runner (daemon/training.py) and the trainer (projects/versions_training.py)
with fakes: bounded stop, nothing recorded for a training cut short, restart, failures,
stale trainings and crash loops; and the real trainer on fake features (no model):
unreadable images, a stop while heads are fitted, batches bounded in bytes."""

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
from streamproc.projects.version_result import Evaluation, TrainingOutcome
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.projects.versions_commands import (
    DeleteVersion,
    SetVersionStatus,
    TrainingAttempt,
    model_parts,
)
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
NOW = 0.5  # the runners' clock (s): 490 ms after the versions _put makes, far from stale
WINDOW_MS = (1800 + 300) * 1000  # the default deadline and the margin


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


def _runner(w: World, trainer: Any, node: str = "local", now: float = NOW,
            **more: Any) -> TrainingRunner:
    return TrainingRunner(w.store, w.ledger, lambda: trainer, ARNS, node, 0.05,
                          clock=lambda: now, **more)


def _row(w: World, name: str) -> Version:
    row = w.store.get("p", name)
    assert row is not None
    return Version.of(row)


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
                                TrainingOutcome(evaluation=Evaluation(1.0)), b"model")


def _wait(predicate: Any, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_stop_is_bounded_and_a_cut_training_records_nothing(world: World) -> None:
    _put(world, "v1")
    trainer = Blocking()
    runner = _runner(world, trainer)
    runner.start()
    assert trainer.started.wait(5)
    began = time.monotonic()
    assert runner.stop(2.0)
    assert time.monotonic() - began < 1.0
    assert _status(world, "v1") == "TRAINING_IN_PROGRESS"  # retrained on the next start
    assert _row(world, "v1").attempts == 0  # a stop counts no attempt
    done = Done()
    again = _runner(world, done, part_bytes=2)  # the model: three parts, then the status
    again.start()
    try:
        _wait(lambda: _status(world, "v1") == "TRAINING_COMPLETED")
    finally:
        again.stop(2.0)
    assert done.trained == [ARNS.version("p", "v1", 10)]
    assert world.store.model("p", "v1") == b"model"
    assert _row(world, "v1").attempts == 1


class Deaf:
    """Trains past the stop until ``release`` is set (a step that does not see the stop)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def train(self, version: Version, arn: str, stop: threading.Event) -> SetVersionStatus:
        self.started.set()
        self.release.wait(30)
        return SetVersionStatus(version.ref, VersionStatus.TRAINING_COMPLETED, "late", 2,
                                TrainingOutcome(), b"model")


def test_a_training_abandoned_by_stop_submits_nothing_after(world: World) -> None:
    """stop() gave up on it and the ledger closes next: not even the start's withdrawal."""
    _put(world, "v1")
    trainer = Deaf()
    runner = _runner(world, trainer)
    runner.start()
    assert trainer.started.wait(5)
    assert not runner.stop(0.2)  # abandoned
    trainer.release.set()
    assert runner.join(5.0)
    assert _status(world, "v1") == "TRAINING_IN_PROGRESS"  # not ended: retrained next start
    assert _row(world, "v1").attempts == 1  # its start counts: the withdrawal was not sent


LATER = NOW + 3600 + WINDOW_MS / 1000  # a restart after a downtime far past the window



def _restart_until_trained(world: World) -> Done:
    """A runner started at LATER (after a long downtime), run until v1 leaves training."""
    done = Done()
    again = _runner(world, done, now=LATER)
    again.start()
    try:
        _wait(lambda: _status(world, "v1") != "TRAINING_IN_PROGRESS")
    finally:
        again.stop(2.0)
    assert _status(world, "v1") == "TRAINING_COMPLETED", _row(world, "v1").message
    return done

def test_a_clean_stop_then_a_long_downtime_retrains_it_on_restart(world: World) -> None:
    """The review's attack7: a clean stop, an hour and more down, a restart: retrained.

    The stop withdraws the start and its window, and the version's own node never judges
    it stale: the next start is taken (attempt 1) and the training completes.
    """
    _put(world, "v1")
    trainer = Blocking()
    runner = _runner(world, trainer)
    runner.start()
    assert trainer.started.wait(5)
    assert runner.stop(2.0)
    stopped = _row(world, "v1")
    assert stopped.attempts == 0 and stopped.stale_ms is None  # nothing stale is left
    # Another node judges it by its own window from the stop (none left by the start).
    assert stopped.effective(int(LATER * 1000), None, "other") is stopped
    assert stopped.effective(int(LATER * 1000), 60_000, "other").status.value == \
        "TRAINING_FAILED"
    done = _restart_until_trained(world)
    assert done.trained == [ARNS.version("p", "v1", 10)] and _row(world, "v1").attempts == 1


def test_a_crash_then_a_long_downtime_retrains_it_and_counts_the_start(world: World) -> None:
    """As if the process died mid-training (its start recorded, never withdrawn)."""
    ref = _put(world, "v1")
    world.ledger.submit(TrainingAttempt(ref, "local", 100, WINDOW_MS, 3))
    _restart_until_trained(world)
    assert _row(world, "v1").attempts == 2


class SlowLedger:
    """The ledger, but its first model part's submit blocks until ``release`` is set."""

    def __init__(self, inner: LocalLedger) -> None:
        self._inner = inner
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.entered: list[tuple[float, str]] = []  # (monotonic time, command) per submit

    def submit(self, command: Any) -> Any:
        self.entered.append((time.monotonic(), type(command).__name__))
        if type(command).__name__ == "AddVersionModel" and not self.blocked.is_set():
            self.blocked.set()
            self.release.wait(30)
        return self._inner.submit(command)

    def post(self, command: Any) -> None:
        self._inner.post(command)


def test_stop_during_a_slow_end_returns_in_bound_and_nothing_is_submitted_after(
        world: World) -> None:
    """The trainer returned just before the stop; its end's first submit is slow."""
    _put(world, "v1")
    ledger = SlowLedger(world.ledger)
    runner = TrainingRunner(world.store, ledger, lambda: Done(), ARNS, "local", 0.05,
                            part_bytes=2, clock=lambda: NOW)  # the model: three parts
    runner.start()
    assert ledger.blocked.wait(5)
    began = time.monotonic()
    assert not runner.stop(0.2)  # the thread is in a submit: abandoned
    returned = time.monotonic()
    assert returned - began < 0.2 * 2 + 0.3  # the join's bound, then the lock's
    ledger.release.set()  # the submit under way lands; nothing after it may start
    assert runner.join(5.0)
    after = [name for at, name in ledger.entered if at >= returned]
    assert after == []
    assert [name for _, name in ledger.entered] == ["TrainingAttempt", "AddVersionModel"]
    assert _status(world, "v1") == "TRAINING_IN_PROGRESS"  # not ended: the next start retrains
    assert world.store.model("p", "v1") == b"mo"  # only the part under way


def test_model_parts_are_written_in_order_and_only_while_training(world: World) -> None:
    ref = _put(world, "v1")
    command = SetVersionStatus(ref, VersionStatus.TRAINING_COMPLETED, "ok", 2,
                               TrainingOutcome(), b"abcdefg")
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
    runner = _runner(world, done)
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

    runner = TrainingRunner(world.store, world.ledger, broken, ARNS, "local", 0.05,
                            clock=lambda: NOW)
    runner.start()
    try:
        _wait(lambda: _status(world, "v1") == "TRAINING_FAILED")
    finally:
        runner.stop(2.0)
    row = world.store.get("p", "v1")
    assert row is not None and "training is not available" in row.message


def test_a_stale_training_of_a_gone_node_fails_and_can_be_deleted(world: World) -> None:
    """A member that left, or versions that say "local" on a node now in a cluster."""
    gone, old = _put(world, "gone", node="node-b"), _put(world, "old", node="local")
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        world.ledger.submit(DeleteVersion(gone, 10 + WINDOW_MS - 1, WINDOW_MS))
    fresh = _runner(world, Done(), node="node-a", now=(10 + WINDOW_MS - 1) / 1000)
    fresh.start()
    time.sleep(0.2)  # a few polls: neither is stale yet
    assert fresh.stop(2.0)
    assert (_status(world, "gone"), _status(world, "old")) == ("TRAINING_IN_PROGRESS",) * 2
    done = Done()
    late = _runner(world, done, node="node-a", now=(10 + WINDOW_MS) / 1000)
    late.start()
    try:
        _wait(lambda: _status(world, "old") == _status(world, "gone") == "TRAINING_FAILED")
    finally:
        assert late.stop(2.0)
    assert done.trained == []  # failed, never trained here
    assert _row(world, "gone").message.startswith("training did not finish: nothing ended")
    world.ledger.submit(DeleteVersion(gone, 10 + WINDOW_MS))
    assert world.store.get("p", "gone") is None
    world.ledger.submit(DeleteVersion(old, 10 + WINDOW_MS))
    assert world.store.count("p") == 0


def test_a_training_that_crashes_its_server_is_started_three_times_at_most(
        world: World) -> None:
    ref = _put(world, "v1")
    for start in range(3):  # three starts, each ended by a crash (nothing withdrew them)
        attempt = TrainingAttempt(ref, "local", 100 + start, WINDOW_MS, 3)
        assert world.ledger.submit(attempt).attempts == start + 1
    assert _row(world, "v1").stale_ms == WINDOW_MS
    done = Done()
    runner = _runner(world, done)
    runner.start()
    try:
        _wait(lambda: _status(world, "v1") == "TRAINING_FAILED")
    finally:
        assert runner.stop(2.0)
    assert done.trained == []
    assert "started 3 times" in _row(world, "v1").message
    with pytest.raises(ResourceInUseException, match="TRAINING_FAILED"):
        world.ledger.submit(TrainingAttempt(ref, "local", 200, WINDOW_MS, 3))


def test_a_started_training_is_stale_by_its_own_window(world: World) -> None:
    """The window its start recorded, not the deleting node's: every node judges alike.

    Its own node's next start is not judged by it: a restart after any downtime retrains.
    """
    ref = _put(world, "v1")
    world.ledger.submit(TrainingAttempt(ref, "local", 1000, 5000, 3))
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        world.ledger.submit(DeleteVersion(ref, 5999, 1))  # the start's window wins
    late = world.ledger.submit(TrainingAttempt(ref, "local", 6000, WINDOW_MS, 3))
    assert late.status is VersionStatus.TRAINING_IN_PROGRESS and late.attempts == 2
    assert late.stale_ms == WINDOW_MS and late.updated_ms == 6000
    failed = late.effective(6000 + WINDOW_MS, 1, "elsewhere")  # another node: failed
    assert failed.status is VersionStatus.TRAINING_FAILED
    assert f"within {WINDOW_MS / 1000:g} s of its start" in failed.message
    assert late.effective(6000 + WINDOW_MS, 1, "local") is late  # its own: never
    world.ledger.submit(DeleteVersion(ref, 6000 + WINDOW_MS))
    assert world.store.get("p", "v1") is None


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


def _trainer(world: World, unreadable: set[str], features: Features | None = None
             ) -> VersionTrainer:
    def read(ref: ObjectRef) -> np.ndarray:
        if ref.name in unreadable:
            raise InvalidS3ObjectException("no such object")
        bright = int(ref.name.split("-")[1].split(".")[0]) % 2
        return np.full((96, 96, 3), 255 * bright, np.uint8)

    objects = ObjectStore(world.config.objects)
    return VersionTrainer(InputReader(world.datasets, objects, world.config.projects),
                          OutputWriter(objects, "7.0"), features or Features(), read,
                          lambda i: [],
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
    outcome = ok.result
    assert outcome is not None and outcome.evaluation is not None
    assert outcome.evaluation.f1 == 1.0 and outcome.manifest_summary is not None
    summary = world.root / "out" / outcome.manifest_summary.name
    assert summary.read_text().count("ERROR_INVALID_IMAGE") == 2
    stored = ok.payload()["result"]  # the keys and nesting the untyped trainer wrote
    assert list(stored) == ["ManifestSummary", "TrainingDataResult", "TestingDataResult",
                            "EvaluationResult", "AssumedThresholds",
                            "BillableTrainingTimeInSeconds", "TrainingEndTimestamp"]
    assert stored["ManifestSummary"] == {"S3Object": {"Bucket": "out",
                                                      "Name": "p/v1/manifest-summary.json"}}
    assert stored["TrainingDataResult"] == {"Input": {"Assets": []}, "Output": {"Assets": [
        {"GroundTruthManifest": {"S3Object": {"Bucket": "out",
                                              "Name": "p/v1/train/output.manifest"}}}]}}
    assert stored["TestingDataResult"]["Input"] == {"Assets": [], "AutoCreate": False}
    assert set(stored["TestingDataResult"]["Output"]) == {"Assets", "AutoCreate"}
    assert stored["EvaluationResult"]["Summary"]["S3Object"]["Name"] == \
        "p/v1/EvaluationSummary-p-v1.json"
    assert set(stored["AssumedThresholds"]) == set(outcome.thresholds or ())
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


class StopWhileFitting(Features):
    """Its second run (the test set: the last before the heads) stops ``runner`` meanwhile."""

    def __init__(self) -> None:
        self.runner: TrainingRunner | None = None
        self.calls = 0
        self.stopped: list[bool] = []

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        self.calls += 1
        runner = self.runner
        if self.calls == 2 and runner is not None:
            threading.Thread(target=lambda: self.stopped.append(runner.stop(5.0))).start()
            _wait(lambda: runner.stopping)
        return super().extract(images)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_stop_while_heads_are_fitted_stops_and_writes_nothing(world: World) -> None:
    _put(world, "v1")
    _entries(world, "TRAIN", 12)
    _entries(world, "TEST", 6)
    features = StopWhileFitting()
    trainer = _trainer(world, set(), features)  # the real trainer; its features stop it
    runner = features.runner = _runner(world, trainer)
    runner.start()
    _wait(lambda: bool(features.stopped))
    assert features.stopped == [True] and features.calls == 2
    assert _status(world, "v1") == "TRAINING_IN_PROGRESS" and _row(world, "v1").attempts == 0
    assert _files(world.root / "out") == []  # nothing written once stopped
    again = _runner(world, _trainer(world, set()))
    again.start()
    try:
        _wait(lambda: _status(world, "v1") == "TRAINING_COMPLETED")
    finally:
        assert again.stop(2.0)
    assert _row(world, "v1").attempts == 1 and _files(world.root / "out")


class Sizes(Features):
    """Records the images of each run."""

    def __init__(self) -> None:
        self.runs: list[list[tuple[int, ...]]] = []

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        self.runs.append([image.shape for image in images])
        return super().extract(images)


def test_a_batch_is_bounded_in_bytes_and_images_reach_the_model_as_decoded(
        world: World) -> None:
    _put(world, "v1")
    _entries(world, "TRAIN", 12)
    _entries(world, "TEST", 6)
    sizes = Sizes()
    objects = ObjectStore(world.config.objects)

    def read(ref: ObjectRef) -> np.ndarray:
        bright = int(ref.name.split("-")[1].split(".")[0]) % 2
        return np.full((100, 100, 3), 255 * bright, np.uint8)  # 30,000 bytes each

    trainer = VersionTrainer(InputReader(world.datasets, objects, world.config.projects),
                             OutputWriter(objects, "7.0"), sizes, read, lambda i: [],
                             world.config.projects, batch_bytes=100_000)
    done = trainer.train(_version(world), "arn", threading.Event())
    assert done.status is VersionStatus.TRAINING_COMPLETED, done.message
    assert [len(run) for run in sizes.runs] == [4, 4, 4, 4, 2]  # 12 train, then 6 test
    assert {shape for run in sizes.runs for shape in run} == {(100, 100, 3)}
