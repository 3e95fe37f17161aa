"""The shared crop store's writer: no request waits on the bucket, and what it is given.

An endpoint that accepts connections and never answers stands for an unreachable S3: the
store's calls return at once, the writer's thread takes the timeouts. The console's wiring
(which node keeps crops, the bucket kept from requests) and the bucket name's rules are
here too.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from streamproc.api.exposure import ExposureError
from streamproc.config import Config, ObjectsConfig, load_config
from streamproc.console import CropBucketExposed, face_crops
from streamproc.metrics import ApiMetrics
from streamproc.storage.crop_objects import SharedCropStore
from streamproc.storage.crop_writer import CropTask, CropWriter, TaskKind
from streamproc.storage.objects import ObjectStore

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
BUCKET = "shared-crops"
SAFE = {"objects.buckets": ["media"], "objects.output_buckets": ["results"]}


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An S3 endpoint that accepts connections and never answers one."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_an_unanswering_endpoint_never_holds_a_request(silent_endpoint: str) -> None:
    objects = ObjectStore(ObjectsConfig(s3_endpoint=silent_endpoint, s3_access_key_id="a",
                                        s3_secret_access_key="b", timeout_s=1.0))
    crops = SharedCropStore(objects, "cbk", 10**6, 3600.0, sweep_s=1.0)
    crops.start()
    try:
        began = time.monotonic()
        crops.load()  # the sweep's listing waits on the writer's thread
        for face in (A, B):
            assert crops.put("c", face, b"x" * 100)
        assert crops.get("c", A) == b"x" * 100  # queued: served from memory
        crops.delete("c", [B])
        crops.delete_collection("other")
        assert time.monotonic() - began < 0.5
        assert crops.get("c", B) is None
    finally:
        began = time.monotonic()
        crops.stop(0.5)  # abandons what the endpoint holds, within its timeout
        assert time.monotonic() - began < 1.5


def test_a_full_queue_drops_the_newest_crop_and_counts_it() -> None:
    release, holding = threading.Event(), threading.Event()
    ran: list[CropTask] = []

    def run(task: CropTask) -> None:
        holding.set()
        release.wait(5)
        ran.append(task)

    writer = CropWriter(run, max_crops=2, max_removals=1, wait_s=0.05)
    writer.start()
    try:
        first = CropTask(TaskKind.PUT, "k0")
        assert writer.submit(first)
        assert holding.wait(5)  # the thread holds the first one: two more fit the queue
        assert writer.submit(CropTask(TaskKind.PUT, "k1"))
        assert writer.submit(CropTask(TaskKind.PUT, "k2"))
        assert not writer.submit(CropTask(TaskKind.PUT, "k3"))  # drop_newest
        assert writer.submit(CropTask(TaskKind.DELETE, keys=("k1",)), wait=True)
        began = time.monotonic()
        assert not writer.submit(CropTask(TaskKind.DELETE, keys=("k2",)), wait=True)
        assert time.monotonic() - began >= 0.05  # a removal waited for room first
        release.set()
        assert writer.flush(5)
        assert [t.key or t.keys[0] for t in ran] == ["k0", "k1", "k2", "k1"]  # in order
    finally:
        release.set()
        assert writer.stop(5)


def test_stop_runs_what_is_queued_then_ends_the_thread() -> None:
    ran: list[str] = []
    writer = CropWriter(lambda t: ran.append(t.key), max_crops=10, max_removals=10)
    writer.start()
    for i in range(5):
        writer.submit(CropTask(TaskKind.PUT, f"k{i}"))
    assert writer.stop(5)
    assert ran == [f"k{i}" for i in range(5)]
    assert not writer.submit(CropTask(TaskKind.PUT, "late"))
    assert not writer.running


def test_a_failing_task_does_not_end_the_writer() -> None:
    ran: list[str] = []

    def run(task: CropTask) -> None:
        if task.key == "bad":
            raise RuntimeError(task.key)
        ran.append(task.key)

    writer = CropWriter(run, max_crops=4, max_removals=4)
    writer.start()
    writer.submit(CropTask(TaskKind.PUT, "bad"))
    writer.submit(CropTask(TaskKind.PUT, "good"))
    assert writer.flush(5) and ran == ["good"]
    assert writer.stop(5)


def root(tmp_path: Path) -> Path:
    (tmp_path / "objects" / BUCKET).mkdir(parents=True, exist_ok=True)
    return tmp_path / "objects"


def jpegs(tmp_path: Path) -> list[str]:
    bucket = tmp_path / "objects" / BUCKET
    return sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*.jpg"))


def shared_config(tmp_path: Path, **overrides: object) -> Config:
    return load_config(None, {"storage.data_dir": str(tmp_path / "data"),
                              "objects.local_root": str(root(tmp_path)),
                              "console.face_crops_bucket": BUCKET, **SAFE, **overrides})


@pytest.mark.parametrize("overrides", [{}, {"cluster.bootstrap": "127.0.0.1:9092"}])
def test_a_node_serving_the_console_keeps_its_crops_in_the_bucket(
        tmp_path: Path, overrides: dict[str, object]) -> None:
    (tmp_path / "data" / "crops" / "old").mkdir(parents=True)  # a single daemon's, before
    registry = CollectorRegistry()
    metrics = ApiMetrics.create(registry)
    config = shared_config(tmp_path, **{"console.face_crops_max_bytes": 5, **overrides})
    crops = face_crops(config, tmp_path / "data", "127.0.0.1",
                       metrics.console_crops_dropped.inc)
    assert isinstance(crops, SharedCropStore)
    try:
        assert crops.put("p", A, b"jpeg") and not crops.put("p", B, b"x" * 6)
        assert crops.flush()
        assert jpegs(tmp_path) == [crops.key("p", A)]
        assert registry.get_sample_value("streamproc_console_crops_dropped_total") == 1.0
        assert not (tmp_path / "data" / "crops").exists()
    finally:
        crops.stop(5)


@pytest.mark.parametrize("overrides", [{"console.enabled": False},
                                       {"console.enabled": True}])  # served on 0.0.0.0: no
def test_a_node_without_the_console_keeps_no_crop_and_still_removes_them(
        tmp_path: Path, overrides: dict[str, object]) -> None:
    shown = face_crops(shared_config(tmp_path), tmp_path / "data", "127.0.0.1")
    assert isinstance(shown, SharedCropStore)
    hidden = face_crops(shared_config(tmp_path, **overrides), tmp_path / "data",
                        "127.0.0.1" if overrides["console.enabled"] is False else "0.0.0.0")
    assert isinstance(hidden, SharedCropStore)
    try:
        pixels = np.full((120, 160, 3), 90, np.uint8)
        assert not hidden.keep("p", B, pixels, np.array([40.0, 30.0, 100.0, 90.0]))
        assert not hidden.put("p", B, b"jpeg") and hidden.dropped == 0  # none kept: no drop
        assert shown.put("p", A, b"jpeg") and shown.flush()
        assert jpegs(tmp_path) == [shown.key("p", A)]
        hidden.delete("p", [A])  # DeleteFaces served by the node without a console
        assert hidden.flush() and jpegs(tmp_path) == []
    finally:
        shown.stop(5)
        hidden.stop(5)


def test_cluster_mode_without_a_bucket_keeps_none(tmp_path: Path) -> None:
    config = load_config(None, {"storage.data_dir": str(tmp_path),
                                "cluster.bootstrap": "127.0.0.1:9092"})
    assert face_crops(config, tmp_path, "127.0.0.1") is None


def test_crops_turned_off_remove_what_the_bucket_holds(tmp_path: Path) -> None:
    kept = face_crops(shared_config(tmp_path), tmp_path / "data", "127.0.0.1")
    assert isinstance(kept, SharedCropStore)
    assert kept.put("p", A, b"jpeg") and kept.put("q", B, b"jpeg") and kept.flush()
    kept.stop(5)
    reachable = shared_config(tmp_path, **{"console.face_crops": False,
                                           "objects.buckets": None})
    assert face_crops(reachable, tmp_path / "data", "127.0.0.1") is None
    assert len(jpegs(tmp_path)) == 2  # a bucket API requests reach: its objects are left
    off = shared_config(tmp_path, **{"console.face_crops": False})
    assert face_crops(off, tmp_path / "data", "127.0.0.1") is None
    assert jpegs(tmp_path) == []


@pytest.mark.parametrize("lists", [
    {"objects.buckets": None, "objects.output_buckets": None},  # every bucket, the crops' too
    {"objects.buckets": ["media"], "objects.output_buckets": None},
    {"objects.buckets": ["media"], "objects.output_buckets": [BUCKET]},
    {"objects.buckets": [BUCKET], "objects.output_buckets": ["results"]},
])
def test_a_bucket_requests_could_reach_refuses_the_start(
        tmp_path: Path, lists: dict[str, object]) -> None:
    with pytest.raises(CropBucketExposed, match="objects.buckets and objects.output_buckets"
                       ) as caught:
        face_crops(shared_config(tmp_path, **lists), tmp_path / "data", "127.0.0.1")
    assert isinstance(caught.value, ExposureError)  # `serve` reports it and exits 2


@pytest.mark.parametrize("name", ["a..b", "Crops", "ab", "a_b", "-ab", "ab-", "a.-b",
                                  "192.168.1.10", "x" * 64])
def test_a_bucket_name_s3_refuses_fails_at_load(name: str) -> None:
    with pytest.raises(ValidationError, match="not an S3 bucket name|face_crops_bucket"):
        load_config(None, {"console.face_crops_bucket": name})


@pytest.mark.parametrize("name", ["abc", "face-crops", "crops.example.org", "a1" * 31 + "z"])
def test_a_bucket_name_s3_takes_loads(name: str) -> None:
    assert load_config(None, {"console.face_crops_bucket": name}).console.face_crops_bucket \
        == name


def test_a_due_sweep_of_many_expired_crops_never_holds_a_put(tmp_path: Path) -> None:
    objects = ObjectStore(ObjectsConfig(local_root=root(tmp_path)))
    now = [time.time()]
    crops = SharedCropStore(objects, BUCKET, 10**9, 100.0, sweep_s=60.0, clock=lambda: now[0])
    crops.start()
    try:
        crops.load()
        faces = [str(uuid.uuid4()) for _ in range(300)]
        for i, face in enumerate(faces):
            assert crops.put("c", face, b"x" * 300)
            if i % 50 == 49:  # within the writer's queue (64 crops)
                assert crops.flush(30)
        for path in (tmp_path / "objects" / BUCKET).rglob("*.jpg"):
            os.utime(path, (0, 0))
        now[0] += 10**6
        began = time.monotonic()
        assert crops.put("c", A, b"new")  # finds the sweep due: queues it, never runs it
        assert time.monotonic() - began < 0.1
        assert crops.flush(30)
        assert jpegs(tmp_path) == [crops.key("c", A)] and crops.bytes == 3
    finally:
        crops.stop(5)


def test_the_crops_own_store_waits_seconds_on_an_endpoint_not_objects_timeout(
        tmp_path: Path) -> None:
    crops = face_crops(shared_config(tmp_path, **{"objects.timeout_s": 30.0}),
                       tmp_path / "data", "127.0.0.1")
    assert isinstance(crops, SharedCropStore)
    try:
        objects = crops._objects  # noqa: SLF001 - the store face_crops built
        assert objects._config.timeout_s == 3.0  # noqa: SLF001
        assert objects._config.buckets == [BUCKET]  # noqa: SLF001 - its own, not requests'
    finally:
        crops.stop(5)


def test_an_exposed_crop_bucket_refuses_the_start_before_any_heavy_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused beside the exposure check: no engine loaded, the local crops left as they were."""
    from streamproc.daemon import core

    def no_engine(*_: object) -> None:
        raise AssertionError("the engine was built before the crop bucket was checked")

    monkeypatch.setattr(core, "FaceEngine", no_engine)
    (tmp_path / "data" / "crops" / "old").mkdir(parents=True)
    daemon = core.Daemon(shared_config(tmp_path, **{"objects.buckets": None}))
    with pytest.raises(CropBucketExposed, match="objects.buckets and objects.output_buckets"):
        daemon.start()
    assert (tmp_path / "data" / "crops" / "old").is_dir()


def test_health_reports_the_crop_writer_beside_the_stages(tmp_path: Path) -> None:
    from streamproc.daemon import core

    config = shared_config(tmp_path)
    daemon = core.Daemon(config)
    assert "face-crop-writer" not in daemon.health()["stages"]  # no bucket's writer: none
    crops = face_crops(config, tmp_path / "data", "127.0.0.1")
    assert isinstance(crops, SharedCropStore)
    daemon._crops = crops  # noqa: SLF001 - as start() sets it
    try:
        assert not crops.put("p", A, b"x" * (crops.max_bytes + 1))  # one dropped
        writer = daemon.health()["stages"]["face-crop-writer"]
        assert writer == {"state": "ok", "alive": True, "queued": writer["queued"],
                          "dropped": 1}
    finally:
        crops.stop(5)
    stopped = daemon.health()["stages"]["face-crop-writer"]
    assert not stopped["alive"] and stopped["state"] != "ok"


def test_streamproc_serve_exits_2_on_an_exposed_crop_bucket(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import SHARED

    config = tmp_path / "crops.yaml"
    config.write_text(f"objects:\n  local_root: {root(tmp_path)}\n"
                      f"console:\n  face_crops_bucket: {BUCKET}\n")  # both lists null
    out = subprocess.run([sys.executable, "-m", "streamproc", "serve", "--port", "0",
                          "--data-dir", str(tmp_path / "data"), "--model-root", str(SHARED),
                          "--model-pack", "test_mfn", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"console.face_crops_bucket {BUCKET} is one API requests may read" in out.stderr
    assert "Traceback" not in out.stderr
