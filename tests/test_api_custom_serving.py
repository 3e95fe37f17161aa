"""Serving trained versions through boto3 against a real daemon: adapters and Custom Labels.

Frames of the shared clips (small JPEGs under the daemon's ``objects.local_root``): an
adapter learns the v7 label ``Violence`` on the three head-pose clips' frames (a benign
proxy concept the base pack never emits) against the classroom and walking clips; a Custom
Labels model learns the three scenes. Each clip gives its first frames to training and its
last ones to the test set (held out: never trained on), and the versions answer
DetectModerationLabels(ProjectVersion=...) and DetectCustomLabels on those. The daemon has
access keys: one key is denied the projects, and with them their versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import botocore.session
import pytest
from botocore.exceptions import WaiterError
from projects_helpers import (
    HEAD,
    OTHER,
    OUT,
    WAIT,
    FrameObjects,
    deny_policies,
    frame_objects,
    keyed_client,
    keyed_config,
    moderation_line,
    pending_elsewhere,
    running,
    scene,
    scenes_project,
    train_adapter,
    train_version,
)

from streamproc.daemon import Daemon
from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ResourceNotReadyException,
)
from streamproc.moderation.adapter import Adapter, no_backbone
from streamproc.projects import versions_serving
from streamproc.projects.types import Feature
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.projects.versions_service import VersionService
from streamproc.projects.versions_serving import VersionModels
from streamproc.training.heads import TrainedHeads

TRAIN, HELD_OUT = 8, 4  # frames per clip
ADMIN_ID, ADMIN_SECRET = "AKIDSERVINGADMIN0001", "admin/SECRET+serving-1"
DENIED_ID, DENIED_SECRET = "AKIDSERVINGDENIED001", "denied/SECRET+serving-2"
POLICIES = deny_policies(DENIED_ID, ["arn:aws:rekognition:*:*:project/tuned/*",
                                     "arn:aws:rekognition:*:*:project/scenes/*"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> FrameObjects:
    return frame_objects(tmp_path_factory.mktemp("serving") / "objects", TRAIN, HELD_OUT)


@pytest.fixture(scope="module")
def daemon(home: FrameObjects) -> Iterator[Daemon]:
    yield from running(Daemon(keyed_config(
        home.root.parent, home, {ADMIN_ID: ADMIN_SECRET, DENIED_ID: DENIED_SECRET}, POLICIES)))


@pytest.fixture(scope="module")
def rek(daemon: Daemon) -> Any:
    return keyed_client(daemon.endpoint, ADMIN_ID, ADMIN_SECRET)


@pytest.fixture(scope="module")
def denied(daemon: Daemon) -> Any:
    return keyed_client(daemon.endpoint, DENIED_ID, DENIED_SECRET)


@pytest.fixture(scope="module")
def adapter(rek: Any, home: FrameObjects) -> tuple[str, str]:
    """(project ARN, trained adapter ARN)."""
    return train_adapter(rek, home, "a1")


@pytest.fixture(scope="module")
def scenes(rek: Any, home: FrameObjects) -> tuple[str, str]:
    """(project ARN, trained Custom Labels version ARN, not started)."""
    project = scenes_project(rek, home)
    return project, train_version(rek, project, "v1", "v1")


def _names(response: dict[str, Any]) -> set[str]:
    return {label["Name"] for label in response["ModerationLabels"]}


def test_an_adapter_finds_its_label_on_held_out_frames_and_the_base_model_does_not(
        rek: Any, home: FrameObjects, adapter: tuple[str, str]) -> None:
    _, arn = adapter
    hits = {True: 0, False: 0}
    for clip, images in home.held.items():
        for image in images:
            out = rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn)
            assert out["ProjectVersion"] == arn and out["ModerationModelVersion"]
            hits[clip in HEAD] += "Violence" in _names(out)
            base = rek.detect_moderation_labels(Image={"Bytes": image}, MinConfidence=0)
            assert "Violence" not in _names(base) and "ProjectVersion" not in base
    positives, negatives = len(HEAD) * HELD_OUT, len(OTHER) * HELD_OUT
    print(f"adapter on held-out frames: Violence on {hits[True]}/{positives} positives, "
          f"{hits[False]}/{negatives} negatives")
    assert hits[True] >= positives - 1 and hits[False] <= 1


def test_min_confidence_applies_as_given_with_an_adapter(
        rek: Any, home: FrameObjects, adapter: tuple[str, str]) -> None:
    _, arn = adapter
    image = home.held[HEAD[0]][0]
    every = rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn,
                                         MinConfidence=0)["ModerationLabels"]
    violence = next(x["Confidence"] for x in every if x["Name"] == "Violence")
    above = rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn,
                                         MinConfidence=min(100.0, violence + 0.01))
    assert "Violence" not in _names(above)


def test_an_adapter_not_trained_is_not_ready_and_a_deleted_one_is_not_found(
        rek: Any, daemon: Daemon, home: FrameObjects, adapter: tuple[str, str]) -> None:
    project, _ = adapter
    pending = pending_elsewhere(daemon, project)
    image = home.held[HEAD[0]][0]
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="still being trained"):
        rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=pending)
    clip = OTHER[0]  # no image names a label: the training fails
    failed = rek.create_project_version(
        ProjectArn=project, VersionName="nothing", OutputConfig={"S3Bucket": OUT},
        TrainingData={"Assets": [home.manifest("none.manifest", [
            moderation_line(ref, []) for ref in home.train[clip]])]},
        TestingData={"AutoCreate": True})["ProjectVersionArn"]
    with pytest.raises(WaiterError, match="TRAINING_FAILED|failure state"):
        rek.get_waiter("project_version_training_completed").wait(
            ProjectArn=project, VersionNames=["nothing"], WaiterConfig=WAIT)
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="TRAINING_FAILED"):
        rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=failed)
    rek.delete_project_version(ProjectVersionArn=failed)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=failed)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):  # another region's spelling
        rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=failed.replace(
            ":us-east-1:", ":eu-west-1:"))


class FakeVersions:
    """VersionService's reads, over a dict of versions."""

    def __init__(self) -> None:
        self.versions: dict[str, Version] = {}
        self.loads = 0

    def find(self, resource_id: str) -> Version | None:
        return self.versions.get(resource_id)

    def require(self, resource_id: str) -> Version:
        if resource_id not in self.versions:
            raise ResourceNotFoundException(f"The project version {resource_id} does not exist")
        return self.versions[resource_id]

    def model(self, version: Version) -> bytes:
        return version.ref.name.encode()


def _adapter_version(name: str, status: VersionStatus) -> Version:
    return Version(VersionRef("p", name, 1), 1, Feature.CONTENT_MODERATION, status, "m", 1,
                   "local", {}, {})


def test_loaded_adapters_are_cached_bounded_and_dropped_when_deleted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    versions = FakeVersions()
    loaded: list[str] = []

    def load(arn: str, data: bytes, backbone: str) -> Adapter:
        loaded.append(data.decode())
        return Adapter(arn, cast(TrainedHeads, None))

    monkeypatch.setattr(versions_serving, "load_adapter", load)
    models = VersionModels(cast(VersionService, versions), lambda: "backbone", size=2)
    for name in ("a", "b", "c"):
        versions.versions[f"p/version/{name}/1"] = _adapter_version(
            name, VersionStatus.TRAINING_COMPLETED)
    assert models.adapter("p/version/a/1", "arn-a").arn == "arn-a"
    models.adapter("p/version/a/1", "arn-a")
    assert loaded == ["a"]  # the second request used the loaded heads
    models.adapter("p/version/b/1", "arn-b")
    models.adapter("p/version/a/1", "arn-a")  # a is now the most recently used
    models.adapter("p/version/c/1", "arn-c")
    assert models.cached() == ("p/version/a/1", "p/version/c/1")  # b, the least, went
    del versions.versions["p/version/a/1"]
    with pytest.raises(ResourceNotFoundException):
        models.adapter("p/version/a/1", "arn-a")
    assert models.cached() == ("p/version/c/1",)
    versions.versions["p/version/t/1"] = _adapter_version("t", VersionStatus.TRAINING_FAILED)
    with pytest.raises(ResourceNotReadyException, match="TRAINING_FAILED"):
        models.adapter("p/version/t/1", "arn-t")
    with pytest.raises(InvalidParameterException, match="adapter"):
        models.classifier("p/version/c/1")
    assert loaded == ["a", "b", "c"]


@pytest.mark.parametrize("operation", ["DetectModerationLabels", "DetectCustomLabels"])
def test_damaged_model_bytes_are_a_modelled_not_ready_error(operation: str) -> None:
    """Bytes that are no heads (b"a"): ResourceNotReadyException, which botocore lists."""
    errors = botocore.session.get_session().get_service_model("rekognition").operation_model(
        operation).error_shapes
    assert "ResourceNotReadyException" in {shape.name for shape in errors}
    versions = FakeVersions()
    models = VersionModels(cast(VersionService, versions), lambda: "backbone")
    if operation == "DetectModerationLabels":
        versions.versions["p/version/a/1"] = _adapter_version("a", VersionStatus.TRAINING_COMPLETED)
        with pytest.raises(ResourceNotReadyException, match="model cannot be read"):
            models.adapter("p/version/a/1", "arn-a")
    else:
        versions.versions["p/version/c/1"] = Version(
            VersionRef("p", "c", 1), 1, Feature.CUSTOM_LABELS, VersionStatus.RUNNING, "m", 1,
            "local", {}, {})
        with pytest.raises(ResourceNotReadyException, match="model cannot be read"):
            models.classifier("p/version/c/1")
    assert models.cached() == ()


def test_no_backbone_is_one_answer_for_every_version() -> None:
    versions = FakeVersions()
    versions.versions["p/version/a/1"] = _adapter_version("a", VersionStatus.TRAINING_COMPLETED)
    models = VersionModels(cast(VersionService, versions), lambda: None)
    with pytest.raises(InvalidParameterException) as caught:
        models.adapter("p/version/a/1", "arn-a")
    assert caught.value.message == no_backbone().message
    assert "no feature extractor" in caught.value.message


def test_a_custom_labels_model_serves_only_while_running(
        rek: Any, home: FrameObjects, scenes: tuple[str, str], adapter: tuple[str, str]) -> None:
    project, arn = scenes
    image = home.held[OTHER[0]][0]
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="not running"):
        rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="Custom Labels"):
        rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn)
    with pytest.raises(rek.exceptions.InvalidParameterException, match="adapter"):
        rek.detect_custom_labels(ProjectVersionArn=adapter[1], Image={"Bytes": image})
    rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    rek.get_waiter("project_version_running").wait(ProjectArn=project, VersionNames=["v1"],
                                                   WaiterConfig=WAIT)
    right = total = 0
    for clip, images in home.held.items():
        for held in images:
            labels = rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": held},
                                              MinConfidence=0)["CustomLabels"]
            assert sorted(x["Name"] for x in labels) == ["classroom", "head", "walking"]
            assert [x["Confidence"] for x in labels] == sorted(
                (x["Confidence"] for x in labels), reverse=True)
            right += labels[0]["Name"] == scene(clip)
            total += 1
    print(f"custom labels on held-out frames: {right}/{total} right")
    assert right >= 0.9 * total
    rek.stop_project_version(ProjectVersionArn=arn)
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="STOPPED"):
        rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
    rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)  # for the next test


def test_max_results_and_min_confidence(rek: Any, daemon: Daemon, home: FrameObjects,
                                       scenes: tuple[str, str]) -> None:
    _, arn = scenes
    rek.get_waiter("project_version_running").wait(ProjectArn=scenes[0], VersionNames=["v1"],
                                                   WaiterConfig=WAIT)
    image = {"Bytes": home.held[OTHER[1]][0]}
    every = rek.detect_custom_labels(ProjectVersionArn=arn, Image=image,
                                     MinConfidence=0)["CustomLabels"]
    assert len(every) == 3 and "Geometry" not in every[0]
    top = rek.detect_custom_labels(ProjectVersionArn=arn, Image=image, MaxResults=1,
                                   MinConfidence=0)["CustomLabels"]
    assert top == every[:1]
    cut = every[1]["Confidence"] - 0.01  # below its 4-decimal rounding on the wire
    kept = rek.detect_custom_labels(ProjectVersionArn=arn, Image=image,
                                    MinConfidence=cut)["CustomLabels"]
    assert kept == [x for x in every if x["Confidence"] >= cut]
    # Without MinConfidence, each class at its assumed threshold, stored by the training.
    assert daemon.storage is not None
    stored = daemon.storage.versions.get("scenes", "v1")
    assert stored is not None
    thresholds = stored.result["AssumedThresholds"]
    assert sorted(thresholds) == ["classroom", "head", "walking"]
    print(f"assumed thresholds: {thresholds}")
    assumed = rek.detect_custom_labels(ProjectVersionArn=arn, Image=image)["CustomLabels"]
    assert [x["Name"] for x in assumed][:1] == ["walking"]
    assert [x["Name"] for x in assumed] == [
        x["Name"] for x in every if x["Confidence"] >= thresholds[x["Name"]]]


def test_a_key_denied_a_project_cannot_use_its_versions(
        rek: Any, denied: Any, home: FrameObjects, adapter: tuple[str, str],
        scenes: tuple[str, str]) -> None:
    image = {"Bytes": home.held[HEAD[0]][0]}
    assert "ModerationLabels" in denied.detect_moderation_labels(Image=image)
    with pytest.raises(denied.exceptions.AccessDeniedException):
        denied.detect_moderation_labels(Image=image, ProjectVersion=adapter[1])
    with pytest.raises(denied.exceptions.AccessDeniedException):
        denied.detect_custom_labels(ProjectVersionArn=scenes[1], Image=image)
