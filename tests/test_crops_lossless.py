"""The crop writer's review findings, as scenes: removals are never lost, a refused write
hides nothing, a crop removed while queued is never written, and a stopped writer that has
not ended refuses to start again. Each store writes through a gate the test holds shut to
make the writer fall behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamproc.config import ObjectsConfig
from streamproc.storage.crop_objects import SharedCropStore
from streamproc.storage.crop_writer import CropTask, CropWriter, TaskKind
from streamproc.storage.crops import CropsWhenFull
from streamproc.storage.objects import ObjectRef, ObjectStore

BUCKET = "shared-crops"


def face(n: int) -> str:
    return f"{n:08d}-1111-4111-8111-111111111111"


class Gated(ObjectStore):
    """The local store, whose writes and removals wait while ``gate`` is shut."""

    def __init__(self, config: ObjectsConfig, gate: threading.Event) -> None:
        super().__init__(config)
        self.gate = gate

    def put_bytes(self, ref: ObjectRef, data: bytes, *args: object, **kwargs: object) -> None:
        assert self.gate.wait(10.0)
        super().put_bytes(ref, data, *args, **kwargs)  # type: ignore[arg-type]

    def delete_many(self, bucket: str, names: list[str]) -> list[str]:
        assert self.gate.wait(10.0)
        return super().delete_many(bucket, names)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    shut = threading.Event()
    shut.set()
    yield shut
    shut.set()  # never leave a writer stuck behind it


@pytest.fixture
def stores() -> Iterator[list[SharedCropStore]]:
    made: list[SharedCropStore] = []
    yield made
    for store in made:
        store.stop(5.0)


def make(tmp_path: Path, stores: list[SharedCropStore], gate: threading.Event | None = None,
         **kwargs: object) -> SharedCropStore:
    (tmp_path / "o" / BUCKET).mkdir(parents=True, exist_ok=True)
    config = ObjectsConfig(local_root=tmp_path / "o")
    objects = Gated(config, gate) if gate is not None else ObjectStore(config)
    crops = SharedCropStore(objects, BUCKET, **kwargs)  # type: ignore[arg-type]
    crops.start()
    crops.load()
    assert crops.flush()
    stores.append(crops)
    return crops


def in_bucket(tmp_path: Path) -> list[str]:
    return sorted(p.name[:8] for p in (tmp_path / "o" / BUCKET).rglob("*.jpg"))


def wait_busy(crops: SharedCropStore) -> None:
    """Until the writer has taken its queued task and waits at the gate."""
    deadline = time.monotonic() + 5.0
    while crops._writer._tasks and time.monotonic() < deadline:  # noqa: SLF001
        time.sleep(0.01)


def test_a_refused_write_hides_none_of_the_crops_it_would_have_removed(
        tmp_path: Path, stores: list[SharedCropStore], gate: threading.Event) -> None:
    crops = make(tmp_path, stores, gate, max_bytes=8, retention_s=600.0, max_pending=1)
    assert crops.put("c", face(1), b"aaaa") and crops.flush()
    assert crops.put("c", face(2), b"bbbb") and crops.flush()
    gate.clear()
    assert crops.put("c", face(3), b"cccc")  # room: removes 1; the writer takes it
    wait_busy(crops)
    assert crops.put("c", face(4), b"dddd")  # queued (the one slot), room: removes 2
    assert not crops.put("c", face(5), b"eeee")  # refused: must remove nothing for room
    gate.set()
    assert crops.flush()
    assert in_bucket(tmp_path) == [face(3)[:8], face(4)[:8]]
    assert crops.get("c", face(3)) == b"cccc"  # still shown: the refused write doomed nothing
    assert crops.bytes == 8


def test_a_delete_the_writer_refuses_is_still_done_and_never_shown_again(
        tmp_path: Path, stores: list[SharedCropStore], gate: threading.Event) -> None:
    crops = make(tmp_path, stores, gate, max_bytes=10**6, retention_s=600.0, max_pending=1)
    crops._writer._wait_s = 0.2  # noqa: SLF001 - not the 5 s a DeleteFaces may wait
    assert crops.put("c", face(1), b"aaaa") and crops.flush()
    gate.clear()
    for n in range(100, 117):  # fill the removals' queue (and the one running)
        crops.delete("z", [face(n)])
    crops.delete("c", [face(1)])  # refused after 0.2 s
    assert crops.get("c", face(1)) is None
    gate.set()
    assert crops.flush()
    assert crops.get("c", face(1)) is None  # still not shown, and this queued the sweep
    assert crops.flush()
    assert in_bucket(tmp_path) == []  # removed by that sweep: the delete was not lost


def test_a_collection_delete_the_writer_refuses_is_still_done(
        tmp_path: Path, stores: list[SharedCropStore], gate: threading.Event) -> None:
    crops = make(tmp_path, stores, gate, max_bytes=10**6, retention_s=600.0, max_pending=1)
    crops._writer._wait_s = 0.2  # noqa: SLF001
    assert crops.put("c", face(1), b"aaaa") and crops.flush()
    gate.clear()
    for n in range(100, 117):
        crops.delete("z", [face(n)])
    crops.delete_collection("c")
    gate.set()
    assert crops.flush()
    assert crops.get("c", face(1)) is None
    assert crops.flush()
    assert in_bucket(tmp_path) == []


class Failing(ObjectStore):
    """The local store, whose removals fail (the endpoint is down) while ``down`` is set."""

    def __init__(self, config: ObjectsConfig) -> None:
        super().__init__(config)
        self.down = threading.Event()

    def delete_many(self, bucket: str, names: list[str]) -> list[str]:
        if self.down.is_set():
            return []  # none removed: what delete_many answers when every delete failed
        return super().delete_many(bucket, names)


def _failing(tmp_path: Path, stores: list[SharedCropStore],
             clock: list[float]) -> tuple[SharedCropStore, Failing]:
    (tmp_path / "o" / BUCKET).mkdir(parents=True, exist_ok=True)
    objects = Failing(ObjectsConfig(local_root=tmp_path / "o"))
    crops = SharedCropStore(objects, BUCKET, max_bytes=10**6, retention_s=10**6,
                            sweep_s=60.0, clock=lambda: clock[0])
    crops.start()
    crops.load()
    assert crops.flush()
    stores.append(crops)
    return crops, objects


@pytest.mark.parametrize("whole_collection", [False, True])
def test_a_delete_that_fails_is_never_served_again_and_a_later_sweep_finishes_it(
        tmp_path: Path, stores: list[SharedCropStore], whole_collection: bool) -> None:
    clock = [1000.0]
    crops, objects = _failing(tmp_path, stores, clock)
    assert crops.put("c", face(1), b"aaaa") and crops.flush()
    objects.down.set()
    if whole_collection:
        crops.delete_collection("c")
    else:
        crops.delete("c", [face(1)])
    assert crops.flush()
    assert in_bucket(tmp_path) == [face(1)[:8]]  # the removal failed: the object is there
    clock[0] += 120.0  # past sweep_s: the next read queues a sweep
    assert crops.get("c", face(1)) is None  # never shown again
    assert crops.flush()
    assert crops.get("c", face(1)) is None  # the sweep (still failing) changed nothing
    objects.down.clear()
    clock[0] += 120.0
    assert crops.get("c", face(1)) is None
    assert crops.flush()
    assert in_bucket(tmp_path) == []  # the endpoint back: the sweep removed it


def test_a_crop_removed_while_its_write_is_queued_is_never_written(
        tmp_path: Path, stores: list[SharedCropStore], gate: threading.Event) -> None:
    crops = make(tmp_path, stores, gate, max_bytes=10**6, retention_s=600.0, max_pending=1)
    crops._writer._wait_s = 0.2  # noqa: SLF001
    gate.clear()
    assert crops.put("z", face(9), b"zzzz")  # the writer waits on it
    wait_busy(crops)
    assert crops.put("c", face(1), b"aaaa")  # queued behind it
    for n in range(100, 116):  # fill the removals' queue
        crops.delete("z", [face(n)])
    crops.delete("c", [face(1)])  # refused: no removal runs after the write
    gate.set()
    assert crops.flush()
    assert face(1)[:8] not in in_bucket(tmp_path)


def test_drop_newest_counts_a_crop_still_queued_once_and_never_writes_it(
        tmp_path: Path, stores: list[SharedCropStore]) -> None:
    now = [time.time()]
    crops = make(tmp_path, stores, max_bytes=8, retention_s=600.0,
                 when_full=CropsWhenFull.DROP_NEWEST, sweep_s=30.0, clock=lambda: now[0])
    other = make(tmp_path, stores, max_bytes=8, retention_s=600.0)
    assert other.put("c", face(2), b"bbbb") and other.put("c", face(3), b"cccc")
    assert other.flush()
    now[0] += 31
    # The sweep (due) is queued first and finds the bucket full; the crop queued after it
    # is the newest, so the one left out, and it must not be written after all.
    assert crops.put("c", face(1), b"aaaa")
    assert crops.flush()
    assert in_bucket(tmp_path) == [face(2)[:8], face(3)[:8]]
    assert crops.dropped == 1 and crops.bytes == 8
    assert crops.get("c", face(1)) is None


def test_an_expired_crop_read_never_waits_on_a_full_writer(
        tmp_path: Path, stores: list[SharedCropStore], gate: threading.Event) -> None:
    now = [time.time()]
    crops = make(tmp_path, stores, gate, max_bytes=10**6, retention_s=60.0, sweep_s=10**6,
                 max_pending=1, clock=lambda: now[0])
    assert crops.put("c", face(1), b"aaaa") and crops.flush()
    gate.clear()
    assert crops._writer.submit(CropTask(TaskKind.DELETE, keys=(face(99),)))  # noqa: SLF001
    wait_busy(crops)  # the writer holds that one at the gate
    filled = [crops._writer.submit(CropTask(TaskKind.DELETE, keys=(face(n),)))  # noqa: SLF001
              for n in range(100, 117)]
    assert filled[-1] is False  # the removals' queue is full: a waiting removal would wait 5 s
    now[0] += 61
    began = time.monotonic()
    assert crops.get("c", face(1)) is None  # expired
    assert time.monotonic() - began < 1.0
    gate.set()
    assert crops.flush()
    assert crops.get("c", face(1)) is None
    assert crops.flush()
    assert in_bucket(tmp_path) == []  # the refused removal went with the next sweep


def test_a_start_after_a_stop_that_timed_out_is_refused_while_the_thread_runs() -> None:
    release = threading.Event()
    writer = CropWriter(lambda task: None if release.wait(10.0) else None, 4, 4)
    writer.start()
    assert writer.submit(CropTask(TaskKind.SWEEP))
    assert not writer.stop(0.1)  # the task still runs: abandoned
    with pytest.raises(RuntimeError, match="has not ended"):
        writer.start()
    release.set()
    assert writer._thread is not None  # noqa: SLF001
    writer._thread.join(5.0)  # noqa: SLF001
    writer.start()  # the old thread ended: a real start, taking work again
    assert writer.submit(CropTask(TaskKind.SWEEP)) and writer.flush(5.0)
    assert writer.stop(5.0)
