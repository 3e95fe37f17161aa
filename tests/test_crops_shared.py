"""Face crops in the shared object store: what one node writes or deletes, every node sees.

Two stores on one local object root stand for two nodes (as the cluster tests give every
node one ``objects.local_root``). The cap and retention hold for the bucket, applied by the
sweep at load and at most every ``sweep_s``; between sweeps the cap can be exceeded by the
other node's writes, and the next sweep restores it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from streamproc.config import ObjectsConfig
from streamproc.storage.crop_objects import SharedCropStore
from streamproc.storage.crops import CropsWhenFull
from streamproc.storage.objects import ListedObject, ObjectStore

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
C = "33333333-3333-4333-8333-333333333333"
D = "44444444-4444-4444-8444-444444444444"
BUCKET = "shared-crops"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()  # the objects' times are the filesystem's

    def __call__(self) -> float:
        return self.now


class CountingStore(ObjectStore):
    """The local object store, counting its listings (each is a sweep or a collection's)."""

    listings = 0

    def listing(self, bucket: str, prefix: str = "") -> list[ListedObject]:
        self.listings += 1
        return super().listing(bucket, prefix)


def root(tmp_path: Path) -> Path:
    (tmp_path / "objects" / BUCKET).mkdir(parents=True, exist_ok=True)
    return tmp_path / "objects"


@pytest.fixture(autouse=True)
def started() -> Iterator[list[SharedCropStore]]:
    """Every store a test started, stopped after it (their writers' threads)."""
    stores: list[SharedCropStore] = []
    yield stores
    for store in stores:
        store.stop(5.0)


def node(tmp_path: Path, clock: Clock, max_bytes: int = 1000, retention_s: float = 600.0,
         when_full: CropsWhenFull = CropsWhenFull.DROP_OLDEST,
         sweep_s: float = 30.0, stores: list[SharedCropStore] | None = None
         ) -> SharedCropStore:
    objects = CountingStore(ObjectsConfig(local_root=root(tmp_path)))
    crops = SharedCropStore(objects, BUCKET, max_bytes, retention_s, when_full, sweep_s, clock)
    crops.start()
    crops.load()
    assert crops.flush()
    if stores is not None:
        stores.append(crops)
    return crops


def settle(*stores: SharedCropStore) -> None:
    """Wait for the stores' queued I/O (their writers run it off the caller's thread)."""
    for store in stores:
        assert store.flush(), "a crop writer did not finish its queue"


def files(tmp_path: Path) -> dict[str, int]:
    bucket = tmp_path / "objects" / BUCKET
    return {str(p.relative_to(bucket)): p.stat().st_size for p in bucket.rglob("*.jpg")}


def age(tmp_path: Path, crops: SharedCropStore, collection: str, face: str,
        at: float) -> None:
    key = crops.key(collection, face)
    assert key is not None
    os.utime(tmp_path / "objects" / BUCKET / key, (at, at))


def test_a_crop_one_node_keeps_the_other_shows_and_a_delete_on_either_removes(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    a, b = node(tmp_path, clock, stores=started), node(tmp_path, clock, stores=started)
    assert a.put("people", A, b"jpeg-a") and a.put("people", B, b"jpeg-b")
    assert a.get("people", A) == b"jpeg-a"  # queued, not yet written: read from memory
    settle(a)
    assert b.get("people", A) == b"jpeg-a"  # written after B's sweep: read all the same
    assert b.get("other", A) is None  # by collection and FaceId
    b.delete("people", [A])
    assert b.get("people", A) is None  # queued for removal: never shown meanwhile
    settle(b)
    assert a.get("people", A) is None and a.bytes == len(b"jpeg-b")
    key = a.key("people", B)
    assert key is not None and key.startswith("crops/") and list(files(tmp_path)) == [key]
    assert not_a_key(a, "people", "../../x") and a.get("people", "../../x") is None


def not_a_key(crops: SharedCropStore, collection: str, face: str) -> bool:
    """A name that is not a FaceId makes no key, so it can never be written."""
    return crops.key(collection, face) is None and not crops.put(collection, face, b"x")


def test_a_collection_deleted_on_one_node_loses_the_crops_every_node_wrote(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    a, b = node(tmp_path, clock, stores=started), node(tmp_path, clock, stores=started)
    a.put("gone", A, b"a")
    b.put("gone", B, b"b")
    a.put("kept", C, b"c")
    settle(a)
    b.delete_collection("gone")  # B never listed A's crop: the listing finds it
    assert b.get("gone", A) is None  # queued for removal: never shown meanwhile
    settle(b)
    assert a.get("gone", A) is None and a.get("gone", B) is None and b.get("kept", C) == b"c"
    assert list(files(tmp_path)) == [str(a.key("kept", C))]


def test_crops_past_their_retention_are_removed_by_the_next_sweep(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    a = node(tmp_path, clock, retention_s=60.0, sweep_s=10.0, stores=started)
    b = node(tmp_path, clock, retention_s=60.0, sweep_s=10.0, stores=started)
    a.put("p", A, b"old")
    settle(a)
    age(tmp_path, a, "p", A, clock.now - 61)  # written 61 s ago
    b.put("p", B, b"new")
    settle(b)
    assert len(files(tmp_path)) == 2  # B's sweep (at load) is not due yet
    clock.now += 10
    assert b.get("p", B) == b"new"  # a read finds the sweep due: A's old crop goes
    settle(b)
    assert list(files(tmp_path)) == [b.key("p", B)]
    clock.now += 60
    a.get("p", B)  # A never listed it: this read queues A's due sweep (it may still show it)
    settle(a)
    assert a.get("p", B) is None  # A wrote none of it, and still applies retention to it


def test_a_crop_past_its_retention_is_not_shown_before_the_next_sweep(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    crops = node(tmp_path, clock, retention_s=60.0, sweep_s=3600.0, stores=started)
    assert crops.put("p", A, b"jpeg")
    settle(crops)
    clock.now += 59
    assert crops.get("p", A) == b"jpeg"
    clock.now += 1  # past its retention, the sweep an hour away: the read itself refuses
    assert crops.get("p", A) is None
    settle(crops)
    assert files(tmp_path) == {} and crops.bytes == 0


def test_the_cap_holds_for_the_bucket_after_the_next_sweep(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    a = node(tmp_path, clock, max_bytes=25, sweep_s=10.0, stores=started)
    b = node(tmp_path, clock, max_bytes=25, sweep_s=10.0, stores=started)
    assert a.put("p", A, b"a" * 10)
    assert b.put("p", B, b"b" * 10) and b.put("p", C, b"c" * 10)
    settle(a, b)
    assert sum(files(tmp_path).values()) == 30  # the slack: B had not seen A's crop
    for i, face in enumerate((A, B, C)):
        age(tmp_path, a, "p", face, clock.now - 30 + i)  # A's oldest, then B, then C
    clock.now += 10
    b.get("p", C)  # finds the sweep due and queues it: it removes A's (over the cap)
    settle(b)
    assert b.put("p", D, b"d" * 10)  # then B's, to make room
    settle(b)
    assert sorted(files(tmp_path)) == sorted(str(b.key("p", f)) for f in (C, D))
    assert b.bytes == 20 and b.dropped == 2
    assert not b.put("p", A, b"x" * 26)  # larger than the whole cap: never kept
    assert b.dropped == 3


def test_drop_newest_keeps_what_is_there_for_the_whole_bucket(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    a = node(tmp_path, clock, max_bytes=25, when_full=CropsWhenFull.DROP_NEWEST, sweep_s=10.0,
             stores=started)
    b = node(tmp_path, clock, max_bytes=25, when_full=CropsWhenFull.DROP_NEWEST, sweep_s=10.0,
             stores=started)
    assert a.put("p", A, b"a" * 10) and a.put("p", B, b"b" * 10)
    assert b.put("p", C, b"c" * 10)  # B's view: 10 bytes, so it fits there
    settle(a, b)
    for i, face in enumerate((A, B, C)):
        age(tmp_path, a, "p", face, clock.now - 30 + i)
    clock.now += 10
    b.get("p", C)  # queues the due sweep: it removes C, the newest
    settle(b)
    assert not b.put("p", D, b"d" * 10)  # D does not fit
    settle(b)
    assert sorted(files(tmp_path)) == sorted(str(a.key("p", f)) for f in (A, B))
    assert b.dropped == 2


def test_a_node_lists_the_bucket_at_most_once_a_sweep_period(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    crops = node(tmp_path, clock, sweep_s=30.0, stores=started)
    objects = crops._objects  # noqa: SLF001 - the counting store the test made
    assert isinstance(objects, CountingStore) and objects.listings == 1  # the load's
    for i in range(20):
        crops.put("p", str(uuid.UUID(int=i, version=4)), b"x")
        crops.get("p", A)
        clock.now += 1
    settle(crops)
    assert objects.listings == 1
    clock.now += 10  # 30 s since the load's sweep
    crops.put("p", A, b"x")
    settle(crops)
    assert objects.listings == 2


def test_objects_under_the_prefix_that_are_not_crops_are_left_alone(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    other = root(tmp_path) / BUCKET / "crops" / "notes.txt"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"x" * 100)
    os.utime(other, (clock.now - 10_000, clock.now - 10_000))
    crops = node(tmp_path, clock, max_bytes=20, retention_s=60.0, stores=started)
    assert crops.bytes == 0 and crops.put("p", A, b"a" * 20)
    settle(crops)
    assert other.exists() and crops.clear() == 1 and other.exists()


def test_a_store_that_cannot_be_reached_costs_crops_never_a_call(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    clock = Clock()
    objects = ObjectStore(ObjectsConfig(local_root=tmp_path / "no-root"))
    crops = SharedCropStore(objects, BUCKET, 1000, 60.0, clock=clock)
    crops.start()
    started.append(crops)
    crops.load()  # logged, not raised
    assert crops.put("p", A, b"jpeg")  # queued; its write fails on the writer's thread
    settle(crops)
    assert crops.dropped == 1 and crops.bytes == 0
    assert crops.get("p", A) is None
    crops.delete("p", [A])
    crops.delete_collection("p")
    pixels = np.full((120, 160, 3), 90, np.uint8)
    assert not crops.keep("p", B, pixels, np.array([500.0, 400.0, 600.0, 500.0]))
    settle(crops)
    assert crops.dropped == 2


def test_a_face_just_indexed_is_cropped_into_the_bucket(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    crops = node(tmp_path, Clock(), stores=started)
    pixels = np.full((120, 160, 3), 90, np.uint8)
    assert crops.keep("p", A, pixels, np.array([40.0, 30.0, 100.0, 90.0]))
    settle(crops)
    jpeg = crops.get("p", A)
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8"


def test_two_nodes_writing_reading_and_deleting_at_once_keep_the_cap(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    """IndexFaces, the grid and DeleteFaces on two nodes at once: no error, the cap holds."""
    clock = Clock()
    nodes = [node(tmp_path, clock, max_bytes=4_000, sweep_s=0.001, stores=started)
             for _ in range(2)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(120):
                crops, face = nodes[(n + i) % 2], str(uuid.UUID(int=n * 1000 + i, version=4))
                crops.put(f"c{n % 2}", face, b"j" * (50 + i % 7))
                nodes[(n + i + 1) % 2].get(f"c{n % 2}", face)
                if i % 3 == 0:
                    nodes[i % 2].delete(f"c{n % 2}", [face])
                if i % 40 == 39:
                    nodes[n % 2].delete_collection(f"c{(n + 1) % 2}")
                clock.now += 0.001
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    settle(*nodes)
    clock.now += 1
    nodes[0].load()  # one more sweep: the cap holds for the bucket, not only one node
    settle(nodes[0])
    on_disk = sum(files(tmp_path).values())
    assert nodes[0].bytes == on_disk <= 4_000
    assert sum(n.dropped for n in nodes) > 0
    assert not list((tmp_path / "objects" / BUCKET).rglob(".part*"))


class NoDeletes(ObjectStore):
    """The local object store, where every removal fails (a read-only bucket, say)."""

    def delete_many(self, bucket: str, names: list[str]) -> list[str]:
        return []


def test_a_crop_whose_removal_fails_is_not_counted_as_dropped(
        tmp_path: Path, started: list[SharedCropStore]) -> None:
    crops = SharedCropStore(NoDeletes(ObjectsConfig(local_root=root(tmp_path))), BUCKET, 10,
                            600.0, clock=Clock())
    crops.start()
    started.append(crops)
    crops.load()
    assert crops.put("p", A, b"a" * 10)
    settle(crops)
    assert crops.put("p", B, b"b" * 10)  # A is removed for room: its removal fails
    settle(crops)
    assert crops.dropped == 0
    assert sorted(files(tmp_path)) == sorted(str(crops.key("p", f)) for f in (A, B))
