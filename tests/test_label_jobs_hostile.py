"""Start/GetLabelDetection red team: hostile bodies get a 4xx in AWS's error shape.

Over the shared API daemon, which has no label pack configured: a well-formed Start is then
InvalidParameterException naming the step that makes one, as DetectLabels answers. The
Start list runs again against a daemon with the label pack loaded, where a body that passes
the wire's validation reaches the kind's own checks (Features, MinConfidence, the video).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_config
from labels_helpers import label_config, label_pack_dir

from streamproc.daemon import Daemon
from streamproc.labels.errors import LabelPackMissing


def _call(daemon: Any, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", "/", body=body, headers={
        "X-Amz-Target": f"RekognitionService.{target}",
        "Content-Type": "application/x-amz-json-1.1"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


VIDEO = '"Video": {"S3Object": {"Bucket": "photos", "Name": "a1.jpg"}}'
START = [
    b"", b"[]", b"null", b"{}", b'{"Video": null}', b'{"Video": {}}',
    b'{"Video": {"S3Object": {"Bucket": "photos", "Name": "../../etc/passwd"}}}',
    b'{"Video": {"S3Object": {"Bucket": "photos", "Name": "nope.mp4"}}}',
    *(f'{{{VIDEO}, "MinConfidence": {v}}}'.encode()
      for v in ("1e400", "true", '"50"', "[1]", "-1", "101", "NaN", "{}")),
    *(f'{{{VIDEO}, "Features": {v}}}'.encode()
      for v in ('["IMAGE_PROPERTIES"]', '["GENERAL_LABELS", "GENERAL_LABELS"]', '"GENERAL_LABELS"',
                "[1]", "{}")),
    *(f'{{{VIDEO}, "Settings": {v}}}'.encode()
      for v in ("[]", '{"GeneralLabels": []}', '{"GeneralLabels": {"Colours": []}}',
                '{"GeneralLabels": {"LabelInclusionFilters": "Person"}}',
                '{"GeneralLabels": {"LabelInclusionFilters": [5]}}',
                '{"GeneralLabels": {"LabelExclusionFilters": ' + json.dumps(["x"] * 101) + "}}",
                '{"GeneralLabels": {"LabelCategoryInclusionFilters": ["' + "x" * 300 + '"]}}')),
    f'{{{VIDEO}, "JobTag": "a b"}}'.encode(),
    f'{{{VIDEO}, "ClientRequestToken": 5}}'.encode(),
    f'{{{VIDEO}, "NotificationChannel": {{"SNSTopicArn": 1}}}}'.encode(),
]
GET = [
    b"", b"{}", b'{"JobId": 5}', b'{"JobId": "' + b"x" * 100 + b'"}',
    b'{"JobId": "nosuchjob"}',
    b'{"JobId": "nosuchjob", "AggregateBy": "FRAMES"}',
    b'{"JobId": "nosuchjob", "SortBy": "CONFIDENCE"}',
    b'{"JobId": "nosuchjob", "MaxResults": 0}',
    b'{"JobId": "nosuchjob", "MaxResults": "10"}',
    b'{"JobId": "nosuchjob", "NextToken": "\\u0000\\u2603"}',
]


def _assert_4xx(status: int, out: dict[str, Any], body: bytes) -> None:
    assert 400 <= status < 500, (body, status, out)
    assert out["__type"].endswith("Exception"), out
    assert "Traceback" not in str(out)


@pytest.mark.parametrize("body", START)
def test_hostile_start_bodies_get_a_4xx(daemon: Any, body: bytes) -> None:
    _assert_4xx(*_call(daemon, "StartLabelDetection", body), body)


@pytest.mark.parametrize("body", GET)
def test_hostile_get_bodies_get_a_4xx(daemon: Any, body: bytes) -> None:
    _assert_4xx(*_call(daemon, "GetLabelDetection", body), body)


def test_without_a_label_pack_start_names_the_step_that_makes_one(daemon: Any) -> None:
    status, out = _call(daemon, "StartLabelDetection", f"{{{VIDEO}}}".encode())
    assert (status, out["__type"]) == (400, "InvalidParameterException")
    assert out["Message"] == LabelPackMissing().message
    status, out = _call(daemon, "GetLabelDetection", b'{"JobId": "nosuchjob"}')
    assert (status, out["__type"]) == (400, "ResourceNotFoundException")


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with the label pack, and a photos bucket holding a1.jpg (not a video)."""
    s3 = tmp_path_factory.mktemp("s3")
    (s3 / "photos").mkdir()
    (s3 / "photos" / "a1.jpg").write_bytes(b"\xff\xd8 not decoded at Start")
    d = Daemon(make_config(tmp_path_factory.mktemp("data"), **{"objects.local_root": str(s3)},
                           **label_config(label_pack_dir())))
    d.start()
    yield d
    d.stop()


@pytest.mark.parametrize("body", START)
def test_hostile_start_bodies_get_a_4xx_with_the_pack_loaded(packed: Daemon,
                                                            body: bytes) -> None:
    status, out = _call(packed, "StartLabelDetection", body)
    _assert_4xx(status, out, body)
    assert out.get("Message") != LabelPackMissing().message  # the kind's checks ran


def test_with_the_pack_loaded_a_well_formed_start_is_accepted(packed: Daemon) -> None:
    status, out = _call(packed, "StartLabelDetection", f"{{{VIDEO}}}".encode())
    assert status == 200 and set(out) == {"JobId"}, out
