"""Project version rules (projects/versions_rules.py) and their service, over a real SQLite
store behind a local ledger; no daemon, no model: the status moves, the deletes refused and
allowed, copies, policies and the wire parsing of version ARNs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamproc.api.resources import request_resources
from streamproc.config import ObjectsConfig, load_config
from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    InvalidPolicyRevisionIdException,
    LimitExceededException,
    MalformedPolicyDocumentException,
    ResourceAlreadyExistsException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from streamproc.ledger import Appliers, LocalLedger
from streamproc.projects.datasets import Dataset, DatasetKey, DatasetStatus, DatasetType, StatusCode
from streamproc.projects.rules import ProjectRules
from streamproc.projects.service import ProjectService
from streamproc.projects.types import AutoUpdate, Feature, NewProject
from streamproc.projects.version_result import DataResult, Evaluation, TrainingOutcome
from streamproc.projects.version_spec import (
    AdapterConfig,
    OutputTarget,
    SpecError,
    TrainingInput,
)
from streamproc.projects.versions import (
    PINNED,
    NewVersion,
    Version,
    VersionQuery,
    VersionRef,
    VersionStatus,
)
from streamproc.projects.versions_commands import SetVersionStatus, TrainingAttempt
from streamproc.projects.versions_rules import VersionRules
from streamproc.projects.versions_service import VersionService
from streamproc.rekognition.constants import Arns
from streamproc.storage.db import Database
from streamproc.storage.object_keys import ObjectRef
from streamproc.storage.objects import ObjectStore
from streamproc.storage.projects import ProjectStore
from streamproc.storage.tags import TagStore
from streamproc.storage.versions import VersionStore
from streamproc.training import serial
from streamproc.training.heads import TrainedHeads

ARNS = Arns("eu-west-1", "123456789012")
OUT = OutputTarget("out", "p/")
ASSETS = TrainingInput((ObjectRef("in", "m"),))


@dataclass
class World:
    """A version service and everything behind it."""

    projects: ProjectService
    versions: VersionService
    store: VersionStore
    ledger: LocalLedger
    tags: TagStore
    clock: list[float]
    woken: list[int]
    backbone: list[str | None]
    objects: ObjectsConfig
    root: Path  # the object store's local root


NEVER_STARTED_STALE_MS = 3_600_000  # the service's window for a training never started


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    (tmp_path / "objects" / "out").mkdir(parents=True)
    config = load_config(None, {"projects.max_versions": 3, "server.region": "eu-west-1",
                                "server.account_id": "123456789012",
                                "objects.local_root": str(tmp_path / "objects"),
                                "objects.output_buckets": ["out"]})
    db = Database(tmp_path / "db.sqlite")
    db.open()
    appliers = Appliers()
    ledger = LocalLedger(appliers)
    projects_store, tags, store = ProjectStore(db), TagStore(db), VersionStore(db)
    rules = VersionRules(store, projects_store, tags, config)
    ProjectRules(projects_store, tags, config, versions=rules.count,
                 gone=rules.project_gone).register(appliers)
    rules.register(appliers)
    clock, woken, backbone = [1718000000.0], [], ["open_nsfw:test"]
    projects = ProjectService(projects_store, ledger, ARNS, lambda: clock[0])
    versions = VersionService(store, projects, ObjectStore(config.objects), ledger, ARNS,
                              "local", lambda: woken.append(1), lambda: backbone[0],
                              lambda: clock[0], stale_ms=NEVER_STARTED_STALE_MS)
    yield World(projects, versions, store, ledger, tags, clock, woken, backbone,
                config.objects, tmp_path / "objects")
    db.close()


def _project(w: World, name: str = "p", feature: Feature = Feature.CUSTOM_LABELS) -> str:
    w.clock[0] += 1
    auto = AutoUpdate.DISABLED if feature is Feature.CONTENT_MODERATION else None
    return w.projects.create(NewProject(name, feature, auto)).resource_id


def _version(w: World, project: str, name: str = "v1", **more: Any) -> str:
    w.clock[0] += 1
    more.setdefault("training", ASSETS)  # never read here: no runner
    return w.versions.create(NewVersion(project, name, OUT, **more)).ref.resource_id


def _end(w: World, resource_id: str, status: VersionStatus, model: bytes | None = None
         ) -> None:
    ref = VersionRef.parse(resource_id)
    assert ref is not None
    w.ledger.submit(SetVersionStatus(ref, status, status.value, 1,
                                     TrainingOutcome(billable_s=1), model))


def _model(backbone: str = "open_nsfw:test") -> bytes:
    return serial.dumps(TrainedHeads("classifier", backbone, ()))


def _status(w: World, resource_id: str) -> VersionStatus:
    return w.versions.require(resource_id).status


def test_a_version_trains_once_and_its_end_is_final(world: World) -> None:
    project = _project(world)
    v = _version(world, project, "v1", tags={"k": "v"})
    assert _status(world, v) is VersionStatus.TRAINING_IN_PROGRESS and world.woken == [1]
    assert world.tags.get(ARNS.version("p", "v1", VersionRef.parse(v).created_ms)) == {"k": "v"}
    _end(world, v, VersionStatus.TRAINING_COMPLETED, _model())
    ended = world.versions.require(v)
    assert ended.outcome.billable_s == 1 and ended.attempts == 0
    assert ended.result == {"BillableTrainingTimeInSeconds": 1}  # the stored form
    with pytest.raises(ResourceInUseException, match="TRAINING_COMPLETED"):
        _end(world, v, VersionStatus.TRAINING_FAILED)  # a second runner's late result
    assert world.versions.model(world.versions.require(v)) == _model()
    with pytest.raises(ResourceInUseException, match="already has a version v1"):
        _version(world, project, "v1")


def test_delete_is_refused_while_training_or_running(world: World) -> None:
    project = _project(world)
    v = _version(world, project)
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        world.versions.delete(v)
    with pytest.raises(ResourceInUseException, match="1 version"):
        world.projects.delete(project)
    _end(world, v, VersionStatus.TRAINING_COMPLETED, _model())
    assert world.versions.start(v, 1, None) is VersionStatus.STARTING
    assert _status(world, v) is VersionStatus.RUNNING
    assert world.versions.require(v).min_units == 1
    with pytest.raises(ResourceInUseException, match="RUNNING"):
        world.versions.delete(v)
    assert world.versions.stop(v) is VersionStatus.STOPPING
    assert _status(world, v) is VersionStatus.STOPPED
    assert world.versions.delete(v) is VersionStatus.DELETING
    with pytest.raises(ResourceNotFoundException):
        world.versions.require(v)
    world.projects.delete(project)


def test_a_stale_training_reads_failed_to_delete_and_its_project_goes(world: World) -> None:
    """No runner ended it (its node left): past the window its start gave, it can go."""
    project = _project(world)
    v = _version(world, project)
    ref = VersionRef.parse(v)
    assert ref is not None
    started = int(world.clock[0] * 1000)
    world.ledger.submit(TrainingAttempt(ref, "local", started, 60_000, 3))
    world.clock[0] += 59.9
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        world.versions.delete(v)
    stored = world.versions.require(v)
    assert stored.effective(started + 60_000).status is VersionStatus.TRAINING_FAILED
    assert "did not finish" in stored.effective(started + 60_000).message
    world.clock[0] += 0.1
    # Its own node never judges it stale (its runner retries it): only another node deletes.
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        world.versions.delete(v)
    assert _other_node(world).delete(v) is VersionStatus.DELETING
    world.projects.delete(project)


def _other_node(w: World, node: str = "other") -> VersionService:
    """The version service of another node of the cluster (same ledger and store)."""
    return VersionService(w.store, w.projects, ObjectStore(w.objects), w.ledger, ARNS, node,
                          lambda: None, lambda: w.backbone[0], lambda: w.clock[0],
                          stale_ms=NEVER_STARTED_STALE_MS)


def test_a_training_never_started_waits_in_its_own_queue_however_long(world: World) -> None:
    """Its own node's runner will start it: never stale there, and its start is taken."""
    project = _project(world)
    v = _version(world, project)
    world.clock[0] += 10 * NEVER_STARTED_STALE_MS / 1000
    assert world.versions.require(v).status is VersionStatus.TRAINING_IN_PROGRESS
    listed, _ = world.versions.describe(VersionQuery(project))
    assert [x.status for x in listed] == [VersionStatus.TRAINING_IN_PROGRESS]
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        world.versions.delete(v)
    ref = VersionRef.parse(v)
    assert ref is not None
    started = world.ledger.submit(TrainingAttempt(ref, "local", int(world.clock[0] * 1000),
                                                  60_000, 3))
    assert started.status is VersionStatus.TRAINING_IN_PROGRESS and started.attempts == 1


def test_another_nodes_training_never_started_reads_failed_past_the_window(
        world: World) -> None:
    """Its node never started it (gone, renamed, switched to a cluster): others say so."""
    project = _project(world)
    v = _version(world, project)
    other = _other_node(world)
    world.clock[0] += NEVER_STARTED_STALE_MS / 1000 - 1
    assert other.require(v).status is VersionStatus.TRAINING_IN_PROGRESS
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        other.delete(v)
    world.clock[0] += 2
    shown = other.require(v)
    assert shown.status is VersionStatus.TRAINING_FAILED and "did not finish" in shown.message
    listed, _ = other.describe(VersionQuery(project))
    assert [x.status for x in listed] == [VersionStatus.TRAINING_FAILED]
    assert world.versions.require(v).status is VersionStatus.TRAINING_IN_PROGRESS  # its own
    ref = VersionRef.parse(v)
    assert ref is not None
    # A start by a node not its own is judged as that node reads it: stale, so failed.
    failed = world.ledger.submit(TrainingAttempt(ref, "other", int(world.clock[0] * 1000),
                                                 NEVER_STARTED_STALE_MS, 3))
    assert failed.status is VersionStatus.TRAINING_FAILED
    assert other.delete(v) is VersionStatus.DELETING
    world.projects.delete(project)


def test_start_fails_on_another_backbone_and_needs_a_trained_model(world: World) -> None:
    project = _project(world)
    v = _version(world, project)
    with pytest.raises(ResourceInUseException, match="TRAINING_IN_PROGRESS"):
        world.versions.start(v, 1, None)
    _end(world, v, VersionStatus.TRAINING_COMPLETED, _model("open_nsfw:older"))
    world.versions.start(v, 1, 2)
    failed = world.versions.require(v)
    assert failed.status is VersionStatus.FAILED and "open_nsfw:older" in failed.message
    assert (failed.min_units, failed.max_units) == (1, 2)
    world.backbone[0] = "open_nsfw:older"  # the pack it was trained on is back
    world.versions.start(v, 1, None)
    assert _status(world, v) is VersionStatus.RUNNING
    with pytest.raises(InvalidParameterException, match="MaxInferenceUnits"):
        world.versions.start(v, 3, 2)


def test_adapters_are_not_started_stopped_or_copied(world: World) -> None:
    project = _project(world, "mod", Feature.CONTENT_MODERATION)
    v = _version(world, project)
    spec = world.versions.require(v).spec
    assert spec["FeatureConfig"] == {"ContentModeration": {"ConfidenceThreshold": 50.0}}
    _end(world, v, VersionStatus.TRAINING_COMPLETED, _model())
    for call in (lambda: world.versions.start(v, 1, None), lambda: world.versions.stop(v),
                 lambda: world.versions.copy(project, v, project, "c", OUT, None)):
        with pytest.raises(InvalidParameterException, match="adapter"):
            call()
    other = _project(world)
    with pytest.raises(InvalidParameterException, match="FeatureConfig"):
        _version(world, other, feature_config=AdapterConfig())


def test_copy_takes_a_trained_version_and_its_model(world: World) -> None:
    source, target = _project(world, "a"), _project(world, "b")
    v = _version(world, source)
    with pytest.raises(ResourceInUseException, match="only a trained one"):
        world.versions.copy(source, v, target, "c1", OUT, None)
    _end(world, v, VersionStatus.TRAINING_COMPLETED, _model())
    with pytest.raises(ResourceNotFoundException, match="not one of project b"):
        world.versions.copy(target, v, target, "c1", OUT, None)
    copied = world.versions.copy(source, v, target, "c1", OUT, {"t": "1"})
    assert copied.status is VersionStatus.COPYING_COMPLETED
    assert world.versions.model(copied) == _model()
    assert copied.outcome.source_arn == ARNS.version(
        "a", "v1", VersionRef.parse(v).created_ms)
    world.versions.start(copied.ref.resource_id, 1, None)
    assert _status(world, copied.ref.resource_id) is VersionStatus.RUNNING


def test_requests_are_checked_before_anything_is_made(world: World) -> None:
    project = _project(world)
    with pytest.raises(AccessDeniedException, match="output_buckets"):
        world.versions.create(NewVersion(project, "v", OutputTarget("elsewhere")))
    with pytest.raises(SpecError, match="GroundTruthManifest"):  # the API's 400
        TrainingInput.parse({"Assets": [{"GroundTruthManifest": {}}]})
    with pytest.raises(ResourceNotFoundException):
        world.versions.create(NewVersion("p/1", "v", OUT))
    assert world.store.count("p") == 0
    for n in range(3):
        _version(world, project, f"v{n}")
    with pytest.raises(LimitExceededException, match="max_versions"):
        _version(world, project, "v9")


@pytest.mark.parametrize("data", [
    {"Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": "in", "Name": "m",
                                                      "Version": "3"}}}]},
    {"Assets": []}, {}, {"AutoCreate": False}, {"AutoCreate": True}])
def test_a_data_set_is_stored_as_the_request_gave_it(data: dict[str, Any]) -> None:
    # Old records hold the request's own dicts: the typed value must write the same bytes.
    assert json.dumps(TrainingInput.parse(data).stored()) == json.dumps(data)


def test_output_and_threshold_are_stored_as_the_request_gave_them(world: World) -> None:
    for given in ({"S3Bucket": "out"}, {"S3Bucket": "out", "S3KeyPrefix": ""}):
        assert json.dumps(OutputTarget.parse(given).stored()) == json.dumps(given)
    project = _project(world, "mod", Feature.CONTENT_MODERATION)
    as_int = _version(world, project, "i", feature_config=AdapterConfig.parse(
        {"ContentModeration": {"ConfidenceThreshold": 70}}))
    stored = world.store.get("mod", "i").spec["FeatureConfig"]
    assert json.dumps(stored) == '{"ContentModeration": {"ConfidenceThreshold": 70}}'
    assert world.versions.require(as_int).adapter == AdapterConfig(70.0)
    blank = _version(world, project, "b", feature_config=AdapterConfig.parse({}))
    assert world.versions.require(blank).adapter == AdapterConfig(50.0)


def test_describe_pages_by_name(world: World) -> None:
    project = _project(world)
    for name in ("b", "a", "c"):
        _version(world, project, name)
    page, token = world.versions.describe(VersionQuery(project, max_results=2))
    assert [v.ref.name for v in page] == ["a", "b"] and token
    rest, end = world.versions.describe(VersionQuery(project, token=token, max_results=2))
    assert [v.ref.name for v in rest] == ["c"] and end is None
    only, _ = world.versions.describe(VersionQuery(project, names=("c", "zz")))
    assert [v.ref.name for v in only] == ["c"]


def test_policies_keep_revisions_and_go_with_their_project(world: World) -> None:
    project = _project(world)
    doc = '{"Version": "2012-10-17", "Statement": []}'
    first = world.versions.put_policy(project, "p1", None, doc)
    with pytest.raises(ResourceAlreadyExistsException):
        world.versions.put_policy(project, "p1", None, doc)
    with pytest.raises(InvalidPolicyRevisionIdException):
        world.versions.put_policy(project, "p1", "ff", doc)
    with pytest.raises(MalformedPolicyDocumentException):
        world.versions.put_policy(project, "p2", None, "[]")
    with pytest.raises(MalformedPolicyDocumentException):  # nested past the parser's depth
        world.versions.put_policy(project, "p2", None,
                                  '{"Statement": ' + "[" * 1500 + "]" * 1500 + "}")
    world.clock[0] += 1
    second = world.versions.put_policy(project, "p1", first.revision, doc)
    assert second.revision != first.revision and second.created_ms == first.created_ms
    with pytest.raises(InvalidPolicyRevisionIdException):
        world.versions.delete_policy(project, "p1", first.revision)
    for n in range(2, 6):
        world.versions.put_policy(project, f"p{n}", None, doc)
    with pytest.raises(LimitExceededException):
        world.versions.put_policy(project, "p6", None, doc)
    world.projects.delete(project)
    assert world.store.policies("p") == []


def test_version_arns_name_their_resources() -> None:
    arn = ARNS.version("p", "v1", 5)
    assert arn == "arn:aws:rekognition:eu-west-1:123456789012:project/p/version/v1/5"
    assert ARNS.parse(arn) == ("project", "p/version/v1/5")
    assert ARNS.parse(arn.replace("/5", "/x")) is None
    assert request_resources("StartProjectVersion", {"ProjectVersionArn": arn}, ARNS) == [arn]
    copy = request_resources("CopyProjectVersion", {
        "SourceProjectArn": ARNS.project("p", 1), "SourceProjectVersionArn": arn,
        "DestinationProjectArn": ARNS.project("q", 2)}, ARNS)
    assert copy == [ARNS.project("p", 1), arn, ARNS.project("q", 2)]
    assert VersionRef.parse("p/version/v1/5") == VersionRef("p", "v1", 5)
    assert VersionRef.parse("p/dataset/train/5") is None


def _dataset(type_: DatasetType, status: DatasetStatus, updated_ms: int) -> Dataset:
    return Dataset(DatasetKey("p", type_), 1, 5, updated_ms, status, "", StatusCode.SUCCESS)


def test_a_version_needs_data_to_train_on_and_pins_the_datasets_it_reads(
        world: World) -> None:
    project = _project(world)
    with pytest.raises(InvalidParameterException, match="no TRAIN dataset"):
        world.versions.create(NewVersion(project, "v", OUT))
    busy = [_dataset(DatasetType.TRAIN, DatasetStatus.UPDATE_IN_PROGRESS, 70)]
    with pytest.raises(ResourceInUseException, match="TRAIN dataset is UPDATE_IN_PROGRESS"):
        world.versions.create(NewVersion(project, "v", OUT), lambda _: busy)
    test_busy = [_dataset(DatasetType.TRAIN, DatasetStatus.CREATE_COMPLETE, 70),
                 _dataset(DatasetType.TEST, DatasetStatus.CREATE_IN_PROGRESS, 71)]
    with pytest.raises(ResourceInUseException, match="TEST dataset"):
        world.versions.create(NewVersion(project, "v", OUT), lambda _: test_busy)
    assert world.store.count("p") == 0
    both = [_dataset(DatasetType.TRAIN, DatasetStatus.CREATE_COMPLETE, 70),
            _dataset(DatasetType.TEST, DatasetStatus.UPDATE_COMPLETE, 71)]
    made = world.versions.create(NewVersion(project, "v", OUT), lambda _: both)
    assert made.spec[PINNED] == {"TRAIN": 70, "TEST": 71}
    auto = world.versions.create(NewVersion(project, "w", OUT, testing=TrainingInput(
        auto_create=True)), lambda _: both)
    assert auto.spec[PINNED] == {"TRAIN": 70}  # its test set is split off, never read
    assets = world.versions.create(NewVersion(project, "x", OUT, training=ASSETS,
                                              testing=ASSETS), lambda _: test_busy)
    assert assets.spec[PINNED] == {}  # manifests only: no dataset is read


def test_start_fails_on_a_server_without_a_backbone(world: World) -> None:
    project = _project(world)
    v = _version(world, project)
    _end(world, v, VersionStatus.TRAINING_COMPLETED, _model())
    world.backbone[0] = None
    world.versions.start(v, 1, None)
    failed = world.versions.require(v)
    assert failed.status is VersionStatus.FAILED and "no feature extractor" in failed.message


def test_a_copy_writes_its_own_output_files_and_no_training_record(world: World) -> None:
    source, target = _project(world, "a"), _project(world, "b")
    v = _version(world, source)
    ref = VersionRef.parse(v)
    assert ref is not None
    world.ledger.submit(TrainingAttempt(ref, "local", int(world.clock[0] * 1000), 60_000, 3))
    folder = world.root / "out" / "p" / "a" / "v1"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "output.manifest").write_bytes(b"train lines\n")
    (folder / "EvaluationSummary-a-v1.json").write_bytes(b'{"s": 1}')
    (folder / "manifest-summary.json").write_bytes(b'{"m": 1}')

    def at(name: str) -> ObjectRef:
        return ObjectRef("out", f"p/a/v1/{name}")

    given = TrainingInput((ObjectRef("in", "m"),))
    result = TrainingOutcome(
        at("manifest-summary.json"),
        DataResult(given, TrainingInput((at("train/output.manifest"),))),
        evaluation=Evaluation(0.5, at("EvaluationSummary-a-v1.json")))
    world.ledger.submit(SetVersionStatus(ref, VersionStatus.TRAINING_COMPLETED, "done", 1,
                                         result, _model()))
    assert "_training" in world.store.get("a", "v1").result  # the source keeps its record
    output = OutputTarget("out", "copies/")
    copied = world.versions.copy(source, v, target, "c1", output, None)
    assert "_training" not in copied.result and copied.outcome.attempt is None
    assert copied.result["EvaluationResult"] == {"F1Score": 0.5, "Summary": {"S3Object": {
        "Bucket": "out", "Name": "copies/b/c1/EvaluationSummary-b-c1.json"}}}
    outcome = copied.outcome
    assert outcome.manifest_summary == ObjectRef("out", "copies/b/c1/manifest-summary.json")
    training = outcome.training_data
    assert training is not None and training.input == given  # the request's, not a copy
    assert training.output == TrainingInput((ObjectRef("out",
                                                       "copies/b/c1/train/output.manifest"),))
    into = world.root / "out" / "copies" / "b" / "c1"
    assert (into / "EvaluationSummary-b-c1.json").read_bytes() == b'{"s": 1}'
    assert (into / "manifest-summary.json").read_bytes() == b'{"m": 1}'
    assert (into / "train" / "output.manifest").read_bytes() == b"train lines\n"
    with pytest.raises(ResourceInUseException, match="already has a version c1"):
        world.versions.copy(source, v, target, "c1", OutputTarget("out"), None)
    (folder / "manifest-summary.json").unlink()  # a source file gone: nothing is made
    with pytest.raises(InvalidParameterException, match="cannot be read"):
        world.versions.copy(source, v, target, "c2", output, None)
    assert world.store.get("b", "c2") is None


def _started(w: World, v: str, window_ms: int = 60_000) -> VersionRef:
    """The version's ref, after its own node ("local") recorded a start."""
    ref = VersionRef.parse(v)
    assert ref is not None
    w.ledger.submit(TrainingAttempt(ref, "local", int(w.clock[0] * 1000), window_ms, 3))
    return ref


@pytest.mark.parametrize("clean", [True, False])
def test_its_own_node_retrains_it_after_any_downtime(world: World, clean: bool) -> None:
    """A stop (clean: the start withdrawn; a crash: it counts) then a gap far past the
    window: its own node reads it in progress and its next start is taken, not failed."""
    project = _project(world)
    v = _version(world, project)
    ref = _started(world, v)
    if clean:
        withdrawn = world.ledger.submit(TrainingAttempt(ref, "local", int(world.clock[0] * 1000),
                                                        60_000, 3, stopped=True))
        assert withdrawn.attempts == 0 and withdrawn.stale_ms is None  # the window cleared
    world.clock[0] += 3600.0  # down an hour: sixty windows
    now = int(world.clock[0] * 1000)
    assert world.versions.require(v).status is VersionStatus.TRAINING_IN_PROGRESS
    listed, _ = world.versions.describe(VersionQuery(project))
    assert [x.status for x in listed] == [VersionStatus.TRAINING_IN_PROGRESS]
    # Another node still judges it: by the start's window, or (withdrawn) by its own from
    # the stop (an hour: NEVER_STARTED_STALE_MS).
    assert _other_node(world).require(v).status is VersionStatus.TRAINING_FAILED
    again = world.ledger.submit(TrainingAttempt(ref, "local", now, 60_000, 3))
    assert again.status is VersionStatus.TRAINING_IN_PROGRESS
    assert again.attempts == (1 if clean else 2) and again.updated_ms == now


def test_its_own_node_still_fails_a_training_that_crashed_it_max_times(world: World) -> None:
    """Own-node starts are never stale, but each crash counts: the fourth start fails it."""
    project = _project(world)
    v = _version(world, project)
    ref = VersionRef.parse(v)
    assert ref is not None
    for attempt in range(1, 4):  # three starts, each cut by a crash an hour before the next
        world.clock[0] += 3600.0
        started = world.ledger.submit(TrainingAttempt(ref, "local",
                                                      int(world.clock[0] * 1000), 60_000, 3))
        assert started.status is VersionStatus.TRAINING_IN_PROGRESS
        assert started.attempts == attempt
    world.clock[0] += 3600.0
    failed = world.ledger.submit(TrainingAttempt(ref, "local", int(world.clock[0] * 1000),
                                                 60_000, 3))
    assert failed.status is VersionStatus.TRAINING_FAILED
    assert "started 3 times" in failed.message


@pytest.mark.parametrize(("result", "since"), [
    ({}, "creation"), ({"_training": {"attempts": 1, "stale_ms": 90_000}}, "start")])
def test_a_stale_version_says_its_window_and_what_it_counts_from(
        result: dict[str, object], since: str) -> None:
    """The StatusMessage a client reads: the window in seconds, from creation or start."""
    version = Version(VersionRef("p", "v", 1_000), 1, Feature.CUSTOM_LABELS,
                      VersionStatus.TRAINING_IN_PROGRESS, "The model is being trained",
                      5_000, "n1", {}, dict(result))
    failed = version.effective(5_000 + 90_000, 90_000, "n2")
    assert failed.status is VersionStatus.TRAINING_FAILED and failed.updated_ms == 95_000
    assert failed.message == (
        f"training did not finish: nothing ended it within 90 s of its {since} (its node "
        "stopped, left the cluster or was renamed)")
    assert version.effective(5_000 + 89_999, 90_000, "n2") is version
