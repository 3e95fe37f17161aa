"""Videos and images from an S3-compatible store: moto in server mode, read through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import client_for, fixture_photo, make_config
from jobs_helpers import BOTH, video, wait_job
from s3servers import moto_server

from streamproc.daemon import Daemon

KEYS = {"aws_access_key_id": "moto-key", "aws_secret_access_key": "moto-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server process on a free port, stopped after the module."""
    with moto_server() as server:
        yield server.endpoint


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> dict[str, str]:
    """A versioned bucket holding the two-person clip, a photo, and two versions of a key."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **KEYS)
    s3.create_bucket(Bucket="vids")
    s3.put_bucket_versioning(Bucket="vids", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="vids", Key=BOTH.name, Body=BOTH.read_bytes())
    s3.put_object(Bucket="vids", Key="photos/a1.jpg", Body=fixture_photo("person_a_1"))
    first = s3.put_object(Bucket="vids", Key="changing.mp4", Body=BOTH.read_bytes())
    s3.put_object(Bucket="vids", Key="changing.mp4", Body=b"no longer a video")
    return {"old_version": first["VersionId"]}


@pytest.fixture(scope="module")
def rk(s3_endpoint: str, bucket: dict[str, str], tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[Any]:
    """A daemon reading objects from the moto endpoint."""
    d = Daemon(make_config(tmp_path_factory.mktemp("s3-data"), **{
        "objects.s3_endpoint": s3_endpoint, "objects.s3_access_key_id": KEYS[
            "aws_access_key_id"], "objects.s3_secret_access_key": KEYS["aws_secret_access_key"],
        "objects.timeout_s": 5}))
    d.start()
    yield client_for(d.endpoint)
    d.stop()
    assert not list((Path(d.config.storage.data_dir) / "scratch").glob("object-*"))


def test_a_video_from_s3(rk: Any) -> None:
    out = wait_job(rk.get_face_detection,
                   rk.start_face_detection(Video=video(BOTH.name))["JobId"])
    assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
    assert out["VideoMetadata"]["DurationMillis"] == 4480 and len(out["Faces"]) >= 40


def test_versions_are_honoured(rk: Any, bucket: dict[str, str]) -> None:
    old = wait_job(rk.get_face_detection, rk.start_face_detection(
        Video=video("changing.mp4", Version=bucket["old_version"]))["JobId"])
    assert old["JobStatus"] == "SUCCEEDED" and old["Faces"]
    assert old["Video"]["S3Object"]["Version"] == bucket["old_version"]
    latest = wait_job(rk.get_face_detection,
                      rk.start_face_detection(Video=video("changing.mp4"))["JobId"])
    assert latest["JobStatus"] == "FAILED"
    assert latest["StatusMessage"].startswith("Unsupported codec/format")
    with pytest.raises(rk.exceptions.InvalidS3ObjectException):
        rk.start_face_detection(Video=video("changing.mp4", Version="no-such-version"))


def test_missing_objects_and_buckets(rk: Any) -> None:
    with pytest.raises(rk.exceptions.InvalidS3ObjectException):
        rk.start_face_detection(Video=video("missing.mp4"))
    with pytest.raises(rk.exceptions.InvalidS3ObjectException):
        rk.start_face_detection(Video=video(BOTH.name, bucket="no-such-bucket"))
    with pytest.raises(rk.exceptions.InvalidS3ObjectException):
        rk.detect_faces(Image={"S3Object": {"Bucket": "vids", "Name": "photos/missing.jpg"}})


def test_images_come_from_the_same_store(rk: Any) -> None:
    out = rk.detect_faces(Image={"S3Object": {"Bucket": "vids", "Name": "photos/a1.jpg"}})
    assert len(out["FaceDetails"]) == 1
