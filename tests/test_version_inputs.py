"""A version's training inputs (projects/versions_inputs.py): manifests read within bounds,
source-refs de-duplicated, line numbers as the manifests number them, labels an adapter
cannot train on, the deadline and the stop signal while reading."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from streamproc.config import load_config
from streamproc.errors import InvalidParameterException, ResourceInUseException
from streamproc.ledger import Appliers, LocalLedger
from streamproc.projects.datasets import Entry
from streamproc.projects.rules import ProjectRules
from streamproc.projects.service import ProjectService
from streamproc.projects.types import Feature, NewProject, Project
from streamproc.projects.version_spec import OutputTarget, TrainingInput
from streamproc.projects.versions import PINNED, NewVersion, Version, VersionRef, VersionStatus
from streamproc.projects.versions_inputs import (
    MAX_ASSETS,
    Gathered,
    InputReader,
    TrainingFailure,
    manifest_refs,
)
from streamproc.projects.versions_requests import check_copyable, check_name_free
from streamproc.projects.versions_rules import VersionRules
from streamproc.projects.versions_service import VersionService
from streamproc.rekognition.constants import Arns
from streamproc.storage.datasets import DatasetStore, StoredDataset
from streamproc.storage.db import Database
from streamproc.storage.objects import ObjectStore
from streamproc.storage.projects import ProjectStore
from streamproc.storage.tags import TagStore
from streamproc.storage.versions import VersionStore
from streamproc.training.limits import Deadline


@dataclass
class World:
    root: Path
    datasets: DatasetStore
    config: Any

    def reader(self) -> InputReader:
        return InputReader(self.datasets, ObjectStore(self.config.objects), self.config.projects)

    def manifest(self, name: str, lines: list[Any]) -> dict[str, Any]:
        (self.root / "mani" / name).write_text("".join(
            (x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
        return {"GroundTruthManifest": {"S3Object": {"Bucket": "mani", "Name": name}}}


def _world(tmp_path: Path, **overrides: Any) -> Iterator[World]:
    root = tmp_path / "objects"
    for bucket in ("mani", "img", "out"):
        (root / bucket).mkdir(parents=True, exist_ok=True)
    config = load_config(None, {"objects.local_root": str(root), **overrides})
    db = Database(tmp_path / "db.sqlite")
    db.open()
    yield World(root, DatasetStore(db), config)
    db.close()


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path)


def cl(n: int, name: str) -> dict[str, Any]:
    return {"source-ref": f"s3://img/{n}.jpg", "cls": 0, "cls-metadata": {
        "class-name": name, "type": "groundtruth/image-classification"}}


def version(training: list[dict[str, Any]] | None, testing: dict[str, Any] | None = None,
            feature: Feature = Feature.CUSTOM_LABELS) -> Version:
    spec: dict[str, Any] = {"OutputConfig": {"S3Bucket": "out"}}
    if training is not None:
        spec["TrainingData"] = {"Assets": training}
    spec["TestingData"] = testing or {"AutoCreate": True}
    return Version(VersionRef("p", "v", 1), 1, feature, VersionStatus.TRAINING_IN_PROGRESS,
                   "", 1, "local", spec, {})


def gather(w: World, v: Version, stop: threading.Event | None = None,
           deadline: Deadline | None = None) -> Gathered:
    return w.reader().gather(v, stop or threading.Event(), deadline)

_data = TrainingInput.parse  # a TrainingData / TestingData as the API parses it


def good(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [cl(n, "red" if n % 2 else "blue") for n in range(start, start + count)]


def test_the_number_of_assets_is_capped_at_create() -> None:
    asset = {"GroundTruthManifest": {"S3Object": {"Bucket": "mani", "Name": "a"}}}
    assert len(manifest_refs(_data({"Assets": [asset] * MAX_ASSETS}))) == MAX_ASSETS
    with pytest.raises(TrainingFailure, match=f"at most {MAX_ASSETS}"):
        manifest_refs(_data({"Assets": [asset] * (MAX_ASSETS + 1)}))


def test_each_manifest_and_all_of_a_set_are_bounded_in_bytes(tmp_path: Path) -> None:
    for w in _world(tmp_path, **{"projects.dataset_max_manifest_bytes": 3000}):
        small = w.manifest("a", good(10))  # ~1,100 bytes
        assert len(gather(w, version([small])).train) > 0
        big = w.manifest("big", good(40))
        with pytest.raises(TrainingFailure, match="dataset_max_manifest_bytes"):
            gather(w, version([big]))
        with pytest.raises(TrainingFailure, match="dataset_max_manifest_bytes"):
            gather(w, version([small, w.manifest("b", good(10, 10)),
                               w.manifest("c", good(10, 20))]))


def test_lines_past_dataset_max_entries_fail_the_training(tmp_path: Path) -> None:
    for w in _world(tmp_path, **{"projects.dataset_max_entries": 20}):
        assert len(gather(w, version([w.manifest("a", good(20))])).train) == 16
        with pytest.raises(TrainingFailure, match="more than 20 JSON lines"):
            gather(w, version([w.manifest("b", good(21))]))
        lines = good(20) + ["{broken"]
        with pytest.raises(TrainingFailure, match="dataset_max_entries"):
            gather(w, version([w.manifest("c", lines)]))


def test_reading_stops_one_past_training_max_images(tmp_path: Path) -> None:
    for w in _world(tmp_path, **{"projects.training_max_images": 30}):
        assert len(gather(w, version([w.manifest("a", good(30))])).train) == 24
        with pytest.raises(TrainingFailure, match="more than 30 usable images"):
            gather(w, version([w.manifest("b", good(20))],
                              {"Assets": [w.manifest("c", good(11, 20))]}))


def test_a_source_ref_named_again_replaces_its_entry_as_in_a_dataset(w: World) -> None:
    lines = good(10) + [cl(n, "green") for n in range(10)]
    found = gather(w, version([w.manifest("a", lines)]))
    labels = {s.labels for s in found.train + found.test}
    assert labels == {("green",)} and len(found.train) + len(found.test) == 10
    assert found.lines == 10


def test_errors_name_the_manifest_s_line_and_the_asset(w: World) -> None:
    first = w.manifest("a", good(10))
    second = w.manifest("b", ["", "", *[json.dumps(x) for x in good(10, 10)], "{broken"])
    found = gather(w, version([first, second]))
    (error,) = found.errors
    assert (error["line-number"], error["line-numer"], error["asset"]) == (13, 13, 1)
    bad = w.manifest("c", ["", *["{broken"] * 5, *[json.dumps(x) for x in good(4)]])
    with pytest.raises(TrainingFailure, match=r"asset 1, line 2: ERROR_INVALID_JSON_LINE"):
        gather(w, version([first, bad]))
    with pytest.raises(TrainingFailure, match=r"\): line 2: ERROR_INVALID_JSON_LINE"):
        gather(w, version([bad]))


def test_a_dataset_label_outside_the_taxonomy_fails_an_adapter_with_the_reason(
        w: World) -> None:
    w.datasets.put(StoredDataset("p", 1, "TRAIN", 5, 5, "CREATE_COMPLETE", "", "SUCCESS"))
    rows = [Entry(json.dumps(cl(n, "red")), f"s3://img/{n}.jpg", ("red",), True, False)
            for n in range(10)]
    w.datasets.add("p", "TRAIN", [e.stored() for e in rows])
    with pytest.raises(TrainingFailure, match="'red'.*not a top-level label"):
        gather(w, version(None, feature=Feature.CONTENT_MODERATION))


def test_the_deadline_and_the_stop_signal_end_the_reading(w: World) -> None:
    asset = w.manifest("a", good(200))
    ticks = iter(float(t) for t in range(100_000))
    with pytest.raises(TrainingFailure, match="did not finish within its limit of 50 s"):
        gather(w, version([asset]), deadline=Deadline(50.0, clock=lambda: next(ticks)))
    assert next(ticks) < 60  # stopped at the deadline, not after the whole manifest
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingFailure, match="stopped"):
        gather(w, version([asset]), stop)
    calls = iter(range(100_000))
    with pytest.raises(TrainingFailure, match="stopped"):
        gather(w, version([asset]), deadline=Deadline(3600.0, stopped=lambda: next(calls) > 5))
    assert next(calls) == 7


def test_a_test_set_with_nothing_usable_fails_rather_than_being_split(w: World) -> None:
    train = w.manifest("a", good(10))
    unlabeled = w.manifest("t", [{"source-ref": "s3://img/x.jpg"}, "{broken"])
    with pytest.raises(TrainingFailure, match="the test set has no usable images"):
        gather(w, version([train], {"Assets": [unlabeled]}))
    asked = gather(w, version([train], {"AutoCreate": True}))
    assert asked.auto_split and asked.test
    bare = version([train])
    del bare.spec["TestingData"]  # no test data at all: split (a documented deviation)
    assert gather(w, bare).auto_split
    tested = gather(w, version([train], {"Assets": [w.manifest("u", good(4, 50))]}))
    assert not tested.auto_split and len(tested.test) == 4 and len(tested.train) == 10


def test_an_error_line_without_a_source_ref_has_no_source_ref_key(w: World) -> None:
    lines = [*good(10), "{broken", {"source-ref": "s3://img/z.jpg", "cls": 0,
                                    "cls-metadata": {"type": "groundtruth/image-classification"}}]
    found = gather(w, version([w.manifest("a", lines)]))
    assert len(found.errors) == 2
    broken, unnamed = sorted(found.errors, key=lambda e: e["line-number"])
    assert "source-ref" not in broken and broken["line-number"] == 11
    assert unnamed["source-ref"] == "s3://img/z.jpg"  # named: kept


def _pinned(pins: dict[str, int], testing: dict[str, Any] | None = None) -> Version:
    v = version(None, testing)
    if testing is None:
        del v.spec["TestingData"]
    v.spec[PINNED] = pins
    return v


def test_datasets_are_read_as_the_version_pinned_them(w: World) -> None:
    for type_, start in (("TRAIN", 0), ("TEST", 100)):
        w.datasets.put(StoredDataset("p", 1, type_, 5, 7, "CREATE_COMPLETE", "", "SUCCESS"))
        w.datasets.add("p", type_, [Entry(json.dumps(x), x["source-ref"], (
            x["cls-metadata"]["class-name"],), True, False).stored() for x in good(10, start)])
    both = gather(w, _pinned({"TRAIN": 7, "TEST": 7}))
    assert (len(both.train), len(both.test), both.auto_split) == (10, 10, False)
    unpinned = gather(w, _pinned({"TRAIN": 7}))  # no TEST dataset when it was created
    assert unpinned.auto_split and len(unpinned.train) + len(unpinned.test) == 10
    w.datasets.put(StoredDataset("p", 1, "TEST", 5, 9, "UPDATE_COMPLETE", "", "SUCCESS"))
    with pytest.raises(TrainingFailure, match="TEST dataset changed after the version"):
        gather(w, _pinned({"TRAIN": 7, "TEST": 7}))
    w.datasets.put(StoredDataset("p", 1, "TRAIN", 5, 7, "UPDATE_IN_PROGRESS", "", "SUCCESS"))
    with pytest.raises(TrainingFailure, match="TRAIN dataset changed"):
        gather(w, _pinned({"TRAIN": 7}))
    w.datasets.delete("p", "TRAIN")
    with pytest.raises(TrainingFailure, match="TRAIN dataset changed"):
        gather(w, _pinned({"TRAIN": 7}))
    w.datasets.put(StoredDataset("p", 1, "TRAIN", 5, 7, "CREATE_COMPLETE", "", "SUCCESS"))
    with pytest.raises(TrainingFailure, match="too few usable images: 0"):
        gather(w, version(None))  # an older record pins nothing: read as it stands


# ---- CreateProjectVersion / CopyProjectVersion: what is refused before any training ------
@dataclass
class Versions:
    service: VersionService
    project: Project
    other: Project


@pytest.fixture
def versions(tmp_path: Path) -> Iterator[Versions]:
    root = tmp_path / "objects"
    (root / "out").mkdir(parents=True)
    config = load_config(None, {"objects.local_root": str(root)})
    db = Database(tmp_path / "v.sqlite")
    db.open()
    appliers = Appliers()
    projects, tags = ProjectStore(db), TagStore(db)
    ProjectRules(projects, tags, config).register(appliers)
    store = VersionStore(db)
    VersionRules(store, projects, tags, config).register(appliers)
    ledger = LocalLedger(appliers)
    clock = [1718000000.0]

    def now() -> float:
        clock[0] += 1
        return clock[0]

    arns = Arns("us-east-1", "000000000000")
    project_service = ProjectService(projects, ledger, arns, now)
    names = {}
    for name in (".", "fine"):
        names[name] = project_service.create(NewProject(name, Feature.CUSTOM_LABELS, None))
    service = VersionService(store, project_service, ObjectStore(config.objects), ledger, arns,
                             "local", lambda: None, lambda: None, now)
    yield Versions(service, names["fine"], names["."])
    db.close()


ASSET = {"GroundTruthManifest": {"S3Object": {"Bucket": "mani", "Name": "a"}}}
OUT = OutputTarget("out", "models/")


@pytest.mark.parametrize("name", [".", ".."])
def test_a_name_that_makes_the_output_key_unwritable_is_refused_at_create(
        versions: Versions, name: str) -> None:
    with pytest.raises(InvalidParameterException, match=r"out/models/fine/\.{1,2}/"):
        versions.service.create(NewVersion(versions.project.resource_id, name, OUT))
    with pytest.raises(InvalidParameterException, match=r"out/models/\./v/"):
        versions.service.create(NewVersion(versions.other.resource_id, "v", OUT))
    long = "x" * 255
    with pytest.raises(InvalidParameterException, match="over 1024"):
        versions.service.create(NewVersion(versions.project.resource_id, long,
                                           OutputTarget("out", "p/" * 250)))
    made = versions.service.create(NewVersion(versions.project.resource_id, "v1", OUT,
                                              _data({"Assets": [ASSET]})))
    assert made.status is VersionStatus.TRAINING_IN_PROGRESS


def test_testing_data_with_auto_create_and_assets_together_is_refused(
        versions: Versions) -> None:
    both = {"AutoCreate": True, "Assets": [ASSET]}
    with pytest.raises(InvalidParameterException, match="not both"):
        versions.service.create(NewVersion(versions.project.resource_id, "v", OUT,
                                           _data({"Assets": [ASSET]}), _data(both)))
    for testing in ({"AutoCreate": True}, {"Assets": [ASSET]}, {"AutoCreate": False,
                                                                "Assets": [ASSET]}):
        versions.service.create(NewVersion(versions.project.resource_id,
                                           f"v{len(str(testing))}", OUT,
                                           _data({"Assets": [ASSET]}), _data(testing)))


def test_too_many_assets_are_invalid_parameter_at_create(versions: Versions) -> None:
    with pytest.raises(InvalidParameterException, match=f"at most {MAX_ASSETS}"):
        versions.service.create(NewVersion(versions.project.resource_id, "v", OUT,
                                           _data({"Assets": [ASSET] * (MAX_ASSETS + 1)})))


def test_the_copy_rules_are_one_function_each_for_the_service_and_the_applier() -> None:
    check_name_free(False, "p", "v")
    with pytest.raises(ResourceInUseException, match="The project p already has a version v"):
        check_name_free(True, "p", "v")
    trained = Version(VersionRef("p", "v", 1), 1, Feature.CUSTOM_LABELS,
                      VersionStatus.TRAINING_COMPLETED, "m", 1, "local", {}, {})
    check_copyable(trained)
    check_copyable(replace(trained, status=VersionStatus.COPYING_COMPLETED))
    for status in (VersionStatus.TRAINING_IN_PROGRESS, VersionStatus.TRAINING_FAILED):
        with pytest.raises(ResourceInUseException, match=f"{status.value}: only a trained"):
            check_copyable(replace(trained, status=status))
