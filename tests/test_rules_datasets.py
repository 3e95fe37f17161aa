"""Dataset rules (projects/dataset_rules.py) and service (projects/dataset_service.py) over a
real SQLite store, a local object root and a local ledger; no daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streamproc.api.resources import request_resources
from streamproc.config import load_config
from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceAlreadyExistsException,
    ResourceInUseException,
    ResourceNotFoundException,
    ResourceNotReadyException,
)
from streamproc.ledger import Appliers, Command, LocalLedger
from streamproc.projects.dataset_commands import (
    AddDatasetEntries,
    CreateDataset,
    DatasetRef,
    DeleteDataset,
    DistributeEntries,
    SetDatasetStatus,
)
from streamproc.projects.dataset_rules import DatasetRules, held_out
from streamproc.projects.dataset_service import DatasetService, NewDataset
from streamproc.projects.datasets import (
    Dataset,
    DatasetKey,
    DatasetStatus,
    DatasetType,
    Entry,
    EntryQuery,
    StatusCode,
)
from streamproc.projects.rules import ProjectRules
from streamproc.projects.service import ProjectService
from streamproc.projects.types import AutoUpdate, Feature, NewProject, Project
from streamproc.rekognition.constants import Arns
from streamproc.storage.datasets import DatasetStore, StoredEntry
from streamproc.storage.db import Database
from streamproc.storage.objects import ObjectRef, ObjectStore
from streamproc.storage.projects import ProjectStore
from streamproc.storage.tags import TagStore

ARNS = Arns("eu-west-1", "123456789012")
T0 = 1718000000.0
TRAIN, TEST = DatasetType.TRAIN, DatasetType.TEST


class RecordingLedger(LocalLedger):
    """A local ledger that remembers the kinds it applied, and can fail the n-th command."""

    def __init__(self, appliers: Appliers) -> None:
        super().__init__(appliers)
        self.kinds: list[str] = []
        self.fail_at: int | None = None

    def submit(self, command: Command[Any]) -> Any:
        if self.fail_at is not None and len(self.kinds) == self.fail_at:
            self.fail_at = None
            msg = "the log is down"
            raise RuntimeError(msg)
        self.kinds.append(command.kind)
        return super().submit(command)


@dataclass
class World:
    """A dataset service and everything behind it."""

    root: Path
    store: DatasetStore
    projects: ProjectService
    service: DatasetService
    ledger: RecordingLedger
    rules: DatasetRules
    tags: TagStore
    clock: list[float] = field(default_factory=lambda: [T0])

    def project(self, name: str = "shelves", feature: Feature = Feature.CUSTOM_LABELS) -> Project:
        self.tick()
        auto = AutoUpdate.DISABLED if feature is Feature.CONTENT_MODERATION else None
        return self.projects.create(NewProject(name, feature, auto))

    def tick(self, seconds: float = 1.0) -> None:
        self.clock[0] += seconds

    def manifest(self, name: str, lines: list[Any], bucket: str = "manifests") -> ObjectRef:
        path = self.root / bucket / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                                for x in lines))
        return ObjectRef(bucket, name)

    def create(self, project: Project, type_: DatasetType = TRAIN,
               manifest: ObjectRef | None = None, copy: str | None = None,
               tags: dict[str, str] | None = None) -> Dataset:
        self.tick()
        return self.service.create(NewDataset(project.resource_id, type_, manifest, copy, tags))

    def lines(self, dataset: Dataset, **query: Any) -> list[dict[str, Any]]:
        found, _ = self.service.entries(dataset.resource_id, EntryQuery(**query))
        return [json.loads(x) for x in found]


def _world(root: Path, **overrides: Any) -> Iterator[World]:
    db = Database(root / "streamproc.db")
    db.open()
    (root / "objects").mkdir()
    config = load_config(None, {"objects.local_root": str(root / "objects"),
                                "objects.buckets": ["manifests", "imgs", "other"],
                                "server.region": "eu-west-1",
                                "server.account_id": "123456789012", **overrides})
    projects, tags, datasets = ProjectStore(db), TagStore(db), DatasetStore(db)
    appliers = Appliers()
    rules = DatasetRules(datasets, projects, tags, config)
    ProjectRules(projects, tags, config, gone=rules.project_gone).register(appliers)
    rules.register(appliers)
    ledger = RecordingLedger(appliers)
    clock = [T0]
    project_service = ProjectService(projects, ledger, ARNS, lambda: clock[0])
    service = DatasetService(datasets, project_service, ObjectStore(config.objects), ledger,
                             config, lambda: clock[0])
    yield World(root / "objects", datasets, project_service, service, ledger, rules, tags,
                clock)
    db.close()


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path)


def image(n: int, label: str | None = "sunrise", bucket: str = "imgs") -> dict[str, Any]:
    line: dict[str, Any] = {"source-ref": f"s3://{bucket}/img/{n:03d}.jpg"}
    if label is not None:
        line.update({"cls": 0, "cls-metadata": {
            "class-name": label, "type": "groundtruth/image-classification"}})
    return line


def stats(w: World, dataset: Dataset) -> tuple[int, int, int, int]:
    s = w.service.describe(dataset.resource_id)[1]
    return s.labeled, s.total, s.labels, s.errors


# ---- create ---------------------------------------------------------------------------------
def test_one_train_and_one_test_dataset_per_project(w: World) -> None:
    project = w.project()
    train = w.create(project)
    assert (train.status, train.code) == (DatasetStatus.CREATE_COMPLETE, StatusCode.SUCCESS)
    assert train.resource_id == f"shelves/dataset/train/{train.created_ms}"
    with pytest.raises(ResourceAlreadyExistsException, match="already has a TRAIN dataset"):
        w.create(project)
    test = w.create(project, TEST)
    assert w.service.of_project(project) == [test, train]
    with pytest.raises(ResourceAlreadyExistsException):
        w.create(project, TEST)
    with pytest.raises(ResourceNotFoundException, match="The project never does not exist"):
        w.service.create(NewDataset("never/1", TRAIN))
    with pytest.raises(ResourceNotFoundException):  # the name, but another creation time
        w.service.create(NewDataset(f"shelves/{project.created_ms + 1}", TRAIN))


def test_a_manifest_becomes_entries_through_chunked_commands(tmp_path: Path) -> None:
    for w in _world(tmp_path, **{"projects.dataset_chunk_bytes": 400}):
        project = w.project()
        ref = w.manifest("m.manifest", [image(i, "sunrise" if i % 3 else "sunset")
                                        for i in range(12)] + ["", image(99, None)])
        before = len(w.ledger.kinds)
        train = w.create(project, manifest=ref)
        kinds = w.ledger.kinds[before:]
        assert kinds[0] == "dataset.create" and kinds[-1] == "dataset.status"
        assert kinds.count("dataset.entries") >= 3  # 13 lines of ~130 bytes in 400-byte runs
        assert (train.status, train.message) == (DatasetStatus.CREATE_COMPLETE,
                                                 "The dataset was created")
        assert stats(w, train) == (12, 13, 2, 0)
        refs = [x["source-ref"] for x in w.lines(train)]
        assert refs == [f"s3://imgs/img/{i:03d}.jpg" for i in [*range(12), 99]]  # file order


def test_error_entries_are_kept_and_too_many_fail_the_dataset(w: World) -> None:
    project = w.project()
    ref = w.manifest("m.manifest", [image(i) for i in range(8)] + [
        "{not json", {"no": "ref"}, image(50, bucket="secret")])
    train = w.create(project, manifest=ref)
    assert (train.status, train.code) == (DatasetStatus.CREATE_FAILED, StatusCode.CLIENT_ERROR)
    assert train.message.startswith("ERROR_TOO_MANY_RECORDS_IN_ERROR: 3 of 11 JSON lines")
    assert stats(w, train) == (9, 11, 1, 3)  # the refused bucket's line is labelled
    bad = w.lines(train, has_errors=True)
    assert [[e["code"] for e in x["errors"]] for x in bad] == [
        ["ERROR_INVALID_JSON_LINE"], ["ERROR_MISSING_SOURCE_REF"],
        ["ERROR_INVALID_PERMISSIONS_IMAGES_S3_BUCKET"]]
    assert bad[0]["line-number"] == 9
    assert len(w.lines(train, has_errors=False)) == 8
    w.tick()
    w.service.delete(train.resource_id)  # a failed dataset can be deleted and made again
    ok = w.manifest("ok.manifest", [image(i) for i in range(8)] + ["{not json", "[]"])
    again = w.create(project, manifest=ok)  # 2 of 10: not more than AWS's 20%
    assert again.status is DatasetStatus.CREATE_COMPLETE and stats(w, again)[3] == 2


def test_manifests_that_cannot_be_read_create_nothing(tmp_path: Path) -> None:
    for w in _world(tmp_path, **{"projects.dataset_max_entries": 3,
                                 "projects.dataset_max_manifest_bytes": 2000}):
        project = w.project()
        cases = [
            (ObjectRef("forbidden", "m.manifest"), AccessDeniedException, "objects.buckets"),
            (ObjectRef("manifests", "missing.manifest"), InvalidS3ObjectException, "Unable"),
            (w.manifest("empty.manifest", ["", "  "]), InvalidParameterException,
             "holds no JSON lines"),
            (w.manifest("four.manifest", [image(i) for i in range(4)]),
             InvalidParameterException, "more than 3 JSON lines"),
            (w.manifest("big.manifest", [{"source-ref": "s3://imgs/" + "k" * 900}] * 3),
             InvalidParameterException, "larger than 2000 bytes")]
        for ref, error, said in cases:
            with pytest.raises(error, match=said):
                w.create(project, manifest=ref)
        assert w.service.of_project(project) == []
        assert "dataset.create" not in w.ledger.kinds


def test_a_failure_part_way_ends_the_dataset_failed_with_a_service_error(tmp_path: Path) -> None:
    for w in _world(tmp_path, **{"projects.dataset_chunk_bytes": 100}):
        project = w.project()
        ref = w.manifest("m.manifest", [image(i) for i in range(5)])
        w.ledger.fail_at = len(w.ledger.kinds) + 3  # create, entries, entries, then down
        with pytest.raises(RuntimeError):
            w.create(project, manifest=ref)
        (failed,) = w.service.of_project(project)
        assert (failed.status, failed.code) == (DatasetStatus.CREATE_FAILED,
                                                StatusCode.SERVICE_ERROR)
        assert stats(w, failed)[1] == 2  # what arrived stays, for ListDatasetEntries


def test_work_left_in_progress_reads_failed_once_stale(w: World) -> None:
    project = w.project()
    dataset = w.create(project)
    ref = DatasetRef("shelves", TRAIN, dataset.created_ms)
    w.ledger.submit(SetDatasetStatus(ref, DatasetStatus.UPDATE_IN_PROGRESS, "",
                                     StatusCode.SUCCESS, int(w.clock[0] * 1000)))
    with pytest.raises(ResourceInUseException, match="UPDATE_IN_PROGRESS"):
        w.service.delete(dataset.resource_id)
    with pytest.raises(ResourceNotReadyException):
        w.service.entries(dataset.resource_id, EntryQuery())
    w.tick(601)  # projects.dataset_stale_s: the daemon stopped part-way
    stale = w.service.describe(dataset.resource_id)[0]
    assert (stale.status, stale.code) == (DatasetStatus.UPDATE_FAILED, StatusCode.SERVICE_ERROR)
    assert "interrupted" in stale.message
    w.service.delete(dataset.resource_id)
    assert w.service.of_project(project) == []


def test_a_copy_takes_every_entry_of_its_source(w: World) -> None:
    first = w.project("first")
    source = w.create(first, manifest=w.manifest("m.manifest", [image(i) for i in range(4)] +
                                                 ["{broken"]))
    second = w.project("second")
    copy = w.create(second, TEST, copy=source.resource_id)
    assert copy.key.project == "second" and copy.status is DatasetStatus.CREATE_COMPLETE
    assert w.lines(copy) == w.lines(source) and stats(w, copy) == stats(w, source)
    with pytest.raises(ResourceNotFoundException):
        w.create(second, copy=f"first/dataset/train/{source.created_ms + 1}")


# ---- update ---------------------------------------------------------------------------------
def test_update_replaces_entries_by_source_ref_in_place_and_appends_new_ones(w: World) -> None:
    project = w.project()
    train = w.create(project, manifest=w.manifest("m.manifest", [image(i) for i in range(3)]))
    changes = "\n".join(json.dumps(x) for x in [image(1, "sunset"), image(7, "noon"),
                                                image(0, None)]).encode()
    w.tick()
    updated = w.service.update(train.resource_id, changes)
    assert (updated.status, updated.message) == (DatasetStatus.UPDATE_COMPLETE,
                                                 "The dataset was updated")
    assert updated.updated_ms > train.updated_ms and updated.created_ms == train.created_ms
    got = [(x["source-ref"][-7:], x.get("cls-metadata", {}).get("class-name"))
           for x in w.lines(train)]
    assert got == [("000.jpg", None), ("001.jpg", "sunset"), ("002.jpg", "sunrise"),
                   ("007.jpg", "noon")]
    assert stats(w, train) == (3, 4, 3, 0)
    labels, _ = w.service.labels(train.resource_id, None, None)
    assert labels == [("noon", 1), ("sunrise", 1), ("sunset", 1)]
    with pytest.raises(InvalidParameterException, match="holds no JSON lines"):
        w.service.update(train.resource_id, b"\n\n")


def test_update_checks_the_dataset_limit(tmp_path: Path) -> None:
    for w in _world(tmp_path, **{"projects.dataset_max_entries": 3}):
        train = w.create(w.project(), manifest=w.manifest("m", [image(0), image(1)]))
        with pytest.raises(InvalidParameterException, match="holds 2 entries: 2 more"):
            w.service.update(train.resource_id, b"\n".join(
                json.dumps(image(i)).encode() for i in (5, 6)))


# ---- listing --------------------------------------------------------------------------------
def test_entry_filters_combine_and_pages_follow_dataset_order(w: World) -> None:
    project = w.project()
    lines = [image(i, ["cat", "dog", None][i % 3]) for i in range(9)] + ["{broken"]
    train = w.create(project, manifest=w.manifest("m", lines))
    refs = [x.get("source-ref") for x in w.lines(train, contains_labels=("dog", "cat"))]
    assert refs == [f"s3://imgs/img/{i:03d}.jpg" for i in (0, 1, 3, 4, 6, 7)]
    assert len(w.lines(train, labeled=False)) == 4  # three unlabelled and the broken line
    assert len(w.lines(train, labeled=False, has_errors=False)) == 3
    assert [x["source-ref"] for x in w.lines(train, source_ref_contains="img/00")] == [
        f"s3://imgs/img/00{i}.jpg" for i in range(9)]
    assert w.lines(train, source_ref_contains="IMG") == []  # case-sensitive, as S3 keys are
    assert w.lines(train, source_ref_contains="%") == []  # no LIKE wildcards
    seen, token = [], None
    while True:
        page, token = w.service.entries(train.resource_id, EntryQuery(max_results=4,
                                                                       token=token))
        seen += page
        if token is None:
            break
    assert seen == w.service.entries(train.resource_id, EntryQuery())[0] and len(seen) == 10
    first, token = w.service.labels(train.resource_id, None, 1)
    assert first == [("cat", 3)] and w.service.labels(train.resource_id, token, 1)[0] == [
        ("dog", 3)]


# ---- distribute -----------------------------------------------------------------------------
def test_distribute_moves_a_fifth_of_each_label_set_deterministically(w: World) -> None:
    project = w.project()
    lines = [image(i, "cat" if i < 11 else "dog") for i in range(15)] + ["{broken"]
    train = w.create(project, manifest=w.manifest("m", lines))
    test = w.create(project, TEST)
    w.tick()
    moved = w.service.distribute([test.resource_id, train.resource_id])  # either order
    assert moved == 3  # 2 of 11 cats, 1 of 4 dogs (a fifth, rounded); the broken line stays
    assert stats(w, train)[1:] == (13, 2, 1) and stats(w, test)[:2] == (3, 3)
    for d in (train, test):
        assert w.service.describe(d.resource_id)[0].status is DatasetStatus.UPDATE_COMPLETE
    rows = [(i + 1, StoredEntry(json.dumps(x), x["source-ref"], (x["cls-metadata"][
        "class-name"],), True, False)) for i, x in enumerate(lines[:15])]
    picked = {rows[s - 1][1].source_ref for s in held_out(rows)}
    assert {x["source-ref"] for x in w.lines(test)} == picked
    shuffled = [(i + 1, row) for i, (_, row) in enumerate(reversed(rows))]
    assert {shuffled[s - 1][1].source_ref for s in held_out(shuffled)} == picked
    with pytest.raises(InvalidParameterException, match="TEST dataset must be empty"):
        w.service.distribute([train.resource_id, test.resource_id])


def test_distribute_needs_both_datasets_of_one_project_and_enough_entries(w: World) -> None:
    a, b = w.project("a"), w.project("b")
    a_train = w.create(a, manifest=w.manifest("m", [image(0), image(1)]))
    b_test = w.create(b, TEST)
    with pytest.raises(InvalidParameterException, match="of one project"):
        w.service.distribute([a_train.resource_id, b_test.resource_id])
    with pytest.raises(InvalidParameterException, match="of one project"):
        w.service.distribute([a_train.resource_id, a_train.resource_id])
    a_test = w.create(a, TEST)
    with pytest.raises(InvalidParameterException, match="too few usable entries"):
        w.service.distribute([a_train.resource_id, a_test.resource_id])
    with pytest.raises(InvalidParameterException):  # the command checks the types too
        w.ledger.submit(DistributeEntries(DatasetRef("a", TEST, a_test.created_ms),
                                          DatasetRef("a", TRAIN, a_train.created_ms), 0))


# ---- delete, stale commands, projects -------------------------------------------------------
def test_commands_for_a_dataset_made_again_since_are_refused(w: World) -> None:
    project = w.project()
    old = w.create(project)
    w.service.delete(old.resource_id)
    new = w.create(project)
    old_ref = DatasetRef("shelves", TRAIN, old.created_ms)
    for command in (DeleteDataset(old_ref, 0),
                    AddDatasetEntries(old_ref, ()),
                    SetDatasetStatus(old_ref, DatasetStatus.UPDATE_COMPLETE, "", StatusCode.SUCCESS,
                                     0)):
        with pytest.raises(ResourceNotFoundException):
            w.ledger.submit(command)
    with pytest.raises(ResourceNotFoundException):
        w.service.describe(old.resource_id)
    with pytest.raises(ResourceInUseException, match="only while it is being"):
        w.ledger.submit(AddDatasetEntries(DatasetRef("shelves", TRAIN, new.created_ms), ()))
    assert w.service.describe(new.resource_id)[0] == new


def test_deleting_a_project_deletes_its_datasets(w: World) -> None:
    project = w.project()
    train = w.create(project, manifest=w.manifest("m", [image(0)]))
    w.projects.delete(project.resource_id)
    again = w.project()
    assert w.service.of_project(again) == []
    with pytest.raises(ResourceNotFoundException):
        w.service.describe(train.resource_id)
    assert w.store.counts("shelves", "TRAIN") == (0, 0, 0, 0)
    with pytest.raises(ResourceNotFoundException):  # a command for the old project
        w.ledger.submit(CreateDataset(Dataset(
            train.key, project.created_ms, 5, 5, DatasetStatus.CREATE_COMPLETE, "",
            StatusCode.SUCCESS)))


def test_tags_are_kept_under_the_dataset_arn_and_go_with_it_or_its_project(w: World) -> None:
    project = w.project()
    train = w.create(project, tags={"team": "retail"})
    test = w.create(project, TEST, tags={"split": "yes"})
    arn = "arn:aws:rekognition:eu-west-1:123456789012:project/shelves/dataset/train/"
    assert w.rules.tag_key(train) == f"{arn}{train.created_ms}"
    assert w.rules.tag_key_of(train.resource_id) == f"{arn}{train.created_ms}"
    assert w.rules.tag_key_of(f"shelves/dataset/train/{train.created_ms + 1}") is None
    assert w.tags.get(w.rules.tag_key(train)) == {"team": "retail"}
    w.service.delete(test.resource_id)
    assert w.tags.get(w.rules.tag_key(test)) == {}
    w.projects.delete(project.resource_id)
    assert w.tags.get(w.rules.tag_key(train)) == {}


def test_an_adapter_project_takes_moderation_manifests(w: World) -> None:
    project = w.project("mod", Feature.CONTENT_MODERATION)
    lines = [{"source-ref": f"s3://imgs/{i}.jpg", "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": "Violence"}] if i % 2 else []}} for i in range(9)]
    lines.append({"source-ref": "s3://imgs/w.jpg", "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": "Weapons"}]}})
    train = w.create(project, manifest=w.manifest("m", lines))
    assert train.status is DatasetStatus.CREATE_COMPLETE
    assert stats(w, train) == (10, 10, 1, 1)
    (bad,) = w.lines(train, has_errors=True)
    assert bad["errors"][0]["code"] == "ERROR_NOT_TOP_LEVEL_MODERATION_LABEL"


# ---- ARNs, policy resources, commands ------------------------------------------------------
def test_dataset_arns_parse_and_name_their_project_for_policies() -> None:
    arn = "arn:aws:rekognition:eu-west-1:123456789012:project/shelves/dataset/train/17"
    assert ARNS.dataset("shelves", "TRAIN", 17) == arn
    assert ARNS.parse(arn) == ("project", "shelves/dataset/train/17")
    assert ARNS.parse(arn.replace("train", "valid")) is None
    assert DatasetRef.parse("shelves/dataset/test/5") == DatasetRef("shelves", TEST, 5)
    for bad in ("shelves/5", "shelves/dataset/valid/5", "shelves/dataset/test/", "/dataset/test/5"):
        assert DatasetRef.parse(bad) is None
    assert request_resources("DescribeDataset", {"DatasetArn": arn.replace("eu-west-1", "x")},
                             ARNS) == [arn]
    project = "arn:aws:rekognition:eu-west-1:123456789012:project/shelves/9"
    assert request_resources("CreateDataset", {"ProjectArn": project, "DatasetType": "TEST",
                                               "DatasetSource": {"DatasetArn": arn}},
                             ARNS) == [project, arn]
    test = arn.replace("train", "test")
    assert request_resources("DistributeDatasetEntries", {"Datasets": [
        {"Arn": arn}, {"Arn": test}]}, ARNS) == [arn, test]


def test_the_entries_command_round_trips_its_payload() -> None:
    ref = DatasetRef("p", TRAIN, 3)
    command = AddDatasetEntries(ref, (
        Entry('{"source-ref":"s3://b/k"}', "s3://b/k", ("a", "b"), True, False),))
    assert command.payload() == {"dataset": {"project": "p", "type": "TRAIN", "created_ms": 3},
                                 "entries": [['{"source-ref":"s3://b/k"}', "s3://b/k",
                                              ["a", "b"], True, False]]}
    assert AddDatasetEntries.from_payload(command.payload()) == command


# ---- red-team findings (issue 25) -----------------------------------------------------------
def test_a_copy_between_projects_of_different_feature_is_refused(w: World) -> None:
    custom = w.project("first")
    source = w.create(custom, manifest=w.manifest("m", [image(i) for i in range(4)]))
    adapter = w.project("second", Feature.CONTENT_MODERATION)
    with pytest.raises(InvalidParameterException, match="cannot be copied into a "
                       "CONTENT_MODERATION project"):
        w.create(adapter, copy=source.resource_id)
    # The applier refuses it too (a command decided elsewhere, or an older node's).
    w.tick()
    now = int(w.clock[0] * 1000)
    made = Dataset(DatasetKey("second", TRAIN), adapter.created_ms, now, now,
                   DatasetStatus.CREATE_COMPLETE, "", StatusCode.SUCCESS)
    with pytest.raises(InvalidParameterException, match="cannot be copied"):
        w.ledger.submit(CreateDataset(made, DatasetRef("first", TRAIN, source.created_ms)))
    assert w.service.of_project(adapter) == []


def test_copying_a_busy_dataset_is_invalid_parameter_as_botocore_models(w: World) -> None:
    import botocore.session

    errors = {e.name for e in botocore.session.get_session().get_service_model(
        "rekognition").operation_model("CreateDataset").error_shapes}
    assert "ResourceInUseException" not in errors and "InvalidParameterException" in errors
    first = w.project("first")
    source = w.create(first)
    w.ledger.submit(SetDatasetStatus(DatasetRef("first", TRAIN, source.created_ms),
                                     DatasetStatus.UPDATE_IN_PROGRESS, "", StatusCode.SUCCESS,
                                     int(w.clock[0] * 1000)))
    second = w.project("second")
    with pytest.raises(InvalidParameterException, match="UPDATE_IN_PROGRESS"):
        w.create(second, copy=source.resource_id)
    now = int(w.clock[0] * 1000)
    made = Dataset(DatasetKey("second", TEST), second.created_ms, now, now,
                   DatasetStatus.CREATE_COMPLETE, "", StatusCode.SUCCESS)
    with pytest.raises(InvalidParameterException, match="UPDATE_IN_PROGRESS"):
        w.ledger.submit(CreateDataset(made, DatasetRef("first", TRAIN, source.created_ms)))


def _busy(w: World) -> tuple[Dataset, DatasetRef]:
    dataset = w.create(w.project())
    ref = DatasetRef("shelves", TRAIN, dataset.created_ms)
    w.ledger.submit(SetDatasetStatus(ref, DatasetStatus.UPDATE_IN_PROGRESS, "",
                                     StatusCode.SUCCESS, int(w.clock[0] * 1000), "work-1",
                                     600_000))
    return dataset, ref


def test_entries_arriving_keep_work_alive_and_its_own_close_is_always_taken(w: World) -> None:
    dataset, ref = _busy(w)
    for _ in range(3):  # 3 x 400 s: past the 600 s window from the start, never from the last
        w.tick(400)
        w.ledger.submit(AddDatasetEntries(ref, (Entry('{"source-ref":"s3://imgs/a.jpg"}',
                                                      "s3://imgs/a.jpg"),),
                                          int(w.clock[0] * 1000), "work-1"))
        assert w.service.describe(dataset.resource_id)[0].status is \
            DatasetStatus.UPDATE_IN_PROGRESS
    w.tick(900)  # the filler was slow to close: the dataset reads stale...
    assert w.service.describe(dataset.resource_id)[0].status is DatasetStatus.UPDATE_FAILED
    with pytest.raises(ResourceInUseException, match="UPDATE_FAILED already"):  # not its own
        w.ledger.submit(SetDatasetStatus(ref, DatasetStatus.UPDATE_COMPLETE, "done",
                                         StatusCode.SUCCESS, int(w.clock[0] * 1000), "other",
                                         600_000))
    done = w.ledger.submit(SetDatasetStatus(ref, DatasetStatus.UPDATE_COMPLETE, "done",
                                            StatusCode.SUCCESS, int(w.clock[0] * 1000),
                                            "work-1", 600_000))
    assert (done.status, done.message, done.work) == (DatasetStatus.UPDATE_COMPLETE, "done", "")
    assert w.service.describe(dataset.resource_id)[0].status is DatasetStatus.UPDATE_COMPLETE


def test_an_abandoned_filler_cannot_touch_the_work_started_after_it(w: World) -> None:
    dataset, ref = _busy(w)
    w.tick(700)
    w.ledger.submit(SetDatasetStatus(ref, DatasetStatus.UPDATE_IN_PROGRESS, "",
                                     StatusCode.SUCCESS, int(w.clock[0] * 1000), "work-2",
                                     600_000))
    entry = Entry('{"source-ref":"s3://imgs/a.jpg"}', "s3://imgs/a.jpg")
    late = AddDatasetEntries(ref, (entry,), int(w.clock[0] * 1000), "work-1")
    with pytest.raises(ResourceInUseException, match="abandoned"):
        w.ledger.submit(late)
    with pytest.raises(ResourceInUseException, match="abandoned"):
        w.ledger.submit(SetDatasetStatus(ref, DatasetStatus.UPDATE_COMPLETE, "",
                                         StatusCode.SUCCESS, int(w.clock[0] * 1000), "work-1",
                                         600_000))
    assert stats(w, dataset)[1] == 0
    row = w.store.get("shelves", "TRAIN")
    assert row is not None and Dataset.of(row).work == "work-2"
    assert w.service.describe(dataset.resource_id)[0].message == ""  # the id is not shown


def test_the_stale_window_comes_from_the_command_not_the_applying_node(w: World) -> None:
    dataset, ref = _busy(w)
    w.tick(5)
    at = int(w.clock[0] * 1000)
    with pytest.raises(ResourceInUseException, match="cannot be deleted"):
        w.ledger.submit(DeleteDataset(ref, at))  # an older record: this node's 600 s
    w.ledger.submit(DeleteDataset(ref, at, 1000))  # decided where the window is 1 s
    project = w.projects.get("shelves")
    assert project is not None and w.service.of_project(project) == []


def test_the_service_writes_its_window_work_and_times_into_the_commands(w: World) -> None:
    sent: list[Command[Any]] = []
    submit = w.ledger.submit

    def record(command: Command[Any]) -> Any:
        sent.append(command)
        return submit(command)

    project = w.project()
    w.ledger.submit = record  # type: ignore[method-assign]
    w.create(project, manifest=w.manifest("m", [image(i) for i in range(3)]))
    create, add, close = sent
    assert isinstance(create, CreateDataset) and create.stale_ms == 600_000
    assert isinstance(add, AddDatasetEntries) and add.at_ms is not None
    assert isinstance(close, SetDatasetStatus) and close.stale_ms == 600_000
    assert create.dataset.work and add.work == close.work == create.dataset.work
    for command in sent:  # the new keys survive the log
        assert type(command).from_payload(json.loads(json.dumps(command.payload()))) == command
