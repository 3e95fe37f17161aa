"""Media-analysis jobs end to end: boto3 against a real daemon and the real moderation engine.

StartMediaAnalysisJob over a manifest of real photos and bad lines, on the local root, on
moto's S3 server and on ``rclone serve s3``: the results manifest, read back as a client
would, holds each valid line once and in order, and the summary counts and names the rest.
A missing manifest or output bucket FAILS the job with FailureDetails; List pages newest
first; a token names one request; a daemon killed mid-job resumes and writes each line once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import IMAGES, SHARED, client_for, make_config, require_shared

from streamproc.daemon import Daemon

if TYPE_CHECKING:
    from s3servers import S3Server

pytest_plugins = ["s3servers"]
pytestmark = pytest.mark.e2e  # a daemon, S3 servers

PHOTOS = sorted(p for p in IMAGES.rglob("*") if p.suffix in (".jpg", ".png"))
NO_KAFKA = {"kafka.bootstrap": "127.0.0.1:9"}  # media-analysis jobs send no notice
ENDED = ("SUCCEEDED", "FAILED")


# ---- where the objects live ---------------------------------------------------------------
class Objects:
    """One object store as a client sees it: put, get, make a bucket."""

    def put(self, bucket: str, key: str, body: bytes) -> None:
        raise NotImplementedError

    def get(self, bucket: str, key: str) -> bytes:
        raise NotImplementedError

    def make_bucket(self, bucket: str) -> None:
        raise NotImplementedError


@dataclass
class LocalObjects(Objects):
    """The daemon's local root: a folder per bucket."""

    root: Path

    def put(self, bucket: str, key: str, body: bytes) -> None:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def get(self, bucket: str, key: str) -> bytes:
        return (self.root / bucket / key).read_bytes()

    def make_bucket(self, bucket: str) -> None:
        (self.root / bucket).mkdir(parents=True, exist_ok=True)


@dataclass
class S3Objects(Objects):
    """An S3 server, through boto3."""

    server: S3Server

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.server.client().put_object(Bucket=bucket, Key=key, Body=body)

    def get(self, bucket: str, key: str) -> bytes:
        return bytes(self.server.client().get_object(Bucket=bucket, Key=key)["Body"].read())

    def make_bucket(self, bucket: str) -> None:
        self.server.make_bucket(bucket)


# ---- the manifest and what it must give -----------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    """A manifest's body and what its job must write: valid refs in order, bad lines' codes."""

    body: bytes
    refs: list[str]  # the results manifest's source-refs, in order (duplicates kept)
    errors: list[tuple[int, str]]  # (line number, code), in order


def mixed_manifest(objects: Objects, bucket: str) -> Manifest:
    """Every photo (one twice), and one line of each kind of error, a blank line among them."""
    require_shared()
    for photo in PHOTOS:
        objects.put(bucket, f"img/{photo.name}", photo.read_bytes())
    objects.put(bucket, "img/not-an-image.jpg", b"this is text, not a JPEG")
    refs = [f"s3://{bucket}/img/{photo.name}" for photo in PHOTOS]
    bad = [("not json at all", "ERROR_INVALID_JSON_LINE"),
           (json.dumps({"other": "s3://x/y.jpg"}), "ERROR_MISSING_SOURCE_REF"),
           (json.dumps({"source-ref": "https://example.com/y.jpg"}),
            "ERROR_INVALID_SOURCE_REF_FORMAT"),
           (json.dumps({"source-ref": f"s3://{bucket}/img/missing.jpg"}),
            "ERROR_INVALID_S3_OBJECT"),
           (json.dumps({"source-ref": f"s3://{bucket}/img/not-an-image.jpg"}),
            "ERROR_INVALID_IMAGE")]
    lines: list[str] = []
    valid: list[str] = []
    errors: list[tuple[int, str]] = []
    for n, ref in enumerate([*refs, refs[0]]):  # a duplicate is analysed twice
        lines.append(json.dumps({"source-ref": ref, "class": "kept-as-is"}))
        valid.append(ref)
        if n < len(bad):
            text, code = bad[n]
            lines.append(text)
            errors.append((len(lines), code))
        if n == 2:
            lines.append("   ")  # blank: no JSON line, not counted, keeps its number
    return Manifest(("\n".join(lines) + "\n").encode(), valid, errors)


def start(rek: Any, manifest: tuple[str, str], out: str, **extra: Any) -> str:
    """StartMediaAnalysisJob over ``manifest`` (bucket, key) into ``out``."""
    params: dict[str, Any] = {
        "OperationsConfig": {"DetectModerationLabels": {"MinConfidence": 50}},
        "Input": {"S3Object": {"Bucket": manifest[0], "Name": manifest[1]}},
        "OutputConfig": {"S3Bucket": out, "S3KeyPrefix": "results/"}, **extra}
    return str(rek.start_media_analysis_job(**params)["JobId"])


def wait_media(rek: Any, job_id: str, timeout: float = 180.0) -> dict[str, Any]:
    """Get until the job ended."""
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, Any] = rek.get_media_analysis_job(JobId=job_id)
        if got["Status"] in ENDED or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def check_output(got: dict[str, Any], objects: Objects, manifest: Manifest) -> None:
    """A SUCCEEDED job's two objects hold what the manifest asked for, nothing else."""
    assert got["Status"] == "SUCCEEDED", got.get("FailureDetails")
    version = got["Results"]["ModelVersions"]["Moderation"]
    assert version
    results = got["Results"]["S3Object"]
    assert results["Name"] == f"results/{got['JobId']}/results.jsonl"
    lines = [json.loads(x) for x in objects.get(results["Bucket"], results["Name"]).splitlines()]
    assert [line["source-ref"] for line in lines] == manifest.refs
    for line in lines:
        labels = line["detect-moderation-labels"]
        assert labels["ModerationModelVersion"] == version
        assert all(label["Confidence"] >= 50 for label in labels["ModerationLabels"])
    summary_obj = got["ManifestSummary"]["S3Object"]
    summary = json.loads(objects.get(summary_obj["Bucket"], summary_obj["Name"]))
    assert summary["version"] == "1.0"
    valid, invalid = len(manifest.refs), len(manifest.errors)
    assert summary["statistics"] == {"total-json-lines": valid + invalid,
                                     "valid-json-lines": valid, "invalid-json-lines": invalid}
    assert [(e["line-numer"], e["code"]) for e in summary["errors"]] == manifest.errors
    assert all(e["line-number"] == e["line-numer"] and e["message"] for e in summary["errors"])


# ---- the local root -----------------------------------------------------------------------
@dataclass
class Local:
    rek: Any
    objects: LocalObjects
    daemon: Daemon


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    root = tmp_path_factory.mktemp("media-objects")
    objects = LocalObjects(root)
    for bucket in ("in-bucket", "out-bucket"):
        objects.make_bucket(bucket)
    d = Daemon(make_config(tmp_path_factory.mktemp("media-data"), **{
        "objects.local_root": str(root), **NO_KAFKA}))
    d.start()
    yield Local(client_for(d.endpoint), objects, d)
    d.stop()


def test_a_manifest_on_the_local_root_succeeds_with_its_results_and_summary(
        local: Local) -> None:
    manifest = mixed_manifest(local.objects, "in-bucket")
    local.objects.put("in-bucket", "m/manifest.jsonl", manifest.body)
    before = time.time()
    job_id = start(local.rek, ("in-bucket", "m/manifest.jsonl"), "out-bucket",
                   JobName="nightly-run")
    got = wait_media(local.rek, job_id)
    check_output(got, local.objects, manifest)
    assert got["JobName"] == "nightly-run" and got["JobId"] == job_id
    assert got["OperationsConfig"] == {"DetectModerationLabels": {"MinConfidence": 50.0}}
    assert got["Input"] == {"S3Object": {"Bucket": "in-bucket", "Name": "m/manifest.jsonl"}}
    assert got["OutputConfig"] == {"S3Bucket": "out-bucket", "S3KeyPrefix": "results/"}
    created, completed = got["CreationTimestamp"], got["CompletionTimestamp"]
    assert before - 1 <= created.timestamp() <= completed.timestamp() <= time.time() + 1
    assert "FailureDetails" not in got and "KmsKeyId" not in got


def test_a_missing_manifest_fails_the_job_with_invalid_s3_object(local: Local) -> None:
    job_id = start(local.rek, ("in-bucket", "nowhere/manifest.jsonl"), "out-bucket")
    got = wait_media(local.rek, job_id)
    assert got["Status"] == "FAILED" and got["FailureDetails"]["Code"] == "INVALID_S3_OBJECT"
    assert got["FailureDetails"]["Message"] and "Results" not in got
    assert "CompletionTimestamp" in got


def test_a_missing_output_bucket_fails_the_job_with_invalid_output_config(
        local: Local) -> None:
    local.objects.put("in-bucket", "m/one.jsonl", json.dumps(
        {"source-ref": f"s3://in-bucket/img/{PHOTOS[0].name}"}).encode())
    local.objects.put("in-bucket", f"img/{PHOTOS[0].name}", PHOTOS[0].read_bytes())
    job_id = start(local.rek, ("in-bucket", "m/one.jsonl"), "no-such-bucket")
    got = wait_media(local.rek, job_id)
    assert got["Status"] == "FAILED"
    assert got["FailureDetails"]["Code"] == "INVALID_OUTPUT_CONFIG"
    assert not (local.objects.root / "no-such-bucket").exists()  # never made


def test_dot_dot_keys_never_leave_the_bucket(local: Local) -> None:
    """A manifest key with ``..`` names no object (FAILED); such a prefix is refused at Start."""
    local.objects.put("in-bucket", "real.jsonl", json.dumps(
        {"source-ref": f"s3://in-bucket/img/{PHOTOS[0].name}"}).encode())
    local.objects.put("in-bucket", f"img/{PHOTOS[0].name}", PHOTOS[0].read_bytes())
    job_id = start(local.rek, ("in-bucket", "img/../real.jsonl"), "out-bucket")
    got = wait_media(local.rek, job_id)
    assert got["Status"] == "FAILED" and got["FailureDetails"]["Code"] == "INVALID_S3_OBJECT"
    with pytest.raises(local.rek.exceptions.InvalidParameterException, match="OutputConfig"):
        start(local.rek, ("in-bucket", "real.jsonl"), "out-bucket",
              OutputConfig={"S3Bucket": "out-bucket", "S3KeyPrefix": "../escaped/"})
    assert not (local.objects.root / "escaped").exists()


def test_list_pages_newest_first_with_get_s_descriptions(local: Local) -> None:
    ids = [start(local.rek, ("in-bucket", "nowhere.jsonl"), "out-bucket", JobName=f"l-{n}")
           for n in range(3)]
    for job_id in ids:
        wait_media(local.rek, job_id)
    listed: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = local.rek.list_media_analysis_jobs(
            MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["MediaAnalysisJobs"]) <= 2
        listed += page["MediaAnalysisJobs"]
        token = page.get("NextToken")
        if not token:
            break
    mine = [j for j in listed if j["JobId"] in ids]
    assert [j["JobId"] for j in mine] == ids[::-1]  # newest first
    assert len({j["JobId"] for j in listed}) == len(listed)  # no job twice
    assert mine[0] == {k: v for k, v in local.rek.get_media_analysis_job(
        JobId=ids[-1]).items() if k != "ResponseMetadata"}
    with pytest.raises(local.rek.exceptions.InvalidPaginationTokenException):
        local.rek.list_media_analysis_jobs(NextToken="bm90LWEtdG9rZW4")
    with pytest.raises(local.rek.exceptions.InvalidParameterException):
        local.rek.list_media_analysis_jobs(MaxResults=101)


def test_a_client_request_token_names_one_request(local: Local) -> None:
    first = start(local.rek, ("in-bucket", "nowhere.jsonl"), "out-bucket",
                  ClientRequestToken="media-token-1")
    assert start(local.rek, ("in-bucket", "nowhere.jsonl"), "out-bucket",
                 ClientRequestToken="media-token-1") == first
    with pytest.raises(local.rek.exceptions.IdempotentParameterMismatchException):
        start(local.rek, ("in-bucket", "nowhere.jsonl"), "out-bucket",
              ClientRequestToken="media-token-1", JobName="another")
    with pytest.raises(local.rek.exceptions.IdempotentParameterMismatchException):
        start(local.rek, ("in-bucket", "nowhere.jsonl"), "out-bucket",
              ClientRequestToken="media-token-1",
              OperationsConfig={"DetectModerationLabels": {"MinConfidence": 70}})


def test_a_missing_adapter_or_a_kms_key_is_refused_at_start(local: Local) -> None:
    # No project p here: a version ARN names nothing (test_media_adapter.py runs a real one).
    arn = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"
    with pytest.raises(local.rek.exceptions.ResourceNotFoundException, match="does not exist"):
        start(local.rek, ("in-bucket", "nowhere.jsonl"), "out-bucket",
              OperationsConfig={"DetectModerationLabels": {"ProjectVersion": arn}})
    with pytest.raises(local.rek.exceptions.InvalidParameterException, match="KmsKeyId"):
        start(local.rek, ("in-bucket", "nowhere.jsonl"), "out-bucket", KmsKeyId="alias/k")
    with pytest.raises(local.rek.exceptions.ResourceNotFoundException):
        local.rek.get_media_analysis_job(JobId="0" * 32)


# ---- S3 servers ---------------------------------------------------------------------------
@dataclass
class OnS3:
    rek: Any
    objects: S3Objects


@pytest.fixture(scope="module", params=["moto", "rclone"])
def on_s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[OnS3]:
    server: S3Server = request.getfixturevalue(f"{request.param}_s3")
    objects = S3Objects(server)
    for bucket in ("in-bucket", "out-bucket"):
        objects.make_bucket(bucket)
    d = Daemon(make_config(tmp_path_factory.mktemp(f"media-{request.param}"), **{
        "objects.s3_endpoint": server.endpoint, "objects.s3_access_key_id": server.key,
        "objects.s3_secret_access_key": server.secret, "objects.timeout_s": 10, **NO_KAFKA}))
    d.start()
    yield OnS3(client_for(d.endpoint), objects)
    d.stop()


def test_a_manifest_on_an_s3_server_succeeds_and_a_missing_bucket_fails(on_s3: OnS3) -> None:
    manifest = mixed_manifest(on_s3.objects, "in-bucket")
    on_s3.objects.put("in-bucket", "m/manifest.jsonl", manifest.body)
    job_id = start(on_s3.rek, ("in-bucket", "m/manifest.jsonl"), "out-bucket")
    check_output(wait_media(on_s3.rek, job_id), on_s3.objects, manifest)
    failed = wait_media(on_s3.rek, start(on_s3.rek, ("in-bucket", "m/manifest.jsonl"),
                                         "no-such-bucket"))
    assert failed["Status"] == "FAILED"
    assert failed["FailureDetails"]["Code"] == "INVALID_OUTPUT_CONFIG"
    missing = wait_media(on_s3.rek, start(on_s3.rek, ("in-bucket", "none.jsonl"), "out-bucket"))
    assert missing["FailureDetails"]["Code"] == "INVALID_S3_OBJECT"


# ---- a daemon killed mid-job ----------------------------------------------------------------
KILL_LINES = 300  # distinct keys over the photos: each must land in the results once


def _serve(data_dir: Path, config: Path) -> tuple[subprocess.Popen[str], Any]:
    require_shared()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "serve", "--config", str(config), "--port", "0",
         "--data-dir", str(data_dir), "--model-root", str(SHARED), "--model-pack", "test_mfn",
         "--kafka", NO_KAFKA["kafka.bootstrap"], "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith("streamproc ready on "), line
    return proc, client_for(line.split()[-1])


def _resolved(checkpoint: Path) -> int:
    """Manifest lines the launch's last checkpoint says are resolved (0: none yet)."""
    try:
        return int(json.loads(checkpoint.read_text())["lines"])
    except (OSError, ValueError, KeyError):
        return 0


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_daemon_killed_mid_job_resumes_and_writes_each_line_once(tmp_path: Path) -> None:
    objects = LocalObjects(tmp_path / "objects")
    objects.make_bucket("out-bucket")
    require_shared()
    for photo in PHOTOS:
        objects.put("in-bucket", f"src/{photo.name}", photo.read_bytes())
    refs = []
    for n in range(KILL_LINES):  # hard links: distinct keys, one file's bytes
        photo = PHOTOS[n % len(PHOTOS)]
        key = f"img/{n:04d}{photo.suffix}"
        (objects.root / "in-bucket" / key).parent.mkdir(parents=True, exist_ok=True)
        os.link(objects.root / "in-bucket" / "src" / photo.name, objects.root / "in-bucket" / key)
        refs.append(f"s3://in-bucket/{key}")
    objects.put("in-bucket", "big.jsonl",
                "".join(json.dumps({"source-ref": r}) + "\n" for r in refs).encode())
    config = tmp_path / "streamproc.yaml"
    config.write_text(f"objects:\n  local_root: {objects.root}\n"
                      "jobs:\n  media_analysis_checkpoint_lines: 10\n")  # kill between two
    data = tmp_path / "data"

    proc, rek = _serve(data, config)
    try:
        job_id = start(rek, ("in-bucket", "big.jsonl"), "out-bucket")
        checkpoint = data / "media" / job_id / "checkpoint.json"
        _until(lambda: _resolved(checkpoint) > 0, 120, "the job never checkpointed")
        proc.send_signal(signal.SIGKILL)  # mid-job: no shutdown at all
        proc.wait(10)
        killed_at = _resolved(checkpoint)
        assert 0 < killed_at < KILL_LINES, killed_at  # it really was cut off mid-way
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    stale = data / "media" / ("f" * 32)  # a job this daemon no longer knows: removed
    stale.mkdir()
    proc, rek = _serve(data, config)
    try:
        assert not stale.exists()
        got = wait_media(rek, job_id, timeout=300)
        check_output(got, objects, Manifest(b"", refs, []))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
