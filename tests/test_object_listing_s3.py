"""Listing and deleting objects on two S3 servers: moto, and ``rclone serve s3`` (SigV4).

The same contract as the local root (``test_object_listing.py``): every page of a listing,
key order, sizes and times, a missing object deleted without error, a missing bucket and
wrong credentials refused with the store's own errors (never the exception's text).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from streamproc.errors import InvalidS3ObjectException, OutputNotWritable
from streamproc.storage.objects import ObjectRef, ObjectStore

if TYPE_CHECKING:
    from s3servers import S3Server

pytest_plugins = ["s3servers"]
pytestmark = pytest.mark.e2e  # S3 servers are child processes


@pytest.fixture(params=["moto", "rclone"])
def server(request: pytest.FixtureRequest) -> S3Server:
    return request.getfixturevalue(f"{request.param}_s3")


@pytest.fixture
def bucket(server: S3Server) -> str:
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    server.make_bucket(name)
    return name


class SmallPages:
    """A real S3 client whose listings come two keys a page, counting the pages asked."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.pages = 0
        client.meta.events.register("before-call.s3.ListObjectsV2", self._count)

    def _count(self, **_: object) -> None:
        self.pages += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_paginator(self, name: str) -> Any:
        paginator = self._client.get_paginator(name)

        class Paged:
            def paginate(self, **kwargs: Any) -> Any:
                return paginator.paginate(PaginationConfig={"PageSize": 2}, **kwargs)
        return Paged()


def test_a_listing_reads_every_page_in_key_order(server: S3Server, bucket: str) -> None:
    client = server.client()
    before = time.time()
    for key in ("crops/b/2.jpg", "crops/a/1.jpg", "crops/c/3.jpg", "crops/a/0.jpg",
                "cropsx.jpg", "other.txt"):
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    small = SmallPages(server.client())
    objects = ObjectStore(server.objects(), client_factory=lambda _: small)
    listed = objects.listing(bucket, "crops/")
    assert [(o.key, o.size) for o in listed] == [
        ("crops/a/0.jpg", 13), ("crops/a/1.jpg", 13), ("crops/b/2.jpg", 13),
        ("crops/c/3.jpg", 13)]
    assert small.pages >= 2  # four keys at two a page: more than one page was read
    assert all(before - 5 < o.modified < time.time() + 5 for o in listed)
    assert [o.key for o in objects.listing(bucket, "crops")][-1] == "cropsx.jpg"
    assert objects.listing(bucket, "nothing/") == []


def test_a_delete_removes_the_object_and_a_missing_one_is_no_error(
        server: S3Server, bucket: str) -> None:
    client = server.client()
    client.put_object(Bucket=bucket, Key="crops/a/1.jpg", Body=b"one")
    client.put_object(Bucket=bucket, Key="crops/a/2.jpg", Body=b"two")
    objects = ObjectStore(server.objects())
    objects.delete(ObjectRef(bucket, "crops/a/1.jpg"))
    objects.delete(ObjectRef(bucket, "crops/a/1.jpg"))  # gone already: no error
    objects.delete(ObjectRef(bucket, "crops//a"))  # a key the store never writes: nothing
    assert [o.key for o in objects.listing(bucket, "")] == ["crops/a/2.jpg"]
    with pytest.raises(InvalidS3ObjectException):
        objects.read(ObjectRef(bucket, "crops/a/1.jpg"), 10)


def test_a_missing_bucket_and_the_allowlists_are_refused(server: S3Server, bucket: str) -> None:
    objects = ObjectStore(server.objects())
    with pytest.raises(InvalidS3ObjectException, match="does not exist"):
        objects.listing(f"{bucket}-missing", "")
    with pytest.raises(OutputNotWritable, match="does not exist"):
        objects.delete(ObjectRef(f"{bucket}-missing", "a.jpg"))
    narrow = ObjectStore(server.objects(buckets=["other"], output_buckets=["other"]))
    with pytest.raises(InvalidS3ObjectException, match="objects.buckets"):
        narrow.listing(bucket, "")
    with pytest.raises(OutputNotWritable, match="objects.output_buckets"):
        narrow.delete(ObjectRef(bucket, "a.jpg"))


def test_wrong_keys_cannot_list_or_delete_on_rclone(rclone_s3: S3Server) -> None:
    rclone_s3.make_bucket("keyed-listing")
    rclone_s3.client().put_object(Bucket="keyed-listing", Key="a.jpg", Body=b"a")
    config = rclone_s3.objects().model_copy(update={"s3_secret_access_key": "wrong-secret"})
    objects = ObjectStore(config)
    with pytest.raises(InvalidS3ObjectException) as listing:
        objects.listing("keyed-listing", "")
    with pytest.raises(OutputNotWritable, match="Access denied") as deleting:
        objects.delete(ObjectRef("keyed-listing", "a.jpg"))
    for message in (listing.value.message, deleting.value.message):
        assert "wrong-secret" not in message
    keys = rclone_s3.client().list_objects_v2(Bucket="keyed-listing")["Contents"]
    assert [k["Key"] for k in keys] == ["a.jpg"]


def test_a_batch_delete_takes_a_thousand_keys_a_call(server: S3Server, bucket: str) -> None:
    client = server.client()
    names = [f"crops/k{i:04d}.jpg" for i in range(1005)]
    for name in names[:3] + names[-2:]:
        client.put_object(Bucket=bucket, Key=name, Body=b"x")
    calls: list[int] = []
    client.meta.events.register(
        "before-call.s3.DeleteObjects",
        lambda params, **_: calls.append(params["body"].count(b"<Key>")))
    objects = ObjectStore(server.objects(), client_factory=lambda _: client)
    assert objects.delete_many(bucket, names) == names  # missing ones too, as S3 says
    assert calls == [1000, 5]
    assert objects.listing(bucket, "") == []
