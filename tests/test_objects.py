"""The local object root treats an S3 key as S3 does: an opaque string, one file or none.

``./face.jpg`` is another key than ``face.jpg``; a key reaches the file ROOT/BUCKET/KEY only
when that path spells the key back exactly (no ``.``/``..``/empty segments, no trailing
slash, no NUL, no backslash), and a bucket is one valid bucket name. Anything else is a
missing object (InvalidS3ObjectException, as for a key that is not there), never another
file and never a 500 (ValueError: embedded null byte, OSError: File name too long).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.config import ObjectsConfig
from streamproc.errors import InvalidS3ObjectException
from streamproc.storage.objects import ObjectRef, ObjectStore

MISSING = "Unable to get object metadata from S3"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("objects")
    root = base / "root"
    (root / "photos" / "sub").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "photos" / "face.jpg").write_bytes(b"face")
    (root / "photos" / "sub" / "b.jpg").write_bytes(b"b")
    (root / "photos" / "sub" / "back\\slash.jpg").write_bytes(b"backslash")
    (root / "other" / "x.jpg").write_bytes(b"other bucket")
    (base / "outside.jpg").write_bytes(b"outside the root")
    (root / "photos" / "link.jpg").symlink_to(base / "outside.jpg")
    (root / "photos" / "cross.jpg").symlink_to(root / "other" / "x.jpg")  # another bucket's
    (root / "photos" / "inside.jpg").symlink_to(root / "photos" / "sub" / "b.jpg")
    (root / "photos" / "...").mkdir()
    (root / "...").mkdir()
    (root / "..." / "face.jpg").write_bytes(b"dots bucket")
    return root


@pytest.fixture(scope="module")
def store(root: Path) -> ObjectStore:
    return ObjectStore(ObjectsConfig(local_root=root))


def _missing(store: ObjectStore, bucket: str, name: str, tmp: Path) -> None:
    ref = ObjectRef(bucket, name)
    with pytest.raises(InvalidS3ObjectException, match=MISSING):
        store.size(ref)
    with pytest.raises(InvalidS3ObjectException, match=MISSING):
        store.read(ref, 1 << 20)
    with pytest.raises(InvalidS3ObjectException, match=MISSING), \
            store.local_file(ref, tmp, 1 << 20, threading.Event()):
        pass


def test_keys_that_spell_their_file_are_read(store: ObjectStore, root: Path,
                                             tmp_path: Path) -> None:
    for name, data in (("face.jpg", b"face"), ("sub/b.jpg", b"b"), ("inside.jpg", b"b")):
        ref = ObjectRef("photos", name)
        assert store.size(ref) == len(data)
        assert store.read(ref, 1 << 20) == data
        with store.local_file(ref, tmp_path, 1 << 20, threading.Event()) as path:
            assert path == root / "photos" / name


@pytest.mark.parametrize("name", [
    "./face.jpg", "face.jpg/", "sub//b.jpg", "sub/./b.jpg", "sub/../face.jpg",
    "../other/x.jpg", "/face.jpg", "//face.jpg", "face.jpg\x00", "face.jpg\x00.png",
    "sub\\b.jpg", "sub/back\\slash.jpg", "link.jpg", "cross.jpg", "sub", ".", "..", "...", "",
    "a" * 256, "a" * 1000, "a/" * 512 + "x", "face\ud800.jpg", "face.jpg\n"])
def test_other_spellings_of_a_key_are_missing_objects(store: ObjectStore, name: str,
                                                      tmp_path: Path) -> None:
    _missing(store, "photos", name, tmp_path)


@pytest.mark.parametrize("bucket", [
    ".", "..", "...", "photos/sub", "photos/", "/photos", "../root/photos", "photos\x00",
    "ph", "b" * 256, "photos..x", "-photos", "photos_", "ph\\otos", "ph otos", "phötos"])
def test_a_bucket_is_one_valid_bucket_name(store: ObjectStore, bucket: str,
                                           tmp_path: Path) -> None:
    name = "b.jpg" if bucket == "photos/sub" else "face.jpg"
    _missing(store, bucket, name, tmp_path)


def test_reads_stop_at_the_limit(store: ObjectStore) -> None:
    ref = ObjectRef("photos", "face.jpg")
    assert store.read(ref, 4) == b"face"
    assert store.read(ref, 3) is None  # larger than the limit: nothing returned


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bucket=st.one_of(st.sampled_from(["photos", "other", "...", ".."]), st.text(max_size=8)),
       name=st.one_of(
           st.lists(st.sampled_from(["face.jpg", "sub", "b.jpg", ".", "..", "", "x.jpg",
                                     "\x00", "\\", "link.jpg", "a" * 300]),
                    min_size=1, max_size=5).map("/".join),
           st.text(max_size=40)))
def test_fuzzed_names_reach_their_own_file_or_nothing(store: ObjectStore, root: Path,
                                                      bucket: str, name: str) -> None:
    ref = ObjectRef(bucket, name)
    try:
        data = store.read(ref, 1 << 20)
    except InvalidS3ObjectException:
        return
    # Read: then the key names exactly this file, inside the root, by its own spelling.
    path = root / bucket / name
    assert str(path) == f"{root}/{bucket}/{name}"
    assert "/" not in bucket and bucket not in (".", "..")
    assert all(part not in ("", ".", "..") for part in name.split("/"))
    assert path.resolve().is_relative_to(root) and data == path.read_bytes()


class _Body:
    """A streamed S3 body that hands out at most 3 bytes a read, and counts them."""

    def __init__(self, data: bytes) -> None:
        self.data, self.taken, self.closed = data, 0, False

    def read(self, amount: int) -> bytes:
        piece = self.data[self.taken:self.taken + min(amount, 3)]
        self.taken += len(piece)
        return piece

    def close(self) -> None:
        self.closed = True


def test_s3_reads_are_whole_and_stop_past_the_limit() -> None:
    bodies: list[_Body] = []

    class Client:
        def get_object(self, **args: str) -> dict[str, _Body]:
            bodies.append(_Body(b"0123456789" * 20_000))  # 200 KB, 3 bytes at a time
            return {"Body": bodies[-1]}

    store = ObjectStore(ObjectsConfig(s3_endpoint="http://s3.invalid"),
                        client_factory=lambda cfg: Client())
    ref = ObjectRef("photos", "./face.jpg")  # an ordinary key to S3
    assert store.read(ref, 200_000) == b"0123456789" * 20_000
    assert store.read(ref, 1000) is None
    assert bodies[1].taken <= 1003 and all(b.closed for b in bodies)
