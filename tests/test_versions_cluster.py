"""Two `streamproc serve --cluster` nodes on one broker: A trains versions, B serves them.

Frames of the shared clips (small JPEGs under one object root both nodes read, as one S3
endpoint would be). CreateProjectVersion goes to node A, so A's runner trains (its log says
``training start 1 on node-a``) and the model reaches B only through the cluster's log
(the model's parts, then the status). B then answers DetectModerationLabels with the
adapter exactly as A does, and a Custom Labels model started through B is detected on B.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import SHARED, client_for
from projects_helpers import (
    HEAD,
    IMAGES,
    OTHER,
    OUT,
    WAIT,
    FrameObjects,
    by_frame_number,
    describe_version,
    frame_objects,
    scene,
    scenes_project,
    train_adapter,
    train_version,
)

from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.clusterkit import Node, poll

TRAIN, HELD_OUT = 8, 3  # frames per clip


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> FrameObjects:
    # Files named by frame number: the server's calibration groups (blocks of neighbouring
    # frame numbers) see how far apart the picks are.
    return frame_objects(tmp_path_factory.mktemp("versions-cluster-objects"), TRAIN, HELD_OUT,
                         by_frame_number)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, objects: FrameObjects) -> Iterator[list[Node]]:
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
    return bool(describe_version(node.rek, project, name)["Status"] == "TRAINING_COMPLETED")


def _labels(node: Node, image: bytes, arn: str) -> list[tuple[str, str, float]]:
    out = node.rek.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=arn,
                                            MinConfidence=0)
    assert out["ProjectVersion"] == arn
    return [(x["Name"], x.get("ParentName", ""), x["Confidence"]) for x in out["ModerationLabels"]]


def test_an_adapter_trained_on_one_node_answers_alike_on_the_other(
        nodes: list[Node], objects: FrameObjects) -> None:
    a, b = nodes
    project, arn = train_adapter(a.rek, objects, "a1/")  # on A: its runner trains
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
        nodes: list[Node], objects: FrameObjects) -> None:
    a, b = nodes
    project = scenes_project(a.rek, objects)
    _datasets_complete(a, project)
    arn = train_version(a.rek, project, "v1", "v1/")
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
            right += labels[0]["Name"] == scene(clip)
            total += 1
    print(f"custom labels served by B: {right}/{total} held-out frames right")
    assert right >= total - 1
    b.rek.stop_project_version(ProjectVersionArn=arn)
