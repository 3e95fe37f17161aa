"""The console's face crop store: bounded in bytes and age, a named policy when full."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from streamproc.config import load_config
from streamproc.console import face_crops
from streamproc.metrics import ApiMetrics
from streamproc.storage.crops import CropStore, CropsWhenFull, face_crop

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
C = "33333333-3333-4333-8333-333333333333"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(root: Path, max_bytes: int = 100, retention_s: float = 60.0,
          when_full: CropsWhenFull = CropsWhenFull.DROP_OLDEST,
          clock: Clock | None = None) -> CropStore:
    crops = CropStore(root / "crops", max_bytes, retention_s, when_full, clock or Clock())
    crops.load()
    return crops


def test_a_crop_is_kept_read_back_and_deleted_with_its_face(tmp_path: Path) -> None:
    crops = store(tmp_path)
    assert crops.put("people", A, b"x" * 10)
    assert crops.get("people", A) == b"x" * 10
    assert crops.get("other", A) is None  # by collection and FaceId
    path = crops.path("people", A)
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "crops").stat().st_mode) == 0o700
    crops.delete("people", [A, B])
    assert crops.get("people", A) is None and not path.exists() and crops.bytes == 0


def test_a_deleted_collection_takes_its_crops_with_it(tmp_path: Path) -> None:
    crops = store(tmp_path)
    crops.put("gone", A, b"a")
    crops.put("gone", B, b"b")
    crops.put("kept", A, b"k")
    crops.delete_collection("gone")
    assert crops.get("gone", A) is None and crops.get("gone", B) is None
    assert crops.get("kept", A) == b"k" and crops.bytes == 1


def test_names_that_are_not_face_ids_or_are_dots_stay_inside_the_folder(tmp_path: Path) -> None:
    crops = store(tmp_path)
    assert crops.path("people", "../../etc/passwd") is None
    assert not crops.put("people", "../x", b"x")
    assert crops.get("people", "../x") is None
    for collection in ("..", ".", "a/b"):
        path = crops.path(collection, A)
        assert path is not None and path.parent.parent == tmp_path / "crops"


def test_drop_oldest_makes_room_and_counts_each_drop(tmp_path: Path) -> None:
    dropped: list[int] = []
    crops = CropStore(tmp_path / "crops", 25, 60.0, CropsWhenFull.DROP_OLDEST, Clock(),
                      on_drop=lambda: dropped.append(1))
    crops.load()
    assert crops.put("p", A, b"a" * 10) and crops.put("p", B, b"b" * 10)
    assert crops.put("p", C, b"c" * 10)  # 30 > 25: A, the oldest, goes
    assert crops.get("p", A) is None and crops.get("p", B) and crops.get("p", C)
    assert crops.bytes == 20 and crops.dropped == 1 and dropped == [1]
    assert not crops.put("p", A, b"a" * 26)  # larger than the whole store: never kept
    assert crops.dropped == 2 and crops.bytes == 20


def test_drop_newest_keeps_what_is_there(tmp_path: Path) -> None:
    crops = store(tmp_path, max_bytes=25, when_full=CropsWhenFull.DROP_NEWEST)
    assert crops.put("p", A, b"a" * 10) and crops.put("p", B, b"b" * 10)
    assert not crops.put("p", C, b"c" * 10)
    assert crops.get("p", A) and crops.get("p", B) and crops.get("p", C) is None
    assert crops.dropped == 1 and crops.bytes == 20
    assert crops.put("p", A, b"a" * 15)  # a face indexed again replaces its own crop
    assert crops.bytes == 25


def test_crops_past_their_retention_are_removed(tmp_path: Path) -> None:
    clock = Clock()
    crops = store(tmp_path, retention_s=60.0, clock=clock)
    crops.put("p", A, b"a")
    clock.now += 30
    crops.put("p", B, b"b")
    clock.now += 31  # A is 61 s old, B 31 s
    assert crops.get("p", A) is None and crops.get("p", B) == b"b"
    path = crops.path("p", A)
    assert path is not None and not path.exists()
    assert crops.dropped == 0  # expiry is not a drop for room


def test_a_restart_takes_stock_of_the_crops_on_disk(tmp_path: Path) -> None:
    clock = Clock()
    first = store(tmp_path, max_bytes=25, clock=clock)
    first.put("p", A, b"a" * 10)
    first.put("p", B, b"b" * 10)
    again = store(tmp_path, max_bytes=25, clock=Clock())
    again._clock = lambda: 0.0  # the files' mtimes are "now": none has expired
    assert again.bytes == 20 and again.get("p", A) == b"a" * 10
    again.put("p", C, b"c" * 10)  # over the cap: the oldest on disk goes
    assert again.bytes == 20


def test_face_crop_is_a_small_jpeg_of_the_box(tmp_path: Path) -> None:
    pixels = np.full((600, 800, 3), 200, np.uint8)
    jpeg = face_crop(pixels, np.array([300.0, 200.0, 500.0, 450.0]))
    assert jpeg[:3] == b"\xff\xd8\xff"
    import cv2

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert max(image.shape[:2]) <= 160
    edge = face_crop(pixels, np.array([-50.0, -50.0, 10.0, 10.0]))  # clipped, still a JPEG
    assert edge[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(("overrides", "kept"), [
    ({}, True),
    ({"console.face_crops": False}, False),
    ({"console.enabled": False}, False),
])
def test_crops_are_kept_only_where_the_operator_chose_and_the_console_runs(
        tmp_path: Path, overrides: dict[str, object], kept: bool) -> None:
    config = load_config(None, {"storage.data_dir": str(tmp_path), **overrides})
    metrics = ApiMetrics.create(CollectorRegistry())
    crops = face_crops(config, tmp_path, "127.0.0.1", metrics.console_crops_dropped.inc)
    assert (crops is not None) is kept
    assert (tmp_path / "crops").exists() is kept


def test_no_crops_where_the_console_cannot_be_served(tmp_path: Path) -> None:
    config = load_config(None, {"storage.data_dir": str(tmp_path), "server.host": "0.0.0.0",
                                "server.allow_unauthenticated": True})
    assert face_crops(config, tmp_path, "0.0.0.0") is None


def test_the_drop_counter_is_the_metric(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = ApiMetrics.create(registry)
    config = load_config(None, {"storage.data_dir": str(tmp_path),
                                "console.face_crops_max_bytes": 5})
    crops = face_crops(config, tmp_path, "127.0.0.1", metrics.console_crops_dropped.inc)
    assert crops is not None and not crops.put("p", A, b"x" * 6)
    assert registry.get_sample_value("streamproc_console_crops_dropped_total") == 1.0


def test_a_crop_that_cannot_be_made_or_written_is_counted_never_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IndexFaces has stored the face already: a missing crop must not fail the call."""
    crops = store(tmp_path, max_bytes=10_000)
    pixels = np.full((120, 160, 3), 90, np.uint8)
    assert not crops.keep("p", A, pixels, np.array([500.0, 400.0, 600.0, 500.0]))  # outside
    assert crops.dropped == 1 and crops.get("p", A) is None

    def full_disk(*args: object, **kwargs: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("streamproc.storage.crops.os.open", full_disk)
    assert not crops.keep("p", B, pixels, np.array([40.0, 30.0, 100.0, 90.0]))
    assert crops.dropped == 2 and crops.bytes == 0 and crops.get("p", B) is None
    monkeypatch.undo()
    assert crops.keep("p", C, pixels, np.array([40.0, 30.0, 100.0, 90.0]))
    assert crops.get("p", C) is not None and crops.dropped == 2


def test_a_restart_removes_half_written_crops(tmp_path: Path) -> None:
    crops = store(tmp_path)
    assert crops.put("p", A, b"jpeg")
    leftover = crops.path("p", B)
    assert leftover is not None
    leftover.with_suffix(".part").write_bytes(b"half")
    again = store(tmp_path)
    assert not leftover.with_suffix(".part").exists() and again.get("p", A) == b"jpeg"


@pytest.mark.parametrize("overrides", [{"console.face_crops": False},
                                       {"cluster.bootstrap": "127.0.0.1:9092"}])
def test_crops_kept_before_are_removed_where_none_may_be_kept(
        tmp_path: Path, overrides: dict[str, object]) -> None:
    """Off (or in cluster mode, where another node's delete would leave them): none stay."""
    kept = face_crops(load_config(None, {"storage.data_dir": str(tmp_path)}), tmp_path,
                      "127.0.0.1")
    assert kept is not None and kept.put("p", A, b"jpeg")
    config = load_config(None, {"storage.data_dir": str(tmp_path), **overrides})
    assert face_crops(config, tmp_path, "127.0.0.1") is None
    assert not (tmp_path / "crops").exists()


def test_api_threads_writing_reading_and_deleting_crops_keep_the_byte_count(
        tmp_path: Path) -> None:
    """IndexFaces, the grid and DeleteFaces at once: the count matches the files on disk."""
    import threading
    import uuid

    crops = store(tmp_path, max_bytes=4_000)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(150):
                face = str(uuid.UUID(int=n * 1000 + i, version=4))
                crops.put(f"c{n % 2}", face, b"j" * (50 + i % 7))
                crops.get(f"c{n % 2}", face)
                if i % 3 == 0:
                    crops.delete(f"c{n % 2}", [face])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and not any(t.is_alive() for t in threads)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "crops").glob("*/*.jpg"))
    assert crops.bytes == on_disk <= 4_000 and crops.dropped > 0
