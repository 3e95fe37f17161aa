"""A `streamproc serve` process SIGKILLed while it trains a version; the next start finishes it.

A real process (clusterkit's :class:`Node`, single node: no cluster bootstrap) trains a
Custom Labels version on frames of two shared clips. The signal that its training has
started is the applier's own log line ``training start 1`` (written when the ledger applied
the TrainingAttempt, so the start is recorded in the data dir before the model runs); the
process is killed :data:`KILL_AFTER_S` later (its training took 7 to 22 s here),
while DescribeProjectVersions still says TRAINING_IN_PROGRESS and the log shows no status
written. Killed there, no model part and no status was written (the runner submits the
parts only once the training returns, a window of milliseconds no test can aim at). The
restarted process on the same data dir records start 2, trains, and the model serves.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from conftest import SHARED, client_for

from streamproc.tools.clusterkit import Node, poll

VIDEO = SHARED / "data" / "video" / "intel_sample_videos"
IMAGES, OUT = "frames", "results"
WAIT = {"Delay": 1, "MaxAttempts": 120}
CLIPS = {"classroom": "classroom.mp4", "walking": "face-demographics-walking.mp4"}
TRAIN, TEST = 40, 6  # frames per clip: enough that the features take seconds to extract
KILL_AFTER_S = 2.0  # after the start is recorded: well into the feature extraction


def _frames(clip: str, count: int) -> list[tuple[int, np.ndarray]]:
    """``count`` frames spread over the clip, scaled to 320 x 240, with their frame numbers.

    The files are named by frame number, so the server's calibration groups (blocks of
    neighbouring frame numbers) see how far apart the picks are.
    """
    with av.open(str(VIDEO / clip)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [(int(i), cv2.resize(frames[i], (320, 240))) for i in picks]


def _jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", frame)
    assert ok
    return data.tobytes()


def _class_line(ref: str, name: str) -> dict[str, Any]:
    return {"source-ref": ref, "scene": 1, "scene-metadata": {
        "class-name": name, "confidence": 1, "type": "groundtruth/image-classification",
        "job-name": "labeling", "human-annotated": "yes"}}


def _objects(root: Path) -> dict[str, tuple[list[str], list[bytes]]]:
    """Frames under ``root`` as JPEGs; per scene, its s3 refs and the test frames' bytes."""
    (root / OUT).mkdir(parents=True)
    out: dict[str, tuple[list[str], list[bytes]]] = {}
    for scene, clip in CLIPS.items():
        refs, data = [], []
        for n, frame in _frames(clip, TRAIN + TEST):
            path = root / IMAGES / scene / f"frame-{n:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            data.append(_jpeg(frame))
            path.write_bytes(data[-1])
            refs.append(f"s3://{IMAGES}/{scene}/frame-{n:05d}.jpg")
        out[scene] = refs, data[TRAIN:]
    return out


def _manifest(root: Path, key: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    (root / IMAGES / key).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return {"GroundTruthManifest": {"S3Object": {"Bucket": IMAGES, "Name": key}}}


def _status(rek: Any, project: str) -> str:
    (found,) = rek.describe_project_versions(ProjectArn=project, VersionNames=["v1"])[
        "ProjectVersionDescriptions"]
    return str(found["Status"])


def _datasets_complete(rek: Any) -> bool:
    """Whether the datasets are read in (CreateDataset answers before that)."""
    (found,) = rek.describe_projects(ProjectNames=["crashed"])["ProjectDescriptions"]
    return all(d["Status"] == "CREATE_COMPLETE" for d in found["Datasets"])


def _starts(node: Node) -> list[str]:
    return [line for line in node.log.read_text().splitlines()
            if "version v1 of crashed: training start" in line]


def test_a_server_killed_mid_training_finishes_the_version_when_restarted(
        tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    frames = _objects(objects)
    node = Node(tmp_path, "solo", "127.0.0.1:9", SHARED, client_for, **{
        "cluster.bootstrap": None, "cluster.node_id": None,
        "objects.local_root": str(objects), "objects.buckets": [IMAGES],
        "objects.output_buckets": [OUT], "projects.training_min_per_class": 4})
    node.start()
    try:
        rek = node.rek
        project = rek.create_project(ProjectName="crashed")["ProjectArn"]
        for kind, part in (("TRAIN", slice(0, TRAIN)), ("TEST", slice(TRAIN, None))):
            rek.create_dataset(ProjectArn=project, DatasetType=kind, DatasetSource=_manifest(
                objects, f"{kind}.manifest", [_class_line(ref, scene) for scene, (refs, _)
                                              in frames.items() for ref in refs[part]]))
        assert poll(lambda: _datasets_complete(rek), 30), "the datasets were never read in"
        rek.create_project_version(ProjectArn=project, VersionName="v1",
                                   OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": "crash/"})
        assert poll(lambda: _starts(node), 30, every=0.05), "the training never started"
        recorded = time.monotonic()
        time.sleep(KILL_AFTER_S)
        assert _status(rek, project) == "TRAINING_IN_PROGRESS"
        node.kill()
        killed = time.monotonic() - recorded
    finally:
        node.kill()
    # Killed before it could end (the applier logs every status it writes): a version
    # trained by then would prove nothing.
    ended = [line for line in node.log.read_text().splitlines()
             if "version v1 of crashed: TRAINING_" in line]
    assert not ended, f"trained within {killed:.2f} s, before the kill: use more frames"
    assert [s.split("training start ")[1] for s in _starts(node)] == [
        "1 on local (TRAINING_IN_PROGRESS)"]
    print(f"killed {killed:.2f} s after the start was recorded")
    node.start()
    try:
        rek = node.rek
        started = time.monotonic()
        rek.get_waiter("project_version_training_completed").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT)
        print(f"retrained in {time.monotonic() - started:.1f} s after the restart")
        assert [s.split("training start ")[1].split(" ")[0] for s in _starts(node)] == [
            "1", "2"]
        (done,) = rek.describe_project_versions(ProjectArn=project, VersionNames=["v1"])[
            "ProjectVersionDescriptions"]
        assert done["EvaluationResult"]["F1Score"] >= 0.9, done["EvaluationResult"]
        arn = done["ProjectVersionArn"]
        rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
        rek.get_waiter("project_version_running").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT)
        right = total = 0
        for scene, (_, held) in frames.items():
            for image in held:
                labels = rek.detect_custom_labels(ProjectVersionArn=arn, Image={
                    "Bytes": image}, MinConfidence=0)["CustomLabels"]
                right += labels[0]["Name"] == scene
                total += 1
        print(f"after the crash and retraining: {right}/{total} test frames right")
        assert right >= total - 1
    finally:
        node.stop()
