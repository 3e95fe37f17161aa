"""DetectModerationLabels red team: hostile bodies get a 4xx in AWS's error shape, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from test_moderation_api import raw_call

HOSTILE = [
    b"", b"not json", b"[]", b"null", b'"x"',
    b'{"Image": []}', b'{"Image": null}', b'{"Image": {"Bytes": ""}}',
    b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": 1e400}',
    b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": true}',
    b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": null}',
    b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": [1]}',
    b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": -1}',
    b'{"Image": {"S3Object": {"Bucket": "photos", "Name": "../../etc/passwd"}}}',
    b'{"Image": {"S3Object": {"Bucket": "..", "Name": "a1.jpg"}}}',
    '{"Image": {"S3Object": {"Bucket": "photos", "Name": "\u00e9\u2603.jpg"}}}'.encode(),
    b'{"Image": {"S3Object": {"Bucket": "photos", "Name": "a1.jpg", "Version": 3}}}',
    b'{"Image": {"S3Object": {"Bucket": "photos"}}}',
    b'{"Image": {"Bytes": 5}}',
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_bodies_get_a_4xx(daemon: Any, body: bytes) -> None:
    status, out = raw_call(daemon, body)
    assert 400 <= status < 500, (body, status, out)
    assert out["__type"].endswith("Exception"), out
    assert "Traceback" not in str(out)
