"""Every documented bad input gets its modelled error (never a 500, never a traceback)."""

from __future__ import annotations

import http.client
import io
import json
from typing import Any

import numpy as np
import pytest
from conftest import fixture_photo
from PIL import Image


def raw_call(daemon: Any, target: str, body: bytes | str,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST / without boto3, for bodies boto3 would refuse to send."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    hdrs = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
            **(headers or {})}
    conn.request("POST", "/", body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    return resp.status, json.loads(data) if data else {}, headers


def png(width: int, height: int, color: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), color, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("collection_id,field", [
    ("has space", "pattern"), ("x" * 256, "length less than or equal to 255"),
    ("ünïcode", "pattern")])
def test_collection_id_validated_server_side(rek: Any, collection_id: str, field: str) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.create_collection(CollectionId=collection_id)
    assert "CollectionId" in err.value.response["Error"]["Message"]
    assert field in err.value.response["Error"]["Message"]


def test_enum_and_range_validated(rek: Any, collection: str) -> None:
    image = {"Bytes": fixture_photo("person_a_1")}
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.index_faces(CollectionId=collection, Image=image, QualityFilter="BOGUS")
    assert "QualityFilter" in err.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.search_faces_by_image(CollectionId=collection, Image=image, FaceMatchThreshold=101)
    assert "FaceMatchThreshold" in err.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.search_faces(CollectionId=collection, FaceId="not-a-uuid")
    assert "FaceId" in err.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.index_faces(CollectionId=collection, Image=image, ExternalImageId="bad/slash")
    assert "ExternalImageId" in err.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.create_collection(CollectionId="tagged", Tags={"aws:reserved": "x"})
    assert "Tags" in err.value.response["Error"]["Message"]


def test_unknown_collection(rek: Any) -> None:
    image = {"Bytes": fixture_photo("person_a_1")}
    for call in (lambda: rek.index_faces(CollectionId="nope", Image=image),
                 lambda: rek.search_faces_by_image(CollectionId="nope", Image=image),
                 lambda: rek.list_faces(CollectionId="nope"),
                 lambda: rek.delete_faces(CollectionId="nope",
                                          FaceIds=["00000000-0000-0000-0000-000000000000"])):
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            call()


def test_bad_images(rek: Any, collection: str) -> None:
    with pytest.raises(rek.exceptions.InvalidImageFormatException):
        rek.detect_faces(Image={"Bytes": b"definitely not an image"})
    gif = io.BytesIO()
    Image.new("RGB", (100, 100)).save(gif, format="GIF")
    with pytest.raises(rek.exceptions.InvalidImageFormatException):
        rek.index_faces(CollectionId=collection, Image={"Bytes": gif.getvalue()})
    truncated = fixture_photo("person_a_1")[:200]
    with pytest.raises(rek.exceptions.InvalidImageFormatException):
        rek.detect_faces(Image={"Bytes": truncated})
    with pytest.raises(rek.exceptions.ImageTooLargeException):
        rek.detect_faces(Image={"Bytes": b"\xff\xd8" + b"\0" * (5 * 1024 * 1024)})


def test_decompression_bomb_is_refused_unread(rek: Any) -> None:
    bomb = io.BytesIO()
    Image.new("L", (12000, 12000)).save(bomb, format="PNG", optimize=True)
    assert len(bomb.getvalue()) < 1024 * 1024
    with pytest.raises(rek.exceptions.ImageTooLargeException):
        rek.detect_faces(Image={"Bytes": bomb.getvalue()})


def test_no_face_where_one_is_needed(rek: Any, collection: str) -> None:
    blank = {"Bytes": png(320, 240)}
    face = {"Bytes": fixture_photo("person_a_1")}
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.search_faces_by_image(CollectionId=collection, Image=blank)
    assert "no faces" in err.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.compare_faces(SourceImage=blank, TargetImage=face)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.compare_faces(SourceImage=face, TargetImage=blank)
    assert rek.detect_faces(Image=blank)["FaceDetails"] == []
    out = rek.index_faces(CollectionId=collection, Image=blank)
    assert out["FaceRecords"] == [] and out["UnindexedFaces"] == []


def test_s3_without_local_root_is_refused(tmp_path: Any) -> None:
    from conftest import client_for, make_config

    from streamproc.daemon import Daemon
    d = Daemon(make_config(tmp_path))
    d.start()
    try:
        rek = client_for(d.endpoint)
        with pytest.raises(rek.exceptions.InvalidS3ObjectException) as err:
            rek.detect_faces(Image={"S3Object": {"Bucket": "bucket", "Name": "k.jpg"}})
        assert "objects.local_root" in err.value.response["Error"]["Message"]
    finally:
        d.stop()


def test_malformed_requests_get_400(daemon: Any) -> None:
    status, body, headers = raw_call(daemon, "RekognitionService.ListCollections", b"{not json")
    assert status == 400 and body["__type"] == "SerializationException"
    assert headers["x-amzn-requestid"] and headers["x-amzn-errortype"] == "SerializationException"
    # Rekognition's error body: Code beside __type, the request id as Logref.
    assert body["Code"] == "SerializationException"
    assert body["Logref"] == headers["x-amzn-requestid"]
    for nested in (b"[" * 5000 + b"]" * 5000,
                   b'{"Image": {"Bytes": ' + b"[" * 900 + b"]" * 900 + b"}}"):
        status, body, _ = raw_call(daemon, "RekognitionService.DetectFaces", nested)
        assert status == 400 and body["__type"] == "SerializationException", body
    status, body, _ = raw_call(daemon, "RekognitionService.ListCollections", b"[1, 2]")
    assert status == 400 and body["__type"] == "SerializationException"
    status, body, _ = raw_call(daemon, "RekognitionService.NoSuchOp", b"{}")
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, body, _ = raw_call(daemon, "OtherService.ListCollections", b"{}")
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, body, _ = raw_call(daemon, "RekognitionService.CreateCollection", b"{}")
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert "CollectionId" in body["Message"]
    status, body, _ = raw_call(daemon, "RekognitionService.CreateCollection",
                               json.dumps({"CollectionId": 5}))
    assert status == 400 and body["__type"] == "InvalidParameterException"
    status, body, _ = raw_call(daemon, "RekognitionService.ListCollections",
                               json.dumps({"MaxResults": -1}))
    assert status == 400 and "MaxResults" in body["Message"]
    status, body, _ = raw_call(daemon, "RekognitionService.ListCollections",
                               json.dumps({"Surprise": 1}))
    assert status == 400 and "Surprise" in body["Message"]
    status, body, _ = raw_call(daemon, "RekognitionService.DetectFaces",
                               json.dumps({"Image": {"Bytes": "!!!not base64"}}))
    assert status == 400 and body["__type"] == "InvalidParameterException"
    status, body, _ = raw_call(daemon, "RekognitionService.DetectFaces",
                               json.dumps({"Image": {}}))
    assert status == 400 and body["__type"] == "InvalidParameterException"


def test_oversized_body_is_refused(daemon: Any) -> None:
    huge = b'{"Image": {"Bytes": "' + b"A" * (9 * 1024 * 1024) + b'"}}'
    status, body, _ = raw_call(daemon, "RekognitionService.DetectFaces", huge)
    assert status == 400 and body["__type"] == "ImageTooLargeException"


def test_health_and_metrics(daemon: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 200 and body["status"] == "ok"
    assert set(body["stages"]) == {"analyzer", "publisher", "reconciler", "jobs", "index-builder",
                                   "moderation"}
    assert all(stage["state"] == "ok" and stage["alive"] for stage in body["stages"].values())
    assert [m["role"] for m in body["inference"]["models"]] == ["detector", "recognizer"]
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    assert 'streamproc_api_requests_total{code="OK",operation="' in text
    assert ('streamproc_inference_provider{gpu_fallback="0",model="det_500m.onnx",'
            'provider="CPUExecutionProvider",role="detector"} 1.0') in text
    conn.close()
