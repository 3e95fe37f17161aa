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

import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from botocore.config import Config as BotoConfig
from conftest import retry_resets
from projects_helpers import (
    HEAD,
    IMAGES,
    OTHER,
    OUT,
    FrameObjects,
    deny_policies,
    frame_objects,
    keyed_client,
    keyed_config,
    pending_elsewhere,
    running,
    train_adapter,
)

from streamproc.api.resources import request_resources
from streamproc.daemon import Daemon
from streamproc.daemon.media import JobAdapters
from streamproc.errors import ResourceNotFoundException
from streamproc.moderation.adapter import Adapter, AdapterModerator
from streamproc.projects.versions_serving import VersionModels
from streamproc.rekognition.constants import Arns
from streamproc.training.heads import TrainedHeads

TRAIN, HELD_OUT = 8, 4  # frames per clip
ADMIN_ID, ADMIN_SECRET = "AKIDMEDIAADAPTER0001", "admin/SECRET+media-1"
DENIED_ID, DENIED_SECRET = "AKIDMEDIAADAPTER0002", "denied/SECRET+media-2"
POLICIES = deny_policies(DENIED_ID, "arn:aws:rekognition:*:*:project/tuned/*")
JOB_DEADLINE_S = 180.0


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> FrameObjects:
    return frame_objects(tmp_path_factory.mktemp("media-adapter") / "objects", TRAIN, HELD_OUT)


@pytest.fixture(scope="module")
def daemon(home: FrameObjects) -> Iterator[Daemon]:
    yield from running(Daemon(keyed_config(
        home.root.parent, home, {ADMIN_ID: ADMIN_SECRET, DENIED_ID: DENIED_SECRET}, POLICIES,
        **{"jobs.workers": 2})))


@pytest.fixture(scope="module")
def rek(daemon: Daemon) -> Any:
    return keyed_client(daemon.endpoint, ADMIN_ID, ADMIN_SECRET)


@pytest.fixture(scope="module")
def adapter(rek: Any, home: FrameObjects) -> tuple[str, str]:
    """(project ARN, trained adapter ARN)."""
    return train_adapter(rek, home, "a1")


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
        rek: Any, home: FrameObjects, adapter: tuple[str, str]) -> None:
    _, arn = adapter
    home.write("held.jsonl", [{"source-ref": ref}
                              for refs in home.held_refs.values() for ref in refs])
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
    for clip, refs in home.held_refs.items():
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
        rek: Any, daemon: Daemon, home: FrameObjects, adapter: tuple[str, str]) -> None:
    project, arn = adapter
    home.write("one.jsonl", [{"source-ref": home.held_refs[HEAD[0]][0]}])
    for missing in (f"{arn[:-3]}999", project.rsplit("/", 1)[0] + "/version/none/1",
                    arn.replace(":us-east-1:", ":eu-west-1:")):
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            _start(rek, "one.jsonl", "missing", ProjectVersion=missing)
    pending = pending_elsewhere(daemon, project)
    with pytest.raises(rek.exceptions.ResourceNotReadyException, match="still being trained"):
        _start(rek, "one.jsonl", "pending", ProjectVersion=pending)
    assert all(job.get("OutputConfig", {}).get("S3KeyPrefix") not in ("missing", "pending")
               for job in rek.list_media_analysis_jobs()["MediaAnalysisJobs"])


def test_a_client_in_another_region_starts_a_job_with_its_own_spelling_of_the_version(
        daemon: Daemon, home: FrameObjects, adapter: tuple[str, str]) -> None:
    """ARNs are the client's region's (as DetectModerationLabels reads them), not the server's."""
    _, arn = adapter
    eu = retry_resets(boto3.client(
        "rekognition", endpoint_url=daemon.endpoint, region_name="eu-west-1",
        aws_access_key_id=ADMIN_ID, aws_secret_access_key=ADMIN_SECRET,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"})))
    own = arn.replace(":us-east-1:", ":eu-west-1:")
    assert own != arn
    home.write("one.jsonl", [{"source-ref": home.held_refs[HEAD[0]][0]}])
    job = _finished(eu, _start(eu, "one.jsonl", "eu", ProjectVersion=own, MinConfidence=0))
    assert job["Status"] == "SUCCEEDED", job.get("FailureDetails")
    assert job["OperationsConfig"]["DetectModerationLabels"]["ProjectVersion"] == own
    (line,) = home.results(job["Results"]["S3Object"]["Name"])
    assert line["detect-moderation-labels"]["ProjectVersion"] == own
    with pytest.raises(eu.exceptions.ResourceNotFoundException):
        _start(eu, "one.jsonl", "eu-server-spelling", ProjectVersion=arn)


def test_a_key_denied_the_project_cannot_use_its_adapter_in_a_job(
        daemon: Daemon, home: FrameObjects, adapter: tuple[str, str]) -> None:
    _, arn = adapter
    denied = keyed_client(daemon.endpoint, DENIED_ID, DENIED_SECRET)
    home.write("one.jsonl", [{"source-ref": home.held_refs[HEAD[0]][0]}])
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


class _Models:
    """VersionModels' adapter lookup: records the resource ids asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def adapter(self, resource_id: str, arn: str) -> Adapter:
        self.asked.append(resource_id)
        return Adapter(arn, cast(TrainedHeads, None))


def test_job_adapters_name_a_version_by_start_s_id_and_an_older_job_s_arn_as_configured(
        ) -> None:
    adapters = JobAdapters(Arns("us-east-1", "123456789012"))
    models = _Models()
    adapters.bind(cast(VersionModels, models), cast(AdapterModerator, object()))
    eu = "arn:aws:rekognition:eu-west-1:123456789012:project/p/version/v/1"
    us = eu.replace(":eu-west-1:", ":us-east-1:")
    adapters.check("p/version/v/1", eu)  # resolved at Start, in an eu-west-1 client's region
    adapters.check(None, us)  # stored before: Start had checked it as the server spells it
    assert models.asked == ["p/version/v/1", "p/version/v/1"]
    with pytest.raises(ResourceNotFoundException):
        adapters.check(None, eu)
    assert adapters.moderator(None, us, threading.Event()).adapter.arn == us
