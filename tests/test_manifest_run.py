"""Media-analysis launches on a local object root: lines in order, errors, resume, ends, stop.

The real runner, object store and moderation stage, with a fake moderator whose label's
confidence is the image's first pixel (so each results line names its image), and a sink
and events that record what the launch reports.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from streamproc.config import ObjectsConfig
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.jobrun import JobInput, JobPlan
from streamproc.dataplane.stored.manifest import ManifestOutcome, ManifestTask, output_keys
from streamproc.dataplane.stored.manifestimages import ImageLimits
from streamproc.dataplane.stored.manifestrun import ManifestSettings
from streamproc.dataplane.stored.manifestrunner import ManifestRunner
from streamproc.dataplane.stored.moderation_stage import ModerationStage
from streamproc.dataplane.stored.stages import MODERATION
from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ResourceNotReadyException,
    StreamprocError,
)
from streamproc.metrics import JobMetrics, JobSensor
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel
from streamproc.storage.objects import ObjectRef, ObjectStore
from streamproc.tools.clusterkit import poll

DEADLINE_S = 20.0
JOB = "job-1"


def _until(check: Callable[[], bool], timeout: float = DEADLINE_S) -> bool:
    return bool(poll(check, timeout, 0.01))


class Moderator:
    """Explicit at the image's first pixel value; ``gate`` holds each call while clear."""

    model_version = "7.0-fake"
    served = ("Explicit",)

    def __init__(self, broken: bool = False) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.images = 0
        self.broken = broken

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        self.gate.wait(30)
        if self.broken:
            raise RuntimeError("model error")
        self.images += len(images)
        return [ModerationAnalysis((ModerationLabel("Explicit", "", 1,
                                                    float(image[0, 0, 0])),))
                for image in images]


class NoLive:
    def live_attached(self) -> bool:
        return False

    def live_waiting(self) -> bool:
        return False


class Recorder:
    """The launch's sink and events."""

    def __init__(self) -> None:
        self.metadata: dict[str, Any] | None = None
        self.ended: list[tuple[int, str | None]] = []

    def set_metadata(self, job_id: str, attempt: int, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    def add_results(self, job_id: str, attempt: int, rows: list[Any]) -> bool:
        raise AssertionError("a media-analysis launch writes no result rows")

    def job_ended(self, job_id: str, attempt: int, error: str | None) -> None:
        self.ended.append((attempt, error))


def _jpeg(value: int, side: int = 96) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((side, side, 3), value, np.uint8))
    assert ok
    return data.tobytes()


def _png_bomb() -> bytes:
    """A small PNG whose header claims 60000x60000 pixels (its data is a stub)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


class Rig:
    """A local root with buckets ``inbox`` and ``outbox``, a stage and a runner over them."""

    def __init__(self, root: Path, moderator: Moderator, adapters: Any = None,
                 **settings: Any) -> None:
        (root / "inbox").mkdir()
        (root / "outbox").mkdir()
        (root / "other").mkdir()
        self.root = root
        self.objects = ObjectStore(ObjectsConfig(local_root=root, buckets=["inbox", "outbox"]))
        self.stage = ModerationStage(moderator, 4, NoLive())
        feed: BackgroundFeed[ModerationAnalysis] = BackgroundFeed()
        self.stage.add_background(feed, 1)
        base = {"max_line_bytes": 4096, "max_lines": 1000, "queue": 2,
                "limits": ImageLimits(max_bytes=200_000, max_pixels=10_000_000, min_side=80),
                "checkpoint_lines": 2}
        self.runner = ManifestRunner(self.objects, feed, ManifestSettings(**{**base, **settings}),
                                     root / "data" / "media", adapters)
        self.metrics = JobMetrics.create(CollectorRegistry())
        self.stage.start()

    def image(self, name: str, data: bytes) -> str:
        (self.root / "inbox" / name).write_bytes(data)
        return f"s3://inbox/{name}"

    def manifest(self, lines: Sequence[str | dict[str, Any]], name: str = "m.jsonl") -> None:
        text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
        (self.root / "inbox" / name).write_text(text + "\n", encoding="utf-8")

    def launch(self, attempt: int = 1, manifest: str = "m.jsonl", bucket: str = "inbox",
               out: str = "outbox", adapter: str | None = None) -> tuple[Any, Recorder]:
        plan = JobPlan(JOB, attempt, "MediaAnalysis", ObjectRef(bucket, manifest),
                       ManifestTask(0.0, out, "res/", "7.0-fake", adapter), JobInput.IMAGES,
                       MODERATION)
        recorder = Recorder()
        run = self.runner.launch(plan, recorder, recorder,
                                 JobSensor(self.metrics, "MediaAnalysis", JOB))
        return run, recorder

    def finished(self, recorder: Recorder) -> str | None:
        assert _until(lambda: bool(recorder.ended)), "the launch did not end"
        assert len(recorder.ended) == 1
        return recorder.ended[0][1]

    def outputs(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        results_key, summary_key = output_keys("res/", JOB)
        results = [json.loads(line) for line in
                   (self.root / "outbox" / results_key).read_text().splitlines()]
        return results, json.loads((self.root / "outbox" / summary_key).read_text())


@pytest.fixture
def moderator() -> Moderator:
    return Moderator()


@pytest.fixture
def rig(tmp_path: Path, moderator: Moderator) -> Iterator[Rig]:
    r = Rig(tmp_path, moderator)
    yield r
    assert r.stage.stop(5.0)


def test_every_line_resolves_in_manifest_order_and_bad_lines_go_to_the_summary(
        rig: Rig) -> None:
    good = [rig.image(f"{v}.jpg", _jpeg(v)) for v in (10, 20, 30)]
    rig.image("bomb.png", _png_bomb())
    rig.image("junk.jpg", b"not an image")
    rig.image("cut.jpg", _jpeg(60)[:300])  # a truncated JPEG
    rig.image("tiny.jpg", _jpeg(50, 40))
    rig.manifest([
        {"source-ref": good[0], "extra": 1},
        "not json",
        "",
        {"no-ref": good[1]},
        {"source-ref": 7},
        {"source-ref": "http://in/x.jpg"},
        {"source-ref": "s3://other/x.jpg"},
        {"source-ref": "s3://inbox/missing.jpg"},
        {"source-ref": "s3://inbox/bomb.png"},
        {"source-ref": "s3://inbox/junk.jpg"},
        {"source-ref": "s3://inbox/cut.jpg"},
        {"source-ref": "s3://inbox/tiny.jpg"},
        "[1, 2]",
        {"source-ref": good[1]},
        "x" * 5000,
        {"source-ref": good[2]},
        {"source-ref": good[0]},  # a duplicate is analysed again, as AWS does
    ])
    run, recorder = rig.launch()
    assert rig.finished(recorder) is None
    results, summary = rig.outputs()
    assert [(r["source-ref"], r["detect-moderation-labels"]["ModerationLabels"][0]["Confidence"])
            for r in results] == [(good[0], 10.0), (good[1], 20.0), (good[2], 30.0),
                                  (good[0], 10.0)]
    assert results[0]["detect-moderation-labels"]["ModerationModelVersion"] == "7.0-fake"
    codes = [(e["line-numer"], e["line-number"], e["code"]) for e in summary["errors"]]
    assert [(n, c) for n, _, c in codes] == [
        (2, "ERROR_INVALID_JSON_LINE"), (4, "ERROR_MISSING_SOURCE_REF"),
        (5, "ERROR_INVALID_SOURCE_REF_FORMAT"), (6, "ERROR_INVALID_SOURCE_REF_FORMAT"),
        (7, "ERROR_ACCESS_DENIED"), (8, "ERROR_INVALID_S3_OBJECT"),
        (9, "ERROR_IMAGE_TOO_LARGE"), (10, "ERROR_INVALID_IMAGE"), (11, "ERROR_INVALID_IMAGE"),
        (12, "ERROR_INVALID_IMAGE_DIMENSION"), (13, "ERROR_INVALID_JSON_LINE"),
        (15, "ERROR_JSON_LINE_TOO_LARGE")]
    assert all(a == b for _, a, b in [(0, n, m) for n, m, _ in codes])
    assert summary["version"] == "1.0"
    assert summary["statistics"] == {"total-json-lines": 16, "valid-json-lines": 4,
                                     "invalid-json-lines": 12}
    outcome = ManifestOutcome.from_stored(recorder.metadata)
    assert outcome is not None and outcome.bucket == "outbox"
    assert (outcome.results_key, outcome.summary_key) == output_keys("res/", JOB)
    assert not (rig.root / "data" / "media" / JOB).exists()  # local files go at the end
    assert _until(lambda: not run.running)


def test_an_object_over_the_byte_limit_is_an_error_entry(tmp_path: Path,
                                                         moderator: Moderator) -> None:
    rig = Rig(tmp_path, moderator, limits=ImageLimits(max_bytes=1000, max_pixels=10_000_000,
                                                      min_side=80))
    try:
        rig.manifest([{"source-ref": rig.image("a.jpg", _jpeg(10))},
                      {"source-ref": rig.image("b.png", cv2.imencode(
                          ".png", np.random.default_rng(1).integers(
                              0, 255, (200, 200, 3), np.uint8))[1].tobytes())}])
        _, recorder = rig.launch()
        assert rig.finished(recorder) is None
        _, summary = rig.outputs()
        assert [e["code"] for e in summary["errors"]] == ["ERROR_IMAGE_TOO_LARGE"]
    finally:
        rig.stage.stop(5.0)


@pytest.mark.parametrize(("setup", "code"), [
    ("missing", "INVALID_S3_OBJECT"),
    ("no-output", "INVALID_OUTPUT_CONFIG"),
    ("refused", "ACCESS_DENIED"),
    ("no-valid", "INVALID_MANIFEST"),
    ("too-long", "INVALID_MANIFEST"),
    ("escape", "INVALID_S3_OBJECT"),
])
def test_a_job_that_cannot_run_fails_with_its_code(tmp_path: Path, moderator: Moderator,
                                                   setup: str, code: str) -> None:
    rig = Rig(tmp_path, moderator, max_lines=3)
    try:
        rig.manifest([{"source-ref": rig.image("a.jpg", _jpeg(10))}] * (5 if setup == "too-long"
                                                                         else 1))
        (tmp_path / "other" / "m.jsonl").write_text('{"source-ref": "s3://inbox/a.jpg"}\n')
        if setup == "no-valid":
            rig.manifest(["not json", "{}"])
        kwargs = {"missing": {"manifest": "nope.jsonl"}, "no-output": {"out": "absent"},
                  "refused": {"bucket": "other"}, "escape": {"manifest": "../other/m.jsonl"},
                  }.get(setup, {})
        _, recorder = rig.launch(**kwargs)
        error = rig.finished(recorder)
        assert error is not None and error.startswith(f"{code}: "), error
        assert not (tmp_path / "outbox" / "res").exists()  # nothing half-written is visible
        assert recorder.metadata is None
    finally:
        rig.stage.stop(5.0)


def test_a_stage_failure_fails_the_job_as_an_internal_error(tmp_path: Path) -> None:
    rig = Rig(tmp_path, Moderator(broken=True))
    try:
        rig.manifest([{"source-ref": rig.image("a.jpg", _jpeg(10))}])
        _, recorder = rig.launch()
        error = rig.finished(recorder)
        assert error is not None and error.startswith("INTERNAL_ERROR: ")
    finally:
        rig.stage.stop(5.0)


def test_a_halted_launch_resumes_and_each_line_is_written_once(
        rig: Rig, moderator: Moderator) -> None:
    refs = [rig.image(f"{v}.jpg", _jpeg(v)) for v in range(10, 90, 10)]
    rig.manifest([{"source-ref": ref} for ref in refs] + ["bad"] + [
        {"source-ref": ref} for ref in refs])
    moderator.gate.clear()  # the stage holds its first batch
    run, first = rig.launch(attempt=1)
    assert _until(lambda: moderator.images == 0 and run.running)
    time.sleep(0.3)
    moderator.gate.set()
    assert _until(lambda: moderator.images >= 6)  # part of the manifest is done
    rig.runner.begin_halt(run)
    assert _until(lambda: rig.runner.halted(run), 5.0)
    assert first.ended == []  # a halted launch reports nothing
    folder = rig.root / "data" / "media" / JOB
    assert (folder / "checkpoint.json").exists()
    # A kill after lines were written but before their checkpoint: the next launch cuts
    # the files back to the checkpoint.
    with open(folder / "results.jsonl", "ab") as results:
        results.write(b'{"source-ref": "s3://inbox/ghost.jpg"}\n')
    _, second = rig.launch(attempt=2)
    assert rig.finished(second) is None
    results, summary = rig.outputs()
    assert [r["source-ref"] for r in results] == refs + refs
    assert summary["statistics"]["invalid-json-lines"] == 1
    assert summary["errors"][0]["line-number"] == len(refs) + 1


def test_a_launch_waits_for_the_files_of_an_abandoned_launch_of_its_job(
        rig: Rig, moderator: Moderator) -> None:
    rig.manifest([{"source-ref": rig.image("a.jpg", _jpeg(10))}] * 3)
    moderator.gate.clear()
    old, _ = rig.launch(attempt=1)
    assert _until(lambda: old.running)
    time.sleep(0.2)
    new, second = rig.launch(attempt=2)  # the old one was never halted: its lock is held
    time.sleep(0.3)
    assert second.ended == [] and new.running
    rig.runner.begin_halt(old)
    moderator.gate.set()
    assert rig.finished(second) is None
    assert [r["source-ref"] for r in rig.outputs()[0]] == ["s3://inbox/a.jpg"] * 3


def test_a_halted_launch_stops_within_its_bound_while_blocked(
        rig: Rig, moderator: Moderator) -> None:
    rig.manifest([{"source-ref": rig.image(f"{v}.jpg", _jpeg(v))} for v in range(10, 60, 5)])
    moderator.gate.clear()  # the queue fills and reading blocks on it
    run, recorder = rig.launch()
    time.sleep(0.5)
    started = time.monotonic()
    assert run.stop(2.0)
    assert time.monotonic() - started < 2.0 and recorder.ended == []
    moderator.gate.set()


def test_leftover_files_of_ended_jobs_are_removed(rig: Rig) -> None:
    media = rig.root / "data" / "media"
    for job in ("live-job", "gone-job"):
        (media / job).mkdir(parents=True)
        (media / job / "results.jsonl").write_text("{}\n")
    rig.runner.clean_leftovers(lambda job_id: job_id == "live-job")
    assert sorted(p.name for p in media.iterdir()) == ["live-job"]


def test_a_halted_launch_keeps_its_job_s_lock_until_its_files_are_closed(
        rig: Rig, moderator: Moderator, monkeypatch: pytest.MonkeyPatch) -> None:
    # The lock is what keeps a successor launch off the files: the halted launch's last
    # checkpoint (flushing its buffered lines) and close must happen while it holds it.
    from streamproc.dataplane.stored.manifestfiles import ManifestFiles
    held_at_close: list[bool] = []
    close = ManifestFiles.close

    def recording_close(files: ManifestFiles) -> None:
        lock = rig.runner._locks.get(JOB)
        held_at_close.append(lock is not None and lock.locked())
        close(files)

    monkeypatch.setattr(ManifestFiles, "close", recording_close)
    rig.manifest([{"source-ref": rig.image(f"{v}.jpg", _jpeg(v))} for v in range(10, 40, 10)])
    moderator.gate.clear()
    run, recorder = rig.launch()
    assert _until(lambda: run.running)
    time.sleep(0.3)
    assert run.stop(2.0)
    moderator.gate.set()
    assert held_at_close and all(held_at_close) and recorder.ended == []


def test_a_manifest_replaced_by_one_of_the_same_size_is_read_again_from_its_start(
        rig: Rig, moderator: Moderator) -> None:
    refs = [rig.image(f"{v}.jpg", _jpeg(v)) for v in range(10, 90, 10)]
    rig.manifest([{"source-ref": ref} for ref in refs])
    moderator.gate.clear()
    run, _ = rig.launch(attempt=1)
    moderator.gate.set()
    assert _until(lambda: moderator.images >= 4)
    rig.runner.begin_halt(run)
    assert _until(lambda: rig.runner.halted(run), 5.0)
    time.sleep(0.01)  # a modification time of its own, whatever the clock's resolution
    replaced = list(reversed(refs))  # the same bytes in another order: the same size
    rig.manifest([{"source-ref": ref} for ref in replaced])
    _, second = rig.launch(attempt=2)
    assert rig.finished(second) is None
    assert [r["source-ref"] for r in rig.outputs()[0]] == replaced


def test_bad_lines_behind_a_slow_image_are_bounded_and_still_written_in_order(
        tmp_path: Path, moderator: Moderator) -> None:
    rig = Rig(tmp_path, moderator, max_pending=3)
    try:
        first = rig.image("a.jpg", _jpeg(10))
        rig.manifest([{"source-ref": first}] + ["bad"] * 20 + [{"source-ref": first}])
        moderator.gate.clear()  # the first image waits in the stage
        run, recorder = rig.launch()
        time.sleep(0.3)
        assert recorder.ended == [] and run.running  # reading waits: at most 3 lines held
        moderator.gate.set()
        assert rig.finished(recorder) is None
        results, summary = rig.outputs()
        assert [r["source-ref"] for r in results] == [first, first]
        assert [e["line-number"] for e in summary["errors"]] == list(range(2, 22))
    finally:
        rig.stage.stop(5.0)


def test_the_stage_and_the_launch_hammering_one_owner_keep_every_line_in_order(
        tmp_path: Path, moderator: Moderator) -> None:
    """The stage thread finishes images while the launch adds, takes and waits: stress."""
    rig = Rig(tmp_path, moderator, max_pending=5, queue=2, checkpoint_lines=100)
    try:
        refs = [rig.image(f"{v}.jpg", _jpeg(v)) for v in (10, 20, 30, 40, 50)]
        lines: list[str | dict[str, Any]] = []
        for i in range(900):
            lines.append({"source-ref": refs[i % 5]} if i % 3 == 0 else "bad")
        rig.manifest(lines)
        _, recorder = rig.launch()
        assert rig.finished(recorder) is None
        results, summary = rig.outputs()
        assert [r["source-ref"] for r in results] == [refs[i % 5] for i in range(0, 900, 3)]
        assert [e["line-number"] for e in summary["errors"]] == [
            i + 1 for i in range(900) if i % 3]
    finally:
        rig.stage.stop(5.0)


# ---- a launch with an adapter (ProjectVersion) ---------------------------------------------
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"


class Tuned(Moderator):
    """An adapter's moderator: Violence (which the base fake never says) at the pixel value."""

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        self.gate.wait(30)
        self.images += len(images)
        return [ModerationAnalysis((ModerationLabel("Violence", "", 1,
                                                    float(image[0, 0, 0])),))
                for image in images]


class Adapters:
    """An AdapterSource: hands out ``tuned`` for ARN until ``gone``, then raises ``gone``."""

    def __init__(self, tuned: Moderator) -> None:
        self.tuned = tuned
        self.gone: StreamprocError | None = None
        self.calls = 0

    def moderator(self, version_id: str | None, arn: str, stop: threading.Event
                  ) -> Moderator:
        self.calls += 1
        if self.gone is not None:
            raise self.gone
        assert arn == ARN
        return self.tuned


def test_a_launch_with_an_adapter_is_analysed_by_it_and_each_line_names_it(
        tmp_path: Path, moderator: Moderator) -> None:
    tuned = Tuned()
    tuned.gate.clear()  # hold the adapter's first call: the version is deleted meanwhile
    adapters = Adapters(tuned)
    rig = Rig(tmp_path, moderator, adapters)
    try:
        refs = [rig.image(f"{v}.jpg", _jpeg(v)) for v in (10, 20, 30)]
        rig.manifest([{"source-ref": ref} for ref in refs])
        _, recorder = rig.launch(adapter=ARN)
        assert _until(lambda: adapters.calls == 1)
        adapters.gone = ResourceNotFoundException("deleted")  # the launch keeps its adapter
        tuned.gate.set()
        assert rig.finished(recorder) is None
        results, _ = rig.outputs()
        answers = [r["detect-moderation-labels"] for r in results]
        assert [a["ModerationLabels"][0]["Name"] for a in answers] == ["Violence"] * 3
        assert all(a["ProjectVersion"] == ARN for a in answers)
        assert (adapters.calls, tuned.images, moderator.images) == (1, 3, 0)
    finally:
        rig.stage.stop(5.0)


@pytest.mark.parametrize(("gone", "code"), [
    (ResourceNotFoundException("The project version p does not exist"), "RESOURCE_NOT_FOUND"),
    (ResourceNotReadyException("The adapter v is still being trained"), "RESOURCE_NOT_READY"),
    (InvalidParameterException("trained on another backbone"), "INTERNAL_ERROR"),
])
def test_an_adapter_that_cannot_be_loaded_fails_the_launch_with_its_code(
        tmp_path: Path, moderator: Moderator, gone: StreamprocError, code: str) -> None:
    adapters = Adapters(Tuned())
    adapters.gone = gone
    rig = Rig(tmp_path, moderator, adapters)
    try:
        rig.manifest([{"source-ref": rig.image("a.jpg", _jpeg(10))}])
        _, recorder = rig.launch(adapter=ARN)
        assert rig.finished(recorder) == f"{code}: {gone.message}"
        assert moderator.images == 0
        assert not (rig.root / "outbox" / "res").exists()  # nothing uploaded
    finally:
        rig.stage.stop(5.0)


def test_without_adapters_a_launch_with_one_fails_not_found(rig: Rig) -> None:
    rig.manifest([{"source-ref": rig.image("a.jpg", _jpeg(10))}])
    _, recorder = rig.launch(adapter=ARN)
    error = rig.finished(recorder)
    assert error is not None and error.startswith("RESOURCE_NOT_FOUND: ")


def test_a_launch_without_an_adapter_has_no_project_version(rig: Rig) -> None:
    rig.manifest([{"source-ref": rig.image("a.jpg", _jpeg(10))}])
    _, recorder = rig.launch()
    assert rig.finished(recorder) is None
    results, _ = rig.outputs()
    assert "ProjectVersion" not in results[0]["detect-moderation-labels"]
