"""ARNs are written in the region the client signed for, and work for tagging anywhere."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore
import pytest
from botocore.config import Config as BotoConfig
from conftest import make_config, retry_resets
from streams import create

from streamproc.daemon import Daemon

ACCOUNT = "000000000000"  # the configured default
KEY_ID, SECRET = "AKIDREGIONTEST000001", "region-secret"


def client(endpoint: str, region: str, **config: Any) -> Any:
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        config=BotoConfig(retries={"total_max_attempts": 1}, **config)))


def test_arns_follow_the_client_region(daemon: Daemon, rek: Any) -> None:
    eu = client(daemon.endpoint, "eu-west-1")
    arn = eu.create_collection(CollectionId="regional")["CollectionArn"]
    try:
        assert arn == f"arn:aws:rekognition:eu-west-1:{ACCOUNT}:collection/regional"
        assert eu.describe_collection(CollectionId="regional")["CollectionARN"] == arn
        eu.tag_resource(ResourceArn=arn, Tags={"team": "eu"})
        # The us-east-1 client sees its own region's ARN for the same collection, and the
        # same tags through it: one resource, whatever region a client names.
        us_arn = rek.describe_collection(CollectionId="regional")["CollectionARN"]
        assert us_arn == f"arn:aws:rekognition:us-east-1:{ACCOUNT}:collection/regional"
        assert rek.list_tags_for_resource(ResourceArn=us_arn)["Tags"] == {"team": "eu"}
        cn = client(daemon.endpoint, "cn-north-1")
        cn_arn = cn.describe_collection(CollectionId="regional")["CollectionARN"]
        assert cn_arn == f"arn:aws-cn:rekognition:cn-north-1:{ACCOUNT}:collection/regional"
        cn.untag_resource(ResourceArn=cn_arn, TagKeys=["team"])
        assert eu.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}
        unsigned = client(daemon.endpoint, "ap-south-1", signature_version=botocore.UNSIGNED)
        assert unsigned.describe_collection(CollectionId="regional")["CollectionARN"] == us_arn
        other_account = arn.replace(ACCOUNT, "123456789012")
        with pytest.raises(eu.exceptions.ResourceNotFoundException):
            eu.list_tags_for_resource(ResourceArn=other_account)
    finally:
        rek.delete_collection(CollectionId="regional")
    with pytest.raises(eu.exceptions.ResourceNotFoundException):
        eu.list_tags_for_resource(ResourceArn=arn)


def test_processor_arns_follow_the_client_region(daemon: Daemon, rek: Any) -> None:
    eu = client(daemon.endpoint, "eu-west-1")
    rek.create_collection(CollectionId="regional-people")
    try:
        arn = create(eu, "regional-cam", "tcp://127.0.0.1:45999", "regional-out",
                     "regional-people")
        assert arn == f"arn:aws:rekognition:eu-west-1:{ACCOUNT}:streamprocessor/regional-cam"
        assert eu.describe_stream_processor(Name="regional-cam")["StreamProcessorArn"] == arn
        eu.tag_resource(ResourceArn=arn, Tags={"floor": "3"})
        us_arn = rek.describe_stream_processor(Name="regional-cam")["StreamProcessorArn"]
        assert ":us-east-1:" in us_arn
        assert rek.list_tags_for_resource(ResourceArn=us_arn)["Tags"] == {"floor": "3"}
    finally:
        rek.delete_stream_processor(Name="regional-cam")
        rek.delete_collection(CollectionId="regional-people")


def test_a_region_that_cannot_be_in_an_arn_gets_the_configured_one(daemon: Daemon) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    header = ("AWS4-HMAC-SHA256 Credential=AKID/20250101/EU_WEST:1/rekognition/aws4_request, "
              "SignedHeaders=host, Signature=" + "0" * 64)
    conn.request("POST", "/", body=json.dumps({"CollectionId": "odd-region"}), headers={
        "X-Amz-Target": "RekognitionService.CreateCollection", "Authorization": header,
        "Content-Type": "application/x-amz-json-1.1"})
    out = json.loads(conn.getresponse().read())
    conn.close()
    try:
        assert out["CollectionArn"].startswith("arn:aws:rekognition:us-east-1:")
    finally:
        client(daemon.endpoint, "us-east-1").delete_collection(CollectionId="odd-region")


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(make_config(tmp_path_factory.mktemp("regions-auth"), **{
        "auth.enabled": True, "auth.access_keys": {KEY_ID: SECRET},
        "server.region": "us-west-2", "server.account_id": "123456789012"}))
    d.start()
    yield d
    d.stop()


def test_signed_region_and_configured_account(signed: Daemon) -> None:
    eu = client(signed.endpoint, "eu-central-1")
    arn = eu.create_collection(CollectionId="verified")["CollectionArn"]
    assert arn == "arn:aws:rekognition:eu-central-1:123456789012:collection/verified"
    eu.tag_resource(ResourceArn=arn, Tags={"k": "v"})
    west = client(signed.endpoint, "us-west-2")
    west_arn = west.describe_collection(CollectionId="verified")["CollectionARN"]
    assert west.list_tags_for_resource(ResourceArn=west_arn)["Tags"] == {"k": "v"}
