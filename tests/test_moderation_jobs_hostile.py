"""Start/GetContentModeration red team: hostile bodies get a 4xx in AWS's error shape."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest


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
    b'{"Video": {"S3Object": {"Bucket": "..", "Name": "v.mp4"}}}',
    '{"Video": {"S3Object": {"Bucket": "photos", "Name": "\u00e9\u2603.mp4"}}}'.encode(),
    b'{"Video": {"S3Object": {"Bucket": "photos", "Name": "nope.mp4"}}}',
    *(f'{{{VIDEO}, "MinConfidence": {v}}}'.encode()
      for v in ("1e400", "true", '"50"', "[1]", "-1", "101", "NaN", "{}")),
    f'{{{VIDEO}, "JobTag": "{"x" * 1025}"}}'.encode(),  # max 1024
    f'{{{VIDEO}, "JobTag": "a b"}}'.encode(),  # outside its pattern
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
    _assert_4xx(*_call(daemon, "StartContentModeration", body), body)


@pytest.mark.parametrize("body", GET)
def test_hostile_get_bodies_get_a_4xx(daemon: Any, body: bytes) -> None:
    _assert_4xx(*_call(daemon, "GetContentModeration", body), body)
