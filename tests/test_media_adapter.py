"""Media-analysis jobs with a Custom Moderation adapter, through boto3 against a real daemon.

As ``test_api_custom_serving.py`` does: frames of the shared clips as small JPEGs under the
daemon's ``objects.local_root``; an adapter learns the v7 label ``Violence`` (a benign proxy
concept the base pack never emits) on the three head-pose clips' first frames against the
classroom and walking clips'. A StartMediaAnalysisJob over a manifest of the held-out
frames with that ``ProjectVersion`` writes results lines that name it and carry the label
on the positives; a job without it, run at the same time on the same stage (two workers),
is the base model's. Start refuses a missing or still-training version as
DetectModerationLabels does, and a key denied the project cannot use its adapter in a job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import cv2
import numpy as np
import pytest
from botocore.config import Config as BotoConfig
from conftest import make_config, retry_resets

from streamproc.api.resources import request_resources
from streamproc.daemon import Daemon
from streamproc.projects.types import Feature
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.projects.versions_commands import CreateVersion
from streamproc.rekognition.constants import Arns

VIDEO = Path("/work/shared/data/video/intel_sample_videos")
IMAGES, OUT = "frames", "results"
WAIT = {"Delay": 1, "MaxAttempts": 120}
TRAIN, HELD_OUT = 8, 4  # frames per clip
HEAD = ("head-pose-face-detection-female-and-male.mp4", "head-pose-face-detection-female.mp4",
        "head-pose-face-detection-male.mp4")
OTHER = ("classroom.mp4", "face-demographics-walking.mp4")
ADMIN_ID, ADMIN_SECRET = "AKIDMEDIAADAPTER0001", "admin/SECRET+media-1"
DENIED_ID, DENIED_SECRET = "AKIDMEDIAADAPTER0002", "denied/SECRET+media-2"
POLICIES = f"""
{DENIED_ID}:
  Version: "2012-10-17"
  Statement:
    - Effect: Allow
      Action: "rekognition:*"
      Resource: "*"
    - Effect: Deny
      Action: "rekognition:*"
      Resource: "arn:aws:rekognition:*:*:project/tuned/*"
"""
JOB_DEADLINE_S = 180.0


def _frames(clip: str) -> list[np.ndarray]:
    """Training frames from the clip's first 60%, held-out ones from its last 30%."""
    with av.open(str(VIDEO / clip)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    n = len(frames)
    picks = np.concatenate([np.linspace(0, 0.6 * n - 1, TRAIN),
                            np.linspace(0.7 * n, n - 1, HELD_OUT)]).round().astype(int)
    return [cv2.resize(frames[i], (128, 96)) for i in picks]


class Home:
    """The daemon's objects: every clip's frames as JPEGs, training and held-out refs."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "objects"
        (self.root / OUT).mkdir(parents=True)
        self.train: dict[str, list[str]] = {}  # clip -> s3 refs
        self.held: dict[str, list[str]] = {}
        self.images: dict[str, bytes] = {}  # s3 ref -> JPEG bytes
        for clip in HEAD + OTHER:
            refs = []
            for n, frame in enumerate(_frames(clip)):
                ok, data = cv2.imencode(".jpg", frame)
                assert ok
                path = self.root / IMAGES / clip / f"{n:02d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data.tobytes())
                ref = f"s3://{IMAGES}/{clip}/{n:02d}.jpg"
                self.images[ref] = data.tobytes()
                refs.append(ref)
            self.train[clip], self.held[clip] = refs[:TRAIN], refs[TRAIN:]

    def write(self, key: str, lines: list[dict[str, Any]]) -> None:
        (self.root / IMAGES / key).write_text("".join(json.dumps(x) + "\n" for x in lines))

    def results(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.root / OUT / key).read_text().splitlines()]


def _client(endpoint: str, key: str, secret: str) -> Any:
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"})))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("media-adapter"))


@pytest.fixture(scope="module")
def daemon(home: Home) -> Iterator[Daemon]:
    (home.base / "policies.yaml").write_text(POLICIES)
    d = Daemon(make_config(home.base / "data", **{
        "objects.local_root": str(home.root), "objects.buckets": [IMAGES],
        "objects.output_buckets": [OUT], "kafka.bootstrap": "127.0.0.1:9",
        "projects.training_min_per_class": 4, "jobs.workers": 2, "auth.enabled": True,
        "auth.policy_file": str(home.base / "policies.yaml"),
        "auth.access_keys": {ADMIN_ID: ADMIN_SECRET, DENIED_ID: DENIED_SECRET}}))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rek(daemon: Daemon) -> Any:
    return _client(daemon.endpoint, ADMIN_ID, ADMIN_SECRET)


def _labels(refs: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [{"source-ref": ref, "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": "Violence"}] if clip in HEAD else []}}
        for clip, clip_refs in refs.items() for ref in clip_refs]


@pytest.fixture(scope="module")
def adapter(rek: Any, home: Home) -> tuple[str, str]:
    """(project ARN, trained adapter ARN)."""
    project = rek.create_project(ProjectName="tuned", Feature="CONTENT_MODERATION",
                                 AutoUpdate="DISABLED")["ProjectArn"]
    assets = {}
    for field, refs in (("TrainingData", home.train), ("TestingData", home.held)):
        home.write(f"{field}.manifest", _labels(refs))
        assets[field] = {"Assets": [{"GroundTruthManifest": {"S3Object": {
            "Bucket": IMAGES, "Name": f"{field}.manifest"}}}]}
    started = time.monotonic()
    arn = rek.create_project_version(ProjectArn=project, VersionName="a1",
                                     OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": "a1"},
                                     **assets)["ProjectVersionArn"]
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["a1"], WaiterConfig=WAIT)
    print(f"adapter trained in {time.monotonic() - started:.1f} s")
    return str(project), str(arn)


def _start(rek: Any, manifest: str, prefix: str, **moderation: Any) -> str:
    return str(rek.start_media_analysis_job(
        OperationsConfig={"DetectModerationLabels": moderation},
        Input={"S3Object": {"Bucket": IMAGES, "Name": manifest}},
        OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": prefix})["JobId"])


def _finished(rek: Any, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_DEADLINE_S
    while time.monotonic() < deadline:
        got = rek.get_media_analysis_job(JobId=job_id)
        if got["Status"] in ("SUCCEEDED", "FAILED"):
            return dict(got)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {JOB_DEADLINE_S} s")


def _by_ref(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["source-ref"]: line["detect-moderation-labels"] for line in lines}


def _confidences(answer: dict[str, Any]) -> dict[str, float]:
    return {label["Name"]: label["Confidence"] for label in answer["ModerationLabels"]}


def _same(job: dict[str, Any], direct: dict[str, Any]) -> bool:
    """The job's answer and DetectModerationLabels' name the same labels, as confident.

    Batched and single-image model runs may differ in the last float digits.
    """
    mine, theirs = _confidences(job), _confidences(direct)
    return mine.keys() == theirs.keys() and all(
        abs(mine[name] - theirs[name]) < 0.5 for name in mine)


def test_a_job_with_an_adapter_labels_held_out_positives_beside_a_job_without(
        rek: Any, home: Home, adapter: tuple[str, str]) -> None:
    _, arn = adapter
    home.write("held.jsonl", [{"source-ref": ref}
                              for refs in home.held.values() for ref in refs])
    tuned = _start(rek, "held.jsonl", "tuned", ProjectVersion=arn, MinConfidence=0)
    plain = _start(rek, "held.jsonl", "plain", MinConfidence=0)  # same stage, same time
    got = _finished(rek, tuned)
    assert got["Status"] == "SUCCEEDED", got.get("FailureDetails")
    assert got["OperationsConfig"] == {"DetectModerationLabels": {
        "MinConfidence": 0.0, "ProjectVersion": arn}}
    base = _finished(rek, plain)
    assert base["Status"] == "SUCCEEDED", base.get("FailureDetails")
    assert "ProjectVersion" not in base["OperationsConfig"]["DetectModerationLabels"]
    lines = _by_ref(home.results(got["Results"]["S3Object"]["Name"]))
    plain_lines = _by_ref(home.results(base["Results"]["S3Object"]["Name"]))
    hits = {True: 0, False: 0}
    for clip, refs in home.held.items():
        for ref in refs:
            image = {"Bytes": home.images[ref]}
            answer = lines[ref]
            assert answer["ProjectVersion"] == arn
            assert _same(answer, rek.detect_moderation_labels(
                Image=image, ProjectVersion=arn, MinConfidence=0))
            hits[clip in HEAD] += _confidences(answer).get("Violence", 0.0) >= 50
            unaffected = plain_lines[ref]
            assert "ProjectVersion" not in unaffected
            assert "Violence" not in _confidences(unaffected)
            assert _same(unaffected, rek.detect_moderation_labels(Image=image, MinConfidence=0))
    positives, negatives = len(HEAD) * HELD_OUT, len(OTHER) * HELD_OUT
    print(f"media-analysis job with the adapter: Violence >= 50 on {hits[True]}/{positives} "
          f"held-out positives, {hits[False]}/{negatives} negatives")
    assert hits[True] >= positives - 1 and hits[False] <= 1


def test_start_refuses_a_missing_or_untrained_adapter(
        rek: Any, daemon: Daemon, home: Home, adapter: tuple[str, str]) -> None:
    project, arn = adapter
    home.write("one.jsonl", [{"source-ref": home.held[HEAD[0]][0]}])
    for missing in (f"{arn[:-3]}999", project.rsplit("/", 1)[0] + "/version/none/1",
                    arn.replace(":us-east-1:", ":eu-west-1:")):
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            _start(rek, "one.jsonl", "missing", ProjectVersion=missing)
    name, created = project.split(":project/")[1].split("/")
    now = int(time.time() * 1000)
    assert daemon.ledger is not None  # another node's version: it stays in training here
    daemon.ledger.submit(CreateVersion(Version(
        VersionRef(name, "elsewhere", now), int(created), Feature.CONTENT_MODERATION,
        VersionStatus.TRAINING_IN_PROGRESS, "The model is being trained", now, "other-node",
        {"OutputConfig": {"S3Bucket": OUT}}, {})))
    pending = project.rsplit("/", 1)[0] + f"/version/elsewhere/{now}"
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="still being trained"):
        _start(rek, "one.jsonl", "pending", ProjectVersion=pending)
    assert all(job.get("OutputConfig", {}).get("S3KeyPrefix") not in ("missing", "pending")
               for job in rek.list_media_analysis_jobs()["MediaAnalysisJobs"])


def test_a_key_denied_the_project_cannot_use_its_adapter_in_a_job(
        daemon: Daemon, home: Home, adapter: tuple[str, str]) -> None:
    _, arn = adapter
    denied = _client(daemon.endpoint, DENIED_ID, DENIED_SECRET)
    home.write("one.jsonl", [{"source-ref": home.held[HEAD[0]][0]}])
    with pytest.raises(denied.exceptions.AccessDeniedException):
        _start(denied, "one.jsonl", "denied", ProjectVersion=arn)
    assert _start(denied, "one.jsonl", "allowed")  # without the adapter it may


def test_start_media_analysis_job_touches_its_adapter() -> None:
    arns = Arns("us-east-1", "123456789012")
    version = "arn:aws:rekognition:eu-west-1:123456789012:project/tuned/version/a1/5"
    params: dict[str, Any] = {
        "OperationsConfig": {"DetectModerationLabels": {"ProjectVersion": version}},
        "Input": {"S3Object": {"Bucket": "b", "Name": "m"}}, "OutputConfig": {"S3Bucket": "o"}}
    assert request_resources("StartMediaAnalysisJob", params, arns) == [
        "arn:aws:rekognition:us-east-1:123456789012:project/tuned/version/a1/5"]
    del params["OperationsConfig"]["DetectModerationLabels"]["ProjectVersion"]
    assert request_resources("StartMediaAnalysisJob", params, arns) == ["*"]
