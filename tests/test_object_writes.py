"""Writes into the local object root: atomic, inside their bucket, and only where allowed.

An object appears whole or not at all (temporary file, fsync, ``os.replace``); the temporary
file is never visible as an object, even mid-write, and a failure removes it. A missing
bucket is never created; folders under a bucket are, each checked not to lead out of it.
``objects.buckets`` limits reads, ``objects.output_buckets`` writes. The same behaviour on
S3 servers is in ``test_objects_s3servers.py``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from streamproc.config import ObjectsConfig
from streamproc.errors import InvalidS3ObjectException, OutputNotWritable
from streamproc.storage import object_writes
from streamproc.storage.objects import ObjectRef, ObjectStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "out").mkdir(parents=True)
    (root / "other").mkdir()
    (tmp_path / "outside").mkdir()
    return root


def store_for(root: Path, **extra: object) -> ObjectStore:
    return ObjectStore(ObjectsConfig(local_root=root, **extra))


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_bytes_and_files_are_written_with_their_folders(root: Path, tmp_path: Path) -> None:
    store = store_for(root)
    store.put_bytes(ObjectRef("out", "job-1/results/a.json"), b'{"a": 1}')
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 << 20))
    store.put_file(ObjectRef("out", "job-1/big.bin"), source)
    store.put_bytes(ObjectRef("out", "job-1/results/a.json"), b"again")  # replaced
    assert (root / "out" / "job-1" / "results" / "a.json").read_bytes() == b"again"
    assert store.read(ObjectRef("out", "job-1/big.bin"), 4 << 20) == source.read_bytes()
    assert files_under(root) == ["out/job-1/big.bin", "out/job-1/results/a.json"]


def test_a_missing_bucket_is_never_created(root: Path) -> None:
    store = store_for(root)
    for ref in (ObjectRef("absent", "a.json"), ObjectRef("absent", "deep/a.json")):
        with pytest.raises(OutputNotWritable, match="The output bucket absent does not exist"):
            store.put_bytes(ref, b"x")
    with pytest.raises(OutputNotWritable, match="absent does not exist"):
        store.check_output("absent", "results/")
    (root / "afile").write_bytes(b"not a folder")
    with pytest.raises(OutputNotWritable, match="afile does not exist"):
        store.put_bytes(ObjectRef("afile", "a.json"), b"x")
    assert not (root / "absent").exists()


@pytest.mark.parametrize("name", ["../other/a.json", "a//b.json", "a/", "./a.json", "a\\b",
                                  "", "a" * 256, "x\x00"])
def test_keys_the_root_cannot_spell_are_refused(root: Path, name: str) -> None:
    with pytest.raises(OutputNotWritable, match="is not one this store writes"):
        store_for(root).put_bytes(ObjectRef("out", name), b"x")
    assert files_under(root) == []


def test_a_version_is_refused(root: Path) -> None:
    with pytest.raises(OutputNotWritable, match="is not one this store writes"):
        store_for(root).put_bytes(ObjectRef("out", "a.json", version="v1"), b"x")


def test_symlinks_never_lead_a_write_out_of_its_bucket(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (root / "out" / "escape").symlink_to(outside)
    (root / "out" / "cross").symlink_to(root / "other")
    (root / "out" / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "out" / "inner").symlink_to(root / "out" / "job")  # dangling, then inside
    (root / "linked").symlink_to(outside)  # a bucket that is a link out of the root
    store = store_for(root)
    for name in ("escape/a.json", "escape/deep/a.json", "cross/a.json", "dangling/a.json"):
        with pytest.raises(OutputNotWritable, match="leads out of its bucket"):
            store.put_bytes(ObjectRef("out", name), b"x")
    with pytest.raises(OutputNotWritable, match="linked does not exist"):
        store.put_bytes(ObjectRef("linked", "a.json"), b"x")
    with pytest.raises(OutputNotWritable, match="leads out of its bucket"):
        store.check_output("out", "escape/results/")
    assert list(outside.iterdir()) == [] and list((root / "other").iterdir()) == []
    assert not (tmp_path / "nowhere").exists()
    (root / "out" / "job").mkdir()
    store.put_bytes(ObjectRef("out", "inner/a.json"), b"inside")  # a link within the bucket
    assert (root / "out" / "job" / "a.json").read_bytes() == b"inside"


def test_a_link_at_the_key_is_replaced_not_written_through(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "outside" / "victim"
    target.write_bytes(b"untouched")
    (root / "out" / "a.json").symlink_to(target)
    store_for(root).put_bytes(ObjectRef("out", "a.json"), b"new")
    assert target.read_bytes() == b"untouched"
    assert not (root / "out" / "a.json").is_symlink()
    assert (root / "out" / "a.json").read_bytes() == b"new"


def test_a_file_where_a_folder_is_needed_is_refused(root: Path) -> None:
    (root / "out" / "job").write_bytes(b"a file")
    with pytest.raises(OutputNotWritable, match="out/job leads out of its bucket or is not a"):
        store_for(root).put_bytes(ObjectRef("out", "job/a.json"), b"x")
    (root / "out" / "dir.json").mkdir()
    with pytest.raises(OutputNotWritable, match="Writing out/dir.json failed"):
        store_for(root).put_bytes(ObjectRef("out", "dir.json"), b"x")
    assert files_under(root / "out") == ["job"]


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_a_failure_mid_write_leaves_nothing_visible(root: Path, tmp_path: Path, fails: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_for(root)
    ref = ObjectRef("out", "job/a.bin")
    store.put_bytes(ref, b"old version")
    seen: list[str] = []

    def broken(*args: object) -> None:
        # The data is written by now, under a temporary name that no key can name.
        for name in files_under(root):
            if name != "out/job/a.bin":
                seen.append(name)
                with pytest.raises(InvalidS3ObjectException):
                    store.read(ObjectRef("out", name.removeprefix("out/")), 1 << 30)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(object_writes.os, fails, broken)
    source = tmp_path / "new.bin"
    source.write_bytes(b"n" * (2 << 20))
    with pytest.raises(OutputNotWritable, match="Writing out/job/a.bin failed: No space left"):
        store.put_file(ref, source)
    with pytest.raises(OutputNotWritable, match="Writing out/job/b.bin failed"):
        store.put_bytes(ObjectRef("out", "job/b.bin"), b"new")
    monkeypatch.undo()
    assert len(seen) == 2  # one temporary file each time, mid-write
    assert files_under(root) == ["out/job/a.bin"]  # and gone after the failure
    assert store.read(ref, 100) == b"old version"  # and the old object is whole


def test_a_reader_never_sees_a_partial_object(root: Path, tmp_path: Path) -> None:
    store = store_for(root)
    ref, size = ObjectRef("out", "race.bin"), 4 << 20
    sources = []
    for n in range(3):
        sources.append(tmp_path / f"v{n}")
        sources[-1].write_bytes(bytes([65 + n]) * size)
    done, seen = threading.Event(), set()

    def write() -> None:
        for n in range(12):
            store.put_file(ref, sources[n % 3])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not done.is_set():
        try:
            data = store.read(ref, size)
        except InvalidS3ObjectException:
            continue  # not written yet
        assert data is not None and len(data) == size and len(set(data)) == 1
        seen.add(data[0])
    writer.join(10)
    assert seen  # the reader did read while the writer wrote


def test_check_output(root: Path) -> None:
    store = store_for(root)
    store.check_output("out", "")
    store.check_output("out", "results/job-1/")
    (root / "out" / "results").mkdir()
    store.check_output("out", "results/job-1/part-")
    assert files_under(root) == []  # the probe left nothing behind
    for prefix in ("../other/", "results//", "./x", "a\\b/"):
        with pytest.raises(OutputNotWritable, match="makes keys this store does not write"):
            store.check_output("out", prefix)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_bucket_is_not_writable(root: Path) -> None:
    (root / "out").chmod(0o555)
    try:
        with pytest.raises(OutputNotWritable, match="out is not writable"):
            store_for(root).check_output("out", "")
    finally:
        (root / "out").chmod(0o755)


def test_output_buckets_limit_writes(root: Path) -> None:
    store = store_for(root, output_buckets=["out"])
    store.put_bytes(ObjectRef("out", "a.json"), b"x")
    store.check_output("out", "p/")
    with pytest.raises(OutputNotWritable, match=r"other is not one jobs may write to "
                                                r"\(objects\.output_buckets\)"):
        store.put_bytes(ObjectRef("other", "a.json"), b"x")
    with pytest.raises(OutputNotWritable, match=r"objects\.output_buckets"):
        store.check_output("other", "")
    assert files_under(root / "other") == []
    assert store.readable("other")  # reads are objects.buckets' business


def test_buckets_limit_every_read(root: Path, tmp_path: Path) -> None:
    (root / "other" / "a.jpg").write_bytes(b"a")
    (root / "out" / "a.jpg").write_bytes(b"a")
    store = store_for(root, buckets=["out"])
    assert store.readable("out") and not store.readable("other")
    assert store.read(ObjectRef("out", "a.jpg"), 10) == b"a"
    ref, denied = ObjectRef("other", "a.jpg"), r"other is not one .*\(objects\.buckets\)"
    with pytest.raises(InvalidS3ObjectException, match=denied):
        store.size(ref)
    with pytest.raises(InvalidS3ObjectException, match=denied):
        store.read(ref, 10)
    with pytest.raises(InvalidS3ObjectException, match=denied), \
            store.local_file(ref, tmp_path, 10, threading.Event()):
        pass
    with pytest.raises(InvalidS3ObjectException, match=denied):
        store.lines(ref, 10, threading.Event())
    store.put_bytes(ObjectRef("other", "b.json"), b"x")  # writes are output_buckets' business
    assert store_for(root, buckets=[]).readable("out") is False


def test_without_a_store_nothing_is_written() -> None:
    store = ObjectStore(ObjectsConfig())
    assert not store.readable("out")
    with pytest.raises(OutputNotWritable, match="configure objects.local_root"):
        store.put_bytes(ObjectRef("out", "a.json"), b"x")
    with pytest.raises(OutputNotWritable, match="configure objects.local_root"):
        store.check_output("out", "")


def test_a_prefix_whose_folder_name_is_too_long_is_not_writable(root: Path) -> None:
    # A segment over the file system's 255 bytes: refused as a prefix the store cannot
    # write, never the OSError of probing it (which the API would answer with a 500).
    store = store_for(root)
    for prefix in ("x" * 300 + "/part-", "ok/" + "\u00e9" * 200 + "/"):
        with pytest.raises(OutputNotWritable):
            store.check_output("out", prefix)
    assert files_under(root) == []
