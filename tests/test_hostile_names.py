"""End to end: ARN spellings against a Deny, NUL and long names, tiny images, the collection quota.

One daemon with access keys and a policy (the cameras key may not touch collection
``denied``), an object root and a quota of 3 collections. Each answer must be the modelled
4xx, never a 500.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config as BotoConfig
from conftest import fixture_photo, make_config
from PIL import Image

from streamproc.daemon import Daemon

ACCOUNT = "000000000000"
CAM_ID, CAM_SECRET = "AKIDCAMERASHOSTILE01", "cam/SECRET+value-1"
ADMIN_ID, ADMIN_SECRET = "AKIDADMINHOSTILE0001", "admin/SECRET+value-2"
POLICIES = f"""
{CAM_ID}:
  Version: "2012-10-17"
  Statement:
    - {{Effect: Allow, Action: "rekognition:*", Resource: "*"}}
    - Effect: Deny
      Action: "rekognition:*"
      Resource: "arn:aws:rekognition:us-east-1:{ACCOUNT}:collection/denied"
"""


def client(daemon: Daemon, key: str, secret: str, region: str = "us-east-1") -> Any:
    return boto3.client("rekognition", endpoint_url=daemon.endpoint, region_name=region,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=BotoConfig(retries={"total_max_attempts": 1}))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("hostile")
    (home / "policies.yaml").write_text(POLICIES)
    (home / "keys.yaml").write_text(f"{CAM_ID}: {CAM_SECRET}\n{ADMIN_ID}: {ADMIN_SECRET}\n")
    (home / "objects" / "photos").mkdir(parents=True)
    (home / "objects" / "photos" / "a1.jpg").write_bytes(fixture_photo("person_a_1"))
    d = Daemon(make_config(home / "data", **{
        "auth.enabled": True, "auth.access_keys_file": str(home / "keys.yaml"),
        "auth.policy_file": str(home / "policies.yaml"),
        "objects.local_root": str(home / "objects"), "storage.max_collections": 3}))
    d.start()
    admin = client(d, ADMIN_ID, ADMIN_SECRET)
    admin.create_collection(CollectionId="denied", Tags={"owner": "hr"})
    yield d
    d.stop()


@pytest.mark.parametrize("arn", [
    f"arn:aws:rekognition:us-east-1:{ACCOUNT}:collection/denied",
    f"arn:aws:rekognition:eu-west-1:{ACCOUNT}:collection/denied",
    f"arn:aws-cn:rekognition:cn-north-1:{ACCOUNT}:collection/denied",
    f"arn:aws-cn:rekognition:us-east-1:{ACCOUNT}:collection/denied"])
def test_no_spelling_of_a_denied_collections_arn_gets_past_the_deny(hostile: Daemon,
                                                                     arn: str) -> None:
    cam = client(hostile, CAM_ID, CAM_SECRET)
    calls = (lambda: cam.tag_resource(ResourceArn=arn, Tags={"owner": "cam"}),
             lambda: cam.untag_resource(ResourceArn=arn, TagKeys=["owner"]),
             lambda: cam.list_tags_for_resource(ResourceArn=arn))
    for call in calls:
        with pytest.raises(cam.exceptions.AccessDeniedException) as err:
            call()
        assert (f"on resource: arn:aws:rekognition:us-east-1:{ACCOUNT}:collection/denied "
                "with an explicit deny") in err.value.response["Error"]["Message"]
    admin = client(hostile, ADMIN_ID, ADMIN_SECRET)
    assert admin.list_tags_for_resource(
        ResourceArn=f"arn:aws:rekognition:us-east-1:{ACCOUNT}:collection/denied")["Tags"] == {
        "owner": "hr"}


def test_an_arn_names_a_resource_only_in_the_requests_own_region(hostile: Daemon) -> None:
    eu = client(hostile, ADMIN_ID, ADMIN_SECRET, "eu-west-1")
    own = eu.describe_collection(CollectionId="denied")["CollectionARN"]
    assert own == f"arn:aws:rekognition:eu-west-1:{ACCOUNT}:collection/denied"
    assert eu.list_tags_for_resource(ResourceArn=own)["Tags"] == {"owner": "hr"}
    for other in (own.replace("eu-west-1", "us-east-1"), own.replace("arn:aws:", "arn:aws-cn:"),
                  own.replace(ACCOUNT, "123456789012")):
        with pytest.raises(eu.exceptions.ResourceNotFoundException):
            eu.list_tags_for_resource(ResourceArn=other)


def _tiny_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_images_under_80_pixels_a_side_are_invalid_parameters(hostile: Daemon) -> None:
    admin = client(hostile, ADMIN_ID, ADMIN_SECRET)
    for width, height in ((79, 300), (300, 79)):
        with pytest.raises(admin.exceptions.InvalidParameterException) as err:
            admin.detect_faces(Image={"Bytes": _tiny_png(width, height)})
        assert f"at least 80 pixels high and wide; this one is {width}x{height}" in \
            err.value.response["Error"]["Message"]
    assert admin.detect_faces(Image={"Bytes": _tiny_png(80, 80)})["FaceDetails"] == []


@pytest.mark.parametrize("call,code", [
    (lambda c: c.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "a1\0.jpg"}}),
     "InvalidParameterException"),
    (lambda c: c.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "a" * 1000}}),
     "InvalidS3ObjectException"),
    (lambda c: c.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "a" * 1025}}),
     "InvalidParameterException"),
    (lambda c: c.start_face_detection(Video={"S3Object": {"Bucket": "photos",
                                                          "Name": "v\0.mp4"}}),
     "InvalidParameterException"),
    (lambda c: c.start_face_detection(Video={"S3Object": {"Bucket": "photos",
                                                          "Name": "v" * 300}}),
     "InvalidS3ObjectException"),
    (lambda c: c.create_stream_processor(
        Name="nul-input", RoleArn="arn:aws:iam::123456789012:role/r",
        Input={"KinesisVideoStream": {"Arn": "/srv/media/a\0.mp4"}},
        Output={"KinesisDataStream": {"Arn": "kafka://127.0.0.1:9/t"}},
        Settings={"FaceSearch": {"CollectionId": "denied"}}), "InvalidParameterException"),
    (lambda c: c.list_tags_for_resource(
        ResourceArn=f"arn:aws:rekognition:us-east-1:{ACCOUNT}:collection/denied\0"),
     "InvalidParameterException"),
])
def test_nul_bytes_and_long_names_are_4xx_not_500(hostile: Daemon, call: Any,
                                                  code: str) -> None:
    admin = client(hostile, ADMIN_ID, ADMIN_SECRET)
    with pytest.raises(admin.exceptions.ClientError) as err:
        call(admin)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == code


def test_collections_stop_at_the_quota(hostile: Daemon) -> None:
    admin = client(hostile, ADMIN_ID, ADMIN_SECRET)
    admin.create_collection(CollectionId="second")
    admin.create_collection(CollectionId="third")
    with pytest.raises(admin.exceptions.ServiceQuotaExceededException, match="At most 3"):
        admin.create_collection(CollectionId="fourth")
    assert sorted(admin.list_collections()["CollectionIds"]) == ["denied", "second", "third"]
    admin.delete_collection(CollectionId="third")
    admin.create_collection(CollectionId="fourth")
    admin.delete_collection(CollectionId="fourth")
    admin.delete_collection(CollectionId="second")
