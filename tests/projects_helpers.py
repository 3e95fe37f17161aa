"""Helpers for the project-version tests: frames as objects, manifests, keyed daemons, training.

The tests that train versions on the shared clips (``test_api_versions``,
``test_api_custom_serving``, ``test_media_adapter``, ``test_versions_cluster``) write small
JPEGs of picked frames under an object root, Ground Truth manifests beside them, and wait
for a version to train; what they share is here. An adapter learns the v7 label
``Violence`` (a benign proxy concept the base pack never emits) on the head-pose clips'
frames against the others'; a Custom Labels model learns the scenes (:func:`scene`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import boto3
import cv2
import numpy as np
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import WaiterError
from conftest import VIDEO, make_config, retry_resets

from streamproc.config import Config
from streamproc.daemon import Daemon
from streamproc.projects.types import Feature
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.projects.versions_commands import CreateVersion

IMAGES, OUT = "frames", "results"  # the images' bucket, the trainings' output bucket
WAIT = {"Delay": 1, "MaxAttempts": 120}
HEAD = ("head-pose-face-detection-female-and-male.mp4", "head-pose-face-detection-female.mp4",
        "head-pose-face-detection-male.mp4")
OTHER = ("classroom.mp4", "face-demographics-walking.mp4")
SIZE = (128, 96)  # frames are scaled to this: small JPEGs, quick to embed

# How a frame's file is named from its place among the picks and its frame number.
Namer = Callable[[int, int], str]


def by_position(position: int, _: int) -> str:
    """``00.jpg``, ``01.jpg``, ... in the order the frames were picked."""
    return f"{position:02d}.jpg"


def by_frame_number(_: int, number: int) -> str:
    """``frame-00042.jpg``: a server grouping neighbouring frame numbers sees the gaps."""
    return f"frame-{number:05d}.jpg"


def _decoded(clip: str) -> list[np.ndarray]:
    with av.open(str(VIDEO / clip)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def split_frames(clip: str, train: int, held_out: int) -> list[tuple[int, np.ndarray]]:
    """``train`` frames from the clip's first 60%, ``held_out`` from its last 30%, scaled.

    Each with its frame number.
    """
    frames = _decoded(clip)
    n = len(frames)
    picks = np.concatenate([np.linspace(0, 0.6 * n - 1, train),
                            np.linspace(0.7 * n, n - 1, held_out)]).round().astype(int)
    return [(int(i), cv2.resize(frames[i], SIZE)) for i in picks]


def spread_frames(clip: str, count: int) -> list[tuple[int, np.ndarray]]:
    """``count`` frames spread evenly over the clip, scaled; each with its frame number."""
    frames = _decoded(clip)
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [(int(i), cv2.resize(frames[i], SIZE)) for i in picks]


def jpeg(frame: np.ndarray) -> bytes:
    """The frame as JPEG bytes."""
    ok, data = cv2.imencode(".jpg", frame)
    assert ok
    return bytes(data.tobytes())


def put_frames(root: Path, folder: str, frames: list[tuple[int, np.ndarray]],
               name: Namer = by_position) -> list[tuple[str, bytes]]:
    """Write the frames as JPEGs under ``IMAGES/folder``; each one's s3 ref and bytes."""
    out = []
    for position, (number, frame) in enumerate(frames):
        data, file = jpeg(frame), name(position, number)
        path = root / IMAGES / folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append((f"s3://{IMAGES}/{folder}/{file}", data))
    return out


def write_lines(root: Path, key: str, lines: list[dict[str, Any]]) -> dict[str, str]:
    """Write JSON lines as object ``key`` of ``IMAGES``; its S3Object."""
    (root / IMAGES / key).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return {"Bucket": IMAGES, "Name": key}


@dataclass
class FrameObjects:
    """An object root holding every clip's frames, by clip: training and held-out refs."""

    root: Path
    train: dict[str, list[str]] = field(default_factory=dict)  # clip -> s3 refs
    held_refs: dict[str, list[str]] = field(default_factory=dict)
    held: dict[str, list[bytes]] = field(default_factory=dict)  # clip -> JPEG bytes
    images: dict[str, bytes] = field(default_factory=dict)  # s3 ref -> JPEG bytes

    def manifest(self, key: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        """Write a manifest; the asset (``GroundTruthManifest``) that names it."""
        return {"GroundTruthManifest": {"S3Object": write_lines(self.root, key, lines)}}

    def write(self, key: str, lines: list[dict[str, Any]]) -> None:
        """Write JSON lines (a media-analysis manifest) as object ``key`` of ``IMAGES``."""
        write_lines(self.root, key, lines)

    def results(self, key: str) -> list[dict[str, Any]]:
        """The JSON lines of output object ``key`` of ``OUT``."""
        return [json.loads(line) for line in (self.root / OUT / key).read_text().splitlines()]


def frame_objects(root: Path, train: int, held_out: int,
                  name: Namer = by_position) -> FrameObjects:
    """Every clip of HEAD and OTHER as frames under ``root`` (and an empty ``OUT``)."""
    (root / OUT).mkdir(parents=True)
    objects = FrameObjects(root)
    for clip in HEAD + OTHER:
        written = put_frames(root, clip, split_frames(clip, train, held_out), name)
        refs = [ref for ref, _ in written]
        objects.train[clip], objects.held_refs[clip] = refs[:train], refs[train:]
        objects.held[clip] = [data for _, data in written[train:]]
        objects.images.update(written)
    return objects


def moderation_line(ref: str, labels: list[str]) -> dict[str, Any]:
    """An adapter's Ground Truth line: the image and the moderation labels it shows."""
    return {"source-ref": ref, "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": name} for name in labels]}}


def class_line(ref: str, name: str) -> dict[str, Any]:
    """A Custom Labels image-classification line: the image is of class ``name``."""
    return {"source-ref": ref, "scene": 1, "scene-metadata": {
        "class-name": name, "confidence": 1, "type": "groundtruth/image-classification",
        "job-name": "labeling", "human-annotated": "yes"}}


def scene(clip: str) -> str:
    """The clip's scene class: ``head`` for the head-pose clips, else its last word."""
    return "head" if clip in HEAD else clip.split(".")[0].split("-")[-1]


def violence_lines(refs: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Adapter lines: ``Violence`` on the head-pose clips' frames, nothing on the others'."""
    return [moderation_line(ref, ["Violence"] if clip in HEAD else [])
            for clip, clip_refs in refs.items() for ref in clip_refs]


def scene_lines(refs: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Custom Labels lines: each frame classed by its clip's :func:`scene`."""
    return [class_line(ref, scene(clip)) for clip, clip_refs in refs.items()
            for ref in clip_refs]


def deny_policies(key_id: str, resources: str | list[str]) -> str:
    """A policy file: ``key_id`` may do anything but touch ``resources``."""
    return f"""
{key_id}:
  Version: "2012-10-17"
  Statement:
    - Effect: Allow
      Action: "rekognition:*"
      Resource: "*"
    - Effect: Deny
      Action: "rekognition:*"
      Resource: {json.dumps(resources)}
"""


def keyed_config(base: Path, objects: FrameObjects, keys: dict[str, str], policies: str,
                 **extra: object) -> Config:
    """A daemon's config over ``objects``: access keys, the policy file, no Kafka."""
    (base / "policies.yaml").write_text(policies)
    return make_config(base / "data", **{
        "objects.local_root": str(objects.root), "objects.buckets": [IMAGES],
        "objects.output_buckets": [OUT], "kafka.bootstrap": "127.0.0.1:9",
        "projects.training_min_per_class": 4, "auth.enabled": True,
        "auth.policy_file": str(base / "policies.yaml"), "auth.access_keys": keys, **extra})


def running(daemon: Daemon) -> Iterator[Daemon]:
    """Start the daemon, yield it, stop it: a module fixture's body (``yield from``)."""
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def keyed_client(endpoint: str, key: str, secret: str) -> Any:
    """A Rekognition client signing with this access key, one attempt a call."""
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"})))


def train_version(rek: Any, project: str, name: str, prefix: str, **kwargs: Any) -> str:
    """CreateProjectVersion, waited for until trained; the version's ARN."""
    arn = rek.create_project_version(
        ProjectArn=project, VersionName=name,
        OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": prefix}, **kwargs)["ProjectVersionArn"]
    try:
        rek.get_waiter("project_version_training_completed").wait(
            ProjectArn=project, VersionNames=[name], WaiterConfig=WAIT)
    except WaiterError as error:
        last: Any = error.last_response
        found = last.get("ProjectVersionDescriptions", [{}])
        pytest.fail(f"{name} did not train: {found[0].get('StatusMessage')}")
    return str(arn)


def train_adapter(rek: Any, objects: FrameObjects, prefix: str) -> tuple[str, str]:
    """Project ``tuned`` and its adapter ``a1``, trained on the ``Violence`` lines.

    (project ARN, adapter ARN); the held-out frames are its test set.
    """
    project = rek.create_project(ProjectName="tuned", Feature="CONTENT_MODERATION",
                                 AutoUpdate="DISABLED")["ProjectArn"]
    started = time.monotonic()
    arn = train_version(
        rek, project, "a1", prefix,
        TrainingData={"Assets": [objects.manifest("a-train.manifest",
                                                  violence_lines(objects.train))]},
        TestingData={"Assets": [objects.manifest("a-test.manifest",
                                                 violence_lines(objects.held_refs))]})
    print(f"adapter trained in {time.monotonic() - started:.1f} s")
    return str(project), arn


def scenes_project(rek: Any, objects: FrameObjects) -> str:
    """Project ``scenes`` with TRAIN and TEST datasets of the scene lines; its ARN."""
    project = rek.create_project(ProjectName="scenes")["ProjectArn"]
    for kind, refs in (("TRAIN", objects.train), ("TEST", objects.held_refs)):
        rek.create_dataset(ProjectArn=project, DatasetType=kind, DatasetSource=objects.manifest(
            f"s-{kind}.manifest", scene_lines(refs)))
    return str(project)


def describe_version(rek: Any, project: str, name: str) -> dict[str, Any]:
    """The one ProjectVersionDescription of version ``name``."""
    (found,) = rek.describe_project_versions(ProjectArn=project, VersionNames=[name])[
        "ProjectVersionDescriptions"]
    return dict(found)


def pending_elsewhere(daemon: Daemon, project: str) -> str:
    """A version of ``project`` in training on another node; its ARN.

    This daemon's runner never trains it, so it stays TRAINING_IN_PROGRESS here.
    """
    name, created = project.split(":project/")[1].split("/")
    now = int(time.time() * 1000)
    assert daemon.ledger is not None
    daemon.ledger.submit(CreateVersion(Version(
        VersionRef(name, "elsewhere", now), int(created), Feature.CONTENT_MODERATION,
        VersionStatus.TRAINING_IN_PROGRESS, "The model is being trained", now, "other-node",
        {"OutputConfig": {"S3Bucket": OUT}}, {})))
    return project.rsplit("/", 1)[0] + f"/version/elsewhere/{now}"
