"""Listing and deleting objects in the local root: what a read would find, and nothing else.

A listing names exactly the objects ``read`` serves (keys spelled back, no temporaries, no
link out of the bucket, no folder walked through a link); a delete removes one object (a
link itself, never its target) and treats a missing one as S3 does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from streamproc.config import ObjectsConfig
from streamproc.errors import InvalidS3ObjectException, OutputNotWritable
from streamproc.storage.objects import ObjectRef, ObjectStore


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "objects"
    (root / "bkt" / "crops" / "a").mkdir(parents=True)
    (root / "bkt" / "crops" / "b").mkdir()
    (root / "bkt" / "crops" / "a" / "1.jpg").write_bytes(b"one")
    (root / "bkt" / "crops" / "a" / "2.jpg").write_bytes(b"twotwo")
    (root / "bkt" / "crops" / "b" / "3.jpg").write_bytes(b"3")
    (root / "bkt" / "cropsx.jpg").write_bytes(b"x")
    (root / "bkt" / "other.txt").write_bytes(b"o")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "secret.jpg").write_bytes(b"secret")
    return root


def store(root: Path, **extra: object) -> ObjectStore:
    return ObjectStore(ObjectsConfig(local_root=root, **extra))  # type: ignore[arg-type]


def keys(objects: ObjectStore, prefix: str = "") -> list[str]:
    return [o.key for o in objects.listing("bkt", prefix)]


def test_a_listing_gives_each_object_under_the_prefix_with_its_size_and_time(
        tmp_path: Path) -> None:
    root = make_root(tmp_path)
    old = time.time() - 3600
    os.utime(root / "bkt" / "crops" / "a" / "1.jpg", (old, old))
    objects = store(root)
    listed = objects.listing("bkt", "crops/")
    assert [(o.key, o.size) for o in listed] == [
        ("crops/a/1.jpg", 3), ("crops/a/2.jpg", 6), ("crops/b/3.jpg", 1)]
    assert listed[0].modified == pytest.approx(old, abs=1)
    assert listed[1].modified > old + 3000
    # A prefix is a string prefix, not a folder: "crops" also takes "cropsx.jpg".
    assert keys(objects, "crops") == ["crops/a/1.jpg", "crops/a/2.jpg", "crops/b/3.jpg",
                                      "cropsx.jpg"]
    assert keys(objects, "crops/a/2") == ["crops/a/2.jpg"]
    assert keys(objects, "nothing/") == []
    assert len(keys(objects)) == 5


def test_a_listing_names_only_what_a_read_would_find(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    folder = root / "bkt" / "crops" / "a"
    (folder / ".part\\0123").write_bytes(b"half-written")  # a write's temporary file
    (folder / "out.jpg").symlink_to(root / "elsewhere" / "secret.jpg")  # leads out of bkt
    (folder / "in.jpg").symlink_to(folder / "1.jpg")  # stays inside: an object, as a read
    (root / "bkt" / "crops" / "linked").symlink_to(root / "elsewhere")  # a folder link
    (root / "bkt" / "crops" / "loop").symlink_to(root / "bkt")  # a loop: never walked
    objects = store(root)
    listed = keys(objects, "crops/")
    assert listed == ["crops/a/1.jpg", "crops/a/2.jpg", "crops/a/in.jpg", "crops/b/3.jpg"]
    for key in listed:  # every key listed can be read
        assert objects.read(ObjectRef("bkt", key), 100) is not None
    with pytest.raises(InvalidS3ObjectException):
        objects.read(ObjectRef("bkt", "crops/a/out.jpg"), 100)


def test_a_bucket_that_is_missing_or_not_allowed_cannot_be_listed(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "linkbkt").symlink_to(tmp_path)  # a bucket leading out of the root
    with pytest.raises(InvalidS3ObjectException, match="does not exist"):
        store(root).listing("missing", "")
    with pytest.raises(InvalidS3ObjectException, match="does not exist"):
        store(root).listing("linkbkt", "")
    with pytest.raises(InvalidS3ObjectException, match="objects.buckets"):
        store(root, buckets=["elsewhere"]).listing("bkt", "")
    with pytest.raises(InvalidS3ObjectException, match="not available"):
        ObjectStore(ObjectsConfig()).listing("bkt", "")


def test_a_delete_removes_the_object_and_a_missing_one_is_no_error(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    objects = store(root)
    objects.delete(ObjectRef("bkt", "crops/a/1.jpg"))
    assert not (root / "bkt" / "crops" / "a" / "1.jpg").exists()
    objects.delete(ObjectRef("bkt", "crops/a/1.jpg"))  # again: as S3, no error
    objects.delete(ObjectRef("bkt", "no/such/folder/x.jpg"))
    objects.delete(ObjectRef("bkt", "crops/a"))  # a folder is no object: left as it is
    objects.delete(ObjectRef("bkt", "crops/../other.txt"))  # a key no file holds
    assert (root / "bkt" / "crops" / "a").is_dir() and (root / "bkt" / "other.txt").exists()
    assert keys(objects, "crops/") == ["crops/a/2.jpg", "crops/b/3.jpg"]


def test_a_delete_never_reaches_out_of_its_bucket(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    secret = root / "elsewhere" / "secret.jpg"
    (root / "bkt" / "link.jpg").symlink_to(secret)
    (root / "bkt" / "out").symlink_to(root / "elsewhere")
    objects = store(root)
    objects.delete(ObjectRef("bkt", "link.jpg"))  # the link goes, its target stays
    assert not (root / "bkt" / "link.jpg").is_symlink() and secret.read_bytes() == b"secret"
    with pytest.raises(OutputNotWritable, match="leads out of its bucket"):
        objects.delete(ObjectRef("bkt", "out/secret.jpg"))
    assert secret.exists()


def test_a_delete_is_a_write_refused_as_writes_are(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    with pytest.raises(OutputNotWritable, match="objects.output_buckets"):
        store(root, output_buckets=["elsewhere"]).delete(ObjectRef("bkt", "other.txt"))
    with pytest.raises(OutputNotWritable, match="does not exist"):
        store(root).delete(ObjectRef("missing", "other.txt"))
    with pytest.raises(OutputNotWritable, match="by version"):
        store(root).delete(ObjectRef("bkt", "other.txt", "v1"))
    with pytest.raises(OutputNotWritable, match="No object store"):
        ObjectStore(ObjectsConfig()).delete(ObjectRef("bkt", "other.txt"))
    assert (root / "bkt" / "other.txt").exists()


def test_a_batch_delete_removes_what_it_can_and_says_which(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    secret = root / "elsewhere" / "secret.jpg"
    (root / "bkt" / "out").symlink_to(root / "elsewhere")
    synced: list[str] = []
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    objects = store(root)
    names = ["crops/a/1.jpg", "crops/a/2.jpg", "crops/b/3.jpg", "crops/a/none.jpg",
             "out/secret.jpg", "crops/../other.txt"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", counting)
        done = objects.delete_many("bkt", names)
    assert done == names[:4]  # a missing one is done; one out of the bucket is not
    assert secret.exists() and (root / "bkt" / "other.txt").exists()
    assert keys(objects, "crops/") == []
    assert sorted(synced) == sorted({str(root / "bkt" / "crops" / f) for f in "ab"})
    with pytest.raises(OutputNotWritable, match="objects.output_buckets"):
        store(root, output_buckets=["elsewhere"]).delete_many("bkt", ["other.txt"])
