"""Face crops shared through an S3 endpoint (moto, and ``rclone serve s3``): two nodes, one bucket.

The same store as ``test_crops_shared.py`` on the other backend: a crop one node writes the
other reads, a delete on either removes it, and the sweep reads S3's LastModified.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

import pytest

from streamproc.storage.crop_objects import SharedCropStore
from streamproc.storage.objects import ObjectStore

if TYPE_CHECKING:
    from s3servers import S3Server

pytest_plugins = ["s3servers"]
pytestmark = pytest.mark.e2e  # S3 servers are child processes
A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"


@pytest.fixture(params=["moto", "rclone"])
def server(request: pytest.FixtureRequest) -> S3Server:
    return request.getfixturevalue(f"{request.param}_s3")


def test_two_nodes_share_crops_through_s3(server: S3Server) -> None:
    bucket = f"crops-{uuid.uuid4().hex[:12]}"
    server.make_bucket(bucket)
    now = [time.time()]
    a, b = (SharedCropStore(ObjectStore(server.objects()), bucket, 1000, 3600.0, sweep_s=5.0,
                            clock=lambda: now[0]) for _ in range(2))
    for store in (a, b):
        store.start()
        store.load()
    try:
        assert a.put("people", A, b"jpeg-a") and b.put("other", B, b"jpeg-b")
        assert a.flush() and b.flush()
        assert b.get("people", A) == b"jpeg-a" and a.get("other", B) == b"jpeg-b"
        b.delete("people", [A])
        assert b.flush() and a.get("people", A) is None
        keys = [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == [b.key("other", B)]
        now[0] += 3600 + 5  # B's crop is past its retention by S3's LastModified
        a.get("other", B)  # A never listed it (B wrote it): the read queues the due sweep
        assert a.flush() and a.get("other", B) is None  # the sweep removed it
        assert "Contents" not in server.client().list_objects_v2(Bucket=bucket)
    finally:
        a.stop(5)
        b.stop(5)
