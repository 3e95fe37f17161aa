"""Two `streamproc serve --cluster` nodes on one broker: A trains versions, B serves them.

Frames of the shared clips (small JPEGs under one object root both nodes read, as one S3
endpoint would be). CreateProjectVersion goes to node A, so A's runner trains (its log says
``training start 1 on node-a``) and the model reaches B only through the cluster's log
(the model's parts, then the status). B then answers DetectModerationLabels with the
adapter exactly as A does, and a Custom Labels model started through B is detected on B.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from botocore.exceptions import WaiterError
from conftest import SHARED, client_for

from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.clusterkit import Node, poll

VIDEO = SHARED / "data" / "video" / "intel_sample_videos"
IMAGES, OUT = "frames", "results"
WAIT = {"Delay": 1, "MaxAttempts": 120}
TRAIN, HELD_OUT = 8, 3  # frames per clip
HEAD = ("head-pose-face-detection-female-and-male.mp4", "head-pose-face-detection-female.mp4",
        "head-pose-face-detection-male.mp4")
OTHER = ("classroom.mp4", "face-demographics-walking.mp4")


def _frames(clip: str) -> list[tuple[int, np.ndarray]]:
    """Training frames from the clip's first 60%, held-out ones from its last 30%.

    Each with its frame number: the file is named by it, so the server's calibration groups
    (blocks of neighbouring frame numbers) see how far apart the picks are.
    """
    with av.open(str(VIDEO / clip)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    n = len(frames)
    picks = np.concatenate([np.linspace(0, 0.6 * n - 1, TRAIN),
                            np.linspace(0.7 * n, n - 1, HELD_OUT)]).round().astype(int)
    return [(int(i), cv2.resize(frames[i], (128, 96))) for i in picks]


def _jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", frame)
    assert ok
    return data.tobytes()


class Objects:
    """The shared object root: every clip's frames, training refs and held-out bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / OUT).mkdir(parents=True)
        self.train: dict[str, list[str]] = {}
        self.held_refs: dict[str, list[str]] = {}
        self.held: dict[str, list[bytes]] = {}
        for clip in HEAD + OTHER:
            refs = []
            frames = _frames(clip)
            for n, frame in frames:
                path = root / IMAGES / clip / f"frame-{n:05d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_jpeg(frame))
                refs.append(f"s3://{IMAGES}/{clip}/frame-{n:05d}.jpg")
            self.train[clip], self.held_refs[clip] = refs[:TRAIN], refs[TRAIN:]
            self.held[clip] = [_jpeg(frame) for _, frame in frames[TRAIN:]]

    def manifest(self, key: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        (self.root / IMAGES / key).write_text("".join(json.dumps(x) + "\n" for x in lines))
        return {"GroundTruthManifest": {"S3Object": {"Bucket": IMAGES, "Name": key}}}


def _scene(clip: str) -> str:
    return "head" if clip in HEAD else clip.split(".")[0].split("-")[-1]


def _class_line(ref: str, name: str) -> dict[str, Any]:
    return {"source-ref": ref, "scene": 1, "scene-metadata": {
        "class-name": name, "confidence": 1, "type": "groundtruth/image-classification",
        "job-name": "labeling", "human-annotated": "yes"}}


def _moderation_line(ref: str, labels: list[str]) -> dict[str, Any]:
    return {"source-ref": ref, "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": name} for name in labels]}}


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Objects:
    return Objects(tmp_path_factory.mktemp("versions-cluster-objects"))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, objects: Objects) -> Iterator[list[Node]]:
    broker = EmbeddedBroker()
    broker.start()
    root = tmp_path_factory.mktemp("versions-cluster")
    started: list[Node] = []
    try:
        for name in ("node-a", "node-b"):
            started.append(Node(root, name, broker.bootstrap, SHARED, client_for, **{
                "objects.local_root": str(objects.root), "objects.buckets": [IMAGES],
                "objects.output_buckets": [OUT],
                "projects.training_min_per_class": 4}).start())
        assert poll(lambda: all(len(n.cluster()["members"]) == 2 for n in started), 30), \
            "the group never formed"
        yield started
    finally:
        for node in started:
            node.stop()
        broker.stop()


def _train_on(node: Node, project: str, name: str, **kwargs: Any) -> str:
    """CreateProjectVersion on ``node``, waited for there; the version's ARN."""
    arn = node.rek.create_project_version(
        ProjectArn=project, VersionName=name,
        OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": f"{name}/"}, **kwargs)["ProjectVersionArn"]
    try:
        node.rek.get_waiter("project_version_training_completed").wait(
            ProjectArn=project, VersionNames=[name], WaiterConfig=WAIT)
    except WaiterError as error:
        last: Any = error.last_response
        found = last.get("ProjectVersionDescriptions", [{}])
        pytest.fail(f"{name} did not train: {found[0].get('StatusMessage')}")
    return str(arn)


def _datasets_complete(node: Node, project: str) -> None:
    """Wait until the project's datasets are read in (CreateDataset answers before that)."""
    def done() -> bool:
        datasets = node.rek.describe_projects(ProjectNames=[project.split("/")[1]])[
            "ProjectDescriptions"][0]["Datasets"]
        return all(d["Status"] == "CREATE_COMPLETE" for d in datasets)
    assert poll(done, 30), "the datasets were never read in"


def _trained_by(node: Node, project: str, name: str) -> list[str]:
    """Where the log of ``node`` records starts of the version's training."""
    marker = f"version {name} of {project}: training start "
    return [line.split(marker)[1].split(" ")[2] for line in node.log.read_text().splitlines()
            if marker in line]


def _assert_trained_by_a(a: Node, b: Node, project: str, name: str) -> None:
    """A's runner made the one start; B, applying the same log, names A too (or not yet)."""
    assert _trained_by(a, project, name) == ["node-a"]
    assert set(_trained_by(b, project, name)) <= {"node-a"}


def _completed(node: Node, project: str, name: str) -> bool:
    (found,) = node.rek.describe_project_versions(ProjectArn=project, VersionNames=[name])[
        "ProjectVersionDescriptions"]
    return bool(found["Status"] == "TRAINING_COMPLETED")


def _labels(node: Node, image: bytes, arn: str) -> list[tuple[str, str, float]]:
    out = node.rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn,
                                            MinConfidence=0)
    assert out["ProjectVersion"] == arn
    return [(x["Name"], x.get("ParentName", ""), x["Confidence"]) for x in out["ModerationLabels"]]


def test_an_adapter_trained_on_one_node_answers_alike_on_the_other(
        nodes: list[Node], objects: Objects) -> None:
    a, b = nodes
    project = a.rek.create_project(ProjectName="tuned", Feature="CONTENT_MODERATION",
                                   AutoUpdate="DISABLED")["ProjectArn"]

    def lines(refs: dict[str, list[str]]) -> list[dict[str, Any]]:
        return [_moderation_line(ref, ["Violence"] if clip in HEAD else [])
                for clip, clip_refs in refs.items() for ref in clip_refs]

    arn = _train_on(a, project, "a1",
                    TrainingData={"Assets": [objects.manifest("a-train.manifest",
                                                              lines(objects.train))]},
                    TestingData={"Assets": [objects.manifest("a-test.manifest",
                                                             lines(objects.held_refs))]})
    _assert_trained_by_a(a, b, "tuned", "a1")
    assert poll(lambda: _completed(b, project, "a1"), 10), "B never saw the training end"
    hits = {True: 0, False: 0}
    for clip, images in objects.held.items():
        for image in images:
            on_a, on_b = _labels(a, image, arn), _labels(b, image, arn)
            assert on_b == on_a, (clip, on_a, on_b)
            hits[clip in HEAD] += any(name == "Violence" and confidence >= 50
                                      for name, _, confidence in on_b)
    positives, negatives = len(HEAD) * HELD_OUT, len(OTHER) * HELD_OUT
    print(f"adapter served by B: Violence on {hits[True]}/{positives} positives, "
          f"{hits[False]}/{negatives} negatives")
    # The same labels on both, and the adapter's own: B serves what A trained, not nothing.
    assert hits[True] >= positives - 1 and hits[False] <= 1


def test_a_custom_labels_model_trained_on_one_node_is_started_and_served_by_the_other(
        nodes: list[Node], objects: Objects) -> None:
    a, b = nodes
    project = a.rek.create_project(ProjectName="scenes")["ProjectArn"]
    for kind, refs in (("TRAIN", objects.train), ("TEST", objects.held_refs)):
        a.rek.create_dataset(ProjectArn=project, DatasetType=kind,
                             DatasetSource=objects.manifest(f"s-{kind}.manifest", [
                                 _class_line(ref, _scene(clip))
                                 for clip, clip_refs in refs.items() for ref in clip_refs]))
    _datasets_complete(a, project)
    arn = _train_on(a, project, "v1")
    _assert_trained_by_a(a, b, "scenes", "v1")
    assert poll(lambda: _completed(b, project, "v1"), 10), "B never saw the training end"
    b.rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    b.rek.get_waiter("project_version_running").wait(ProjectArn=project, VersionNames=["v1"],
                                                     WaiterConfig=WAIT)
    right = total = 0
    for clip, images in objects.held.items():
        for image in images:
            labels = b.rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image},
                                                MinConfidence=0)["CustomLabels"]
            assert sorted(x["Name"] for x in labels) == ["classroom", "head", "walking"]
            right += labels[0]["Name"] == _scene(clip)
            total += 1
    print(f"custom labels served by B: {right}/{total} held-out frames right")
    assert right >= total - 1
    b.rek.stop_project_version(ProjectVersionArn=arn)
