"""Start/GetLabelDetection red team: hostile bodies get a 4xx in AWS's error shape.

Over the shared API daemon, which has no label pack configured: a well-formed Start is then
InvalidParameterException naming the step that makes one, as DetectLabels answers.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

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
