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

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import av
import boto3
import cv2
import numpy as np
import pytest
from botocore.config import Config as BotoConfig
from conftest import make_config, retry_resets

from streamproc.daemon import Daemon
from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ResourceNotReadyException,
)
from streamproc.moderation.adapter import Adapter
from streamproc.projects import versions_serving
from streamproc.projects.types import Feature
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.projects.versions_commands import CreateVersion
from streamproc.projects.versions_service import VersionService
from streamproc.projects.versions_serving import VersionModels
from streamproc.training.heads import TrainedHeads

VIDEO = Path("/work/shared/data/video/intel_sample_videos")
IMAGES, OUT = "frames", "results"
WAIT = {"Delay": 1, "MaxAttempts": 120}
TRAIN, HELD_OUT = 8, 4  # frames per clip
HEAD = ("head-pose-face-detection-female-and-male.mp4", "head-pose-face-detection-female.mp4",
        "head-pose-face-detection-male.mp4")
OTHER = ("classroom.mp4", "face-demographics-walking.mp4")
ADMIN_ID, ADMIN_SECRET = "AKIDSERVINGADMIN0001", "admin/SECRET+serving-1"
DENIED_ID, DENIED_SECRET = "AKIDSERVINGDENIED001", "denied/SECRET+serving-2"
POLICIES = f"""
{DENIED_ID}:
  Version: "2012-10-17"
  Statement:
    - Effect: Allow
      Action: "rekognition:*"
      Resource: "*"
    - Effect: Deny
      Action: "rekognition:*"
      Resource: ["arn:aws:rekognition:*:*:project/tuned/*",
                 "arn:aws:rekognition:*:*:project/scenes/*"]
"""


def _frames(clip: str) -> list[np.ndarray]:
    """Training frames from the clip's first 60%, held-out ones from its last 30%."""
    with av.open(str(VIDEO / clip)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    n = len(frames)
    picks = np.concatenate([np.linspace(0, 0.6 * n - 1, TRAIN),
                            np.linspace(0.7 * n, n - 1, HELD_OUT)]).round().astype(int)
    return [cv2.resize(frames[i], (128, 96)) for i in picks]


def _jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", frame)
    assert ok
    return data.tobytes()


class Home:
    """The daemon's objects: every clip's frames as JPEGs, by scene and split."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "objects"
        (self.root / OUT).mkdir(parents=True)
        self.train: dict[str, list[str]] = {}  # clip -> s3 refs
        self.held: dict[str, list[bytes]] = {}  # clip -> JPEG bytes
        self.held_refs: dict[str, list[str]] = {}
        for clip in HEAD + OTHER:
            refs = []
            frames = _frames(clip)
            for n, frame in enumerate(frames):
                path = self.root / IMAGES / clip / f"{n:02d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_jpeg(frame))
                refs.append(f"s3://{IMAGES}/{clip}/{n:02d}.jpg")
            self.train[clip], self.held_refs[clip] = refs[:TRAIN], refs[TRAIN:]
            self.held[clip] = [_jpeg(frame) for frame in frames[TRAIN:]]

    def manifest(self, key: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        (self.root / IMAGES / key).write_text("".join(json.dumps(x) + "\n" for x in lines))
        return {"GroundTruthManifest": {"S3Object": {"Bucket": IMAGES, "Name": key}}}


def _client(endpoint: str, key: str, secret: str) -> Any:
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"})))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def daemon(home: Home) -> Iterator[Daemon]:
    (home.base / "policies.yaml").write_text(POLICIES)
    d = Daemon(make_config(home.base / "data", **{
        "objects.local_root": str(home.root), "objects.buckets": [IMAGES],
        "objects.output_buckets": [OUT], "kafka.bootstrap": "127.0.0.1:9",
        "projects.training_min_per_class": 4, "auth.enabled": True,
        "auth.policy_file": str(home.base / "policies.yaml"),
        "auth.access_keys": {ADMIN_ID: ADMIN_SECRET, DENIED_ID: DENIED_SECRET}}))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rek(daemon: Daemon) -> Any:
    return _client(daemon.endpoint, ADMIN_ID, ADMIN_SECRET)


@pytest.fixture(scope="module")
def denied(daemon: Daemon) -> Any:
    return _client(daemon.endpoint, DENIED_ID, DENIED_SECRET)


def _moderation_line(ref: str, labels: list[str]) -> dict[str, Any]:
    return {"source-ref": ref, "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": name} for name in labels]}}


def _class_line(ref: str, name: str) -> dict[str, Any]:
    return {"source-ref": ref, "scene": 1, "scene-metadata": {
        "class-name": name, "confidence": 1, "type": "groundtruth/image-classification",
        "job-name": "labeling", "human-annotated": "yes"}}


def _scene(clip: str) -> str:
    return "head" if clip in HEAD else clip.split(".")[0].split("-")[-1]


def _train(rek: Any, project: str, name: str, **kwargs: Any) -> str:
    arn = rek.create_project_version(ProjectArn=project, VersionName=name,
                                     OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": name},
                                     **kwargs)["ProjectVersionArn"]
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=[name], WaiterConfig=WAIT)
    return str(arn)


@pytest.fixture(scope="module")
def adapter(rek: Any, home: Home) -> tuple[str, str]:
    """(project ARN, trained adapter ARN)."""
    project = rek.create_project(ProjectName="tuned", Feature="CONTENT_MODERATION",
                                 AutoUpdate="DISABLED")["ProjectArn"]

    def lines(refs: dict[str, list[str]]) -> list[dict[str, Any]]:
        return [_moderation_line(ref, ["Violence"] if clip in HEAD else [])
                for clip, clip_refs in refs.items() for ref in clip_refs]

    started = time.monotonic()
    arn = _train(rek, project, "a1",
                 TrainingData={"Assets": [home.manifest("a-train.manifest", lines(home.train))]},
                 TestingData={"Assets": [home.manifest("a-test.manifest",
                                                       lines(home.held_refs))]})
    print(f"adapter trained in {time.monotonic() - started:.1f} s")
    return str(project), arn


@pytest.fixture(scope="module")
def scenes(rek: Any, home: Home) -> tuple[str, str]:
    """(project ARN, trained Custom Labels version ARN, not started)."""
    project = rek.create_project(ProjectName="scenes")["ProjectArn"]
    for kind, refs in (("TRAIN", home.train), ("TEST", home.held_refs)):
        rek.create_dataset(ProjectArn=project, DatasetType=kind, DatasetSource=home.manifest(
            f"s-{kind}.manifest", [_class_line(ref, _scene(clip))
                                   for clip, clip_refs in refs.items() for ref in clip_refs]))
    return str(project), _train(rek, project, "v1")


def _names(response: dict[str, Any]) -> set[str]:
    return {label["Name"] for label in response["ModerationLabels"]}


def test_an_adapter_finds_its_label_on_held_out_frames_and_the_base_model_does_not(
        rek: Any, home: Home, adapter: tuple[str, str]) -> None:
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
        rek: Any, home: Home, adapter: tuple[str, str]) -> None:
    _, arn = adapter
    image = home.held[HEAD[0]][0]
    every = rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn,
                                         MinConfidence=0)["ModerationLabels"]
    violence = next(x["Confidence"] for x in every if x["Name"] == "Violence")
    above = rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn,
                                         MinConfidence=min(100.0, violence + 0.01))
    assert "Violence" not in _names(above)


def test_an_adapter_not_trained_is_not_ready_and_a_deleted_one_is_not_found(
        rek: Any, daemon: Daemon, home: Home, adapter: tuple[str, str]) -> None:
    project, _ = adapter
    name, created = project.split(":project/")[1].split("/")
    # Another node's version: this daemon's runner never trains it, so it stays in progress.
    now = int(time.time() * 1000)
    assert daemon.ledger is not None
    daemon.ledger.submit(CreateVersion(Version(
        VersionRef(name, "elsewhere", now), int(created), Feature.CONTENT_MODERATION,
        VersionStatus.TRAINING_IN_PROGRESS, "The model is being trained", now, "other-node",
        {"OutputConfig": {"S3Bucket": OUT}}, {})))
    pending = project.rsplit("/", 1)[0] + f"/version/elsewhere/{now}"
    image = home.held[HEAD[0]][0]
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="still being trained"):
        rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=pending)
    clip = OTHER[0]  # no image names a label: the training fails
    failed = rek.create_project_version(
        ProjectArn=project, VersionName="nothing", OutputConfig={"S3Bucket": OUT},
        TrainingData={"Assets": [home.manifest("none.manifest", [
            _moderation_line(ref, []) for ref in home.train[clip]])]},
        TestingData={"AutoCreate": True})["ProjectVersionArn"]
    with pytest.raises(Exception, match="TRAINING_FAILED|failure state"):
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


def test_a_custom_labels_model_serves_only_while_running(
        rek: Any, home: Home, scenes: tuple[str, str], adapter: tuple[str, str]) -> None:
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
            right += labels[0]["Name"] == _scene(clip)
            total += 1
    print(f"custom labels on held-out frames: {right}/{total} right")
    assert right >= 0.9 * total
    rek.stop_project_version(ProjectVersionArn=arn)
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="STOPPED"):
        rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
    rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)  # for the next test


def test_max_results_and_min_confidence(rek: Any, daemon: Daemon, home: Home,
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
        rek: Any, denied: Any, home: Home, adapter: tuple[str, str],
        scenes: tuple[str, str]) -> None:
    image = {"Bytes": home.held[HEAD[0]][0]}
    assert "ModerationLabels" in denied.detect_moderation_labels(Image=image)
    with pytest.raises(denied.exceptions.AccessDeniedException):
        denied.detect_moderation_labels(Image=image, ProjectVersion=adapter[1])
    with pytest.raises(denied.exceptions.AccessDeniedException):
        denied.detect_custom_labels(ProjectVersionArn=scenes[1], Image=image)
