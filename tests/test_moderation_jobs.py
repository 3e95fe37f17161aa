"""Content-moderation video jobs without models: the request, the wire, paging, the log, the schema.

StartContentModeration / GetContentModeration over the real jobs service, store, rules and
handlers (a local ledger, rows written as a launch would write them); the builder's own rules
are tests/test_moderation_results.py; a daemon with the real engine is
tests/test_moderation_jobs_e2e.py.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import botocore.session
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from videos import encode as encode_video

from streamproc.api.context import RequestContext
from streamproc.api.job_handlers import JobHandler, job_handlers
from streamproc.api.job_kinds.faces import FaceDetectionWire
from streamproc.api.job_kinds.moderation import ContentModerationWire
from streamproc.config import load_config
from streamproc.daemon.jobs import video_runner
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.jobrunners import JobRunners
from streamproc.dataplane.stored.moderation_results import SEGMENTS, TIMESTAMPS
from streamproc.dataplane.stored.moderation_stage import ModerationStage
from streamproc.dataplane.stored.stages import MODERATION
from streamproc.errors import (
    IdempotentParameterMismatchException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
)
from streamproc.jobs.commands import AddJobResults
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.kinds.faces import FaceDetectionJobKind, FaceDetectionRequest
from streamproc.jobs.kinds.moderation import (
    CONTENT_MODERATION,
    ContentModerationJobKind,
    ContentModerationRequest,
    ContentModerationResults,
)
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.parts import SchedulerParts, SchedulerSettings
from streamproc.jobs.request import NotificationChannel
from streamproc.jobs.rules import JobRules, JobWrites
from streamproc.jobs.scheduler import JobScheduler
from streamproc.jobs.service import JobService, ResultsQuery
from streamproc.ledger import Appliers, LocalLedger, encode
from streamproc.metrics import JobMetrics, NoticeSensor
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel
from streamproc.storage.db import Database
from streamproc.storage.jobs import SUCCEEDED, JobStore, ResultOrder, ResultRow
from streamproc.storage.migrations import MAIN
from streamproc.storage.objects import ObjectRef, ObjectStore

VERSION = "7.0-open_nsfw"
CLIP = ObjectRef("vids", "clip.mp4")
_CTX: RequestContext = None  # type: ignore[assignment]  # the job handlers never read it


class _Publisher:
    def submit(self, *args: Any) -> None:
        raise AssertionError("no notice is sent in these tests")


class Jobs:
    """The jobs' control plane with content moderation and face detection registered."""

    def __init__(self, root: Path) -> None:
        (root / "objects" / "vids").mkdir(parents=True)
        (root / "objects" / "vids" / "clip.mp4").write_bytes(b"not decoded here")
        self.db = Database(root / "streamproc.db")
        self.db.open()
        config = load_config(None, {"objects.local_root": str(root / "objects"),
                                    "kafka.bootstrap": "k:9092"})
        metrics = JobMetrics.create(CollectorRegistry())
        notices = Notices(_Publisher(), "k:9092", {}, NoticeSensor(metrics),
                          OutputAllowlist.for_config(config))
        self.store = JobStore(self.db)
        appliers = Appliers()
        JobRules(self.store, lambda: None).register(appliers)
        self.kind = ContentModerationJobKind(VERSION)
        kinds = JobKinds([FaceDetectionJobKind(), self.kind])
        self.service = JobService(self.store, ObjectStore(config.objects), kinds, notices,
                                  config.jobs, LocalLedger(appliers), metrics)
        table: dict[str, JobHandler] = job_handlers(
            [FaceDetectionWire(), ContentModerationWire(self.kind)])
        self.call = {op: functools.partial(fn, self.service, ctx=_CTX)
                     for op, fn in table.items()}

    def start(self, **params: Any) -> str:
        p = {"Video": {"S3Object": {"Bucket": "vids", "Name": "clip.mp4"}}, **params}
        return str(self.call["StartContentModeration"](p)["JobId"])

    def succeed(self, job_id: str, rows: list[ResultRow]) -> None:
        """As a launch would: RUNNING, its rows written, then SUCCEEDED."""
        attempt = self.store.launch(job_id)
        assert self.store.add_results(job_id, attempt, rows)
        assert self.store.finish(job_id, attempt, SUCCEEDED, "", 1.0)

    def get(self, job_id: str, **params: Any) -> dict[str, Any]:
        return self.call["GetContentModeration"]({"JobId": job_id, **params})


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    made = Jobs(tmp_path)
    yield made
    made.db.close()


def _label(name: str, parent: str = "", confidence: float = 60.0) -> dict[str, Any]:
    return {"Confidence": confidence, "Name": name, "ParentName": parent,
            "TaxonomyLevel": 2 if parent else 1}


def _segment(seq: int, name: str, start: int, end: int) -> ResultRow:
    return ResultRow(seq, start, None, {
        "Timestamp": start, "ModerationLabel": _label(name), "StartTimestampMillis": start,
        "EndTimestampMillis": end, "DurationMillis": end - start}, SEGMENTS, name)


def _moderation_rows() -> list[ResultRow]:
    """TIMESTAMPS rows at 0, 200, 400 and two SEGMENTS rows, written as a launch would
    (segments when they close, so not in time order)."""
    ts = [(0, "Explicit"), (0, "Explicit Nudity"), (200, "Explicit"), (400, "Alcohol")]
    rows = [ResultRow(i, t, None, {"Timestamp": t, "ModerationLabel": _label(
        n, "Explicit" if n == "Explicit Nudity" else "")}, TIMESTAMPS, n)
        for i, (t, n) in enumerate(ts)]
    return [*rows, _segment(4, "Explicit", 400, 400), _segment(5, "Explicit", 0, 200),
            _segment(6, "Alcohol", 400, 400)]


# ---- the request -------------------------------------------------------------------------
def test_the_stored_form_fills_in_min_confidence_and_reads_back() -> None:
    request = ContentModerationRequest(CLIP, "t", NotificationChannel("arn:aws:sns:r:1:x"))
    stored = request.stored()
    assert stored == {"Video": {"S3Object": {"Bucket": "vids", "Name": "clip.mp4"}},
                      "JobTag": "t", "NotificationChannel": {"SNSTopicArn": "arn:aws:sns:r:1:x"},
                      "MinConfidence": 50.0}
    assert ContentModerationRequest.from_stored(stored) == request
    assert ContentModerationRequest.from_stored(  # a stored form without it: the default
        {"Video": stored["Video"]}).min_confidence == 50.0
    zero = ContentModerationRequest(CLIP, min_confidence=0.0)
    assert ContentModerationRequest.from_stored(zero.stored()).min_confidence == 0.0


def test_the_wire_parses_start_into_the_typed_request() -> None:
    wire = ContentModerationWire(ContentModerationJobKind(VERSION))
    video = {"S3Object": {"Bucket": "vids", "Name": "clip.mp4", "Version": "2"}}
    channel = {"SNSTopicArn": "arn:aws:sns:r:1:t", "RoleArn": "arn:aws:iam::1:role/r"}
    parsed = wire.request({"Video": video, "JobTag": "x", "NotificationChannel": channel,
                           "MinConfidence": 0})
    assert parsed == ContentModerationRequest(
        ObjectRef("vids", "clip.mp4", "2"), "x",
        NotificationChannel("arn:aws:sns:r:1:t", "arn:aws:iam::1:role/r"), min_confidence=0.0)
    assert wire.request({"Video": video}).min_confidence == 50.0
    assert wire.request({"Video": video, "MinConfidence": 72.5}).min_confidence == 72.5
    with pytest.raises(InvalidParameterException, match="Video.S3Object is required"):
        wire.request({"Video": {}})
    q = wire.query({"JobId": "j", "SortBy": "NAME", "AggregateBy": "SEGMENTS",
                    "MaxResults": 3, "NextToken": "t"})
    assert q == ResultsQuery("NAME", "t", 3, "SEGMENTS")


@pytest.mark.parametrize("bad", [-0.5, 100.5])
def test_min_confidence_out_of_range_is_refused_by_the_kind(bad: float) -> None:
    kind = ContentModerationJobKind(VERSION)
    with pytest.raises(InvalidParameterException, match="MinConfidence"):
        kind.check(ContentModerationRequest(CLIP, min_confidence=bad))
    kind.check(ContentModerationRequest(CLIP, min_confidence=100.0))
    assert kind.results(ContentModerationRequest(CLIP, min_confidence=7.0)) == (
        ContentModerationResults(7.0))
    assert ContentModerationResults(7.0).builder().needs_embeddings is False


def test_the_kind_and_its_wire_match_botocores_model() -> None:
    model = botocore.session.get_session().get_service_model("rekognition")
    start = model.operation_model("StartContentModeration").input_shape.members
    get = model.operation_model("GetContentModeration")
    kind = ContentModerationJobKind(VERSION)
    assert set(start) == {"Video", "MinConfidence", "ClientRequestToken",
                          "NotificationChannel", "JobTag"}
    assert set(kind.paging.orders) == set(get.input_shape.members["SortBy"].enum)
    assert set(kind.paging.listings) == set(get.input_shape.members["AggregateBy"].enum)
    assert (kind.paging.default, kind.paging.default_listing) == ("TIMESTAMP", "TIMESTAMPS")
    assert kind.paging.max_results == 1000
    detection = set(model.shape_for("ContentModerationDetection").members)
    assert {k for row in _moderation_rows() for k in row.item} == detection - {"ContentTypes"}


# ---- Start: checks and idempotency -----------------------------------------------------------
def test_start_with_an_omitted_min_confidence_is_the_same_request_as_50(jobs: Jobs) -> None:
    first = jobs.start(ClientRequestToken="tok")
    assert jobs.start(ClientRequestToken="tok", MinConfidence=50) == first
    stored = jobs.store.get(first)
    assert stored is not None and stored.api == CONTENT_MODERATION
    assert stored.request["MinConfidence"] == 50.0
    with pytest.raises(IdempotentParameterMismatchException):
        jobs.start(ClientRequestToken="tok", MinConfidence=60)
    other = jobs.start(ClientRequestToken="tok2", MinConfidence=0)
    assert other != first and jobs.store.get(other).request["MinConfidence"] == 0.0  # type: ignore[union-attr]


def test_start_refuses_a_missing_video_and_a_bad_min_confidence(jobs: Jobs) -> None:
    with pytest.raises(InvalidS3ObjectException):
        jobs.call["StartContentModeration"](
            {"Video": {"S3Object": {"Bucket": "vids", "Name": "missing.mp4"}}})
    with pytest.raises(InvalidParameterException, match="MinConfidence"):
        jobs.start(MinConfidence=101)
    assert jobs.store.in_state("QUEUED") == []


# ---- Get: views, paging, tokens -------------------------------------------------------------
def test_get_before_the_end_has_no_labels_but_echoes_the_view(jobs: Jobs) -> None:
    job_id = jobs.start(JobTag="tag")
    out = jobs.get(job_id)
    assert out["JobStatus"] == "IN_PROGRESS" and "ModerationLabels" not in out
    assert out["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"}
    assert (out["ModerationModelVersion"], out["JobTag"], out["JobId"]) == (
        VERSION, "tag", job_id)
    assert out["Video"] == {"S3Object": {"Bucket": "vids", "Name": "clip.mp4"}}


def test_each_view_lists_its_own_rows_in_its_order(jobs: Jobs) -> None:
    job_id = jobs.start()
    jobs.succeed(job_id, _moderation_rows())
    by_time = jobs.get(job_id)
    assert by_time["JobStatus"] == "SUCCEEDED" and "NextToken" not in by_time
    assert [(i["Timestamp"], i["ModerationLabel"]["Name"]) for i in by_time[
        "ModerationLabels"]] == [(0, "Explicit"), (0, "Explicit Nudity"), (200, "Explicit"),
                                 (400, "Alcohol")]
    assert all(set(i) == {"Timestamp", "ModerationLabel"} for i in by_time["ModerationLabels"])
    by_name = jobs.get(job_id, SortBy="NAME")
    assert [(i["ModerationLabel"]["Name"], i["Timestamp"]) for i in by_name[
        "ModerationLabels"]] == [("Alcohol", 400), ("Explicit", 0), ("Explicit", 200),
                                 ("Explicit Nudity", 0)]
    assert by_name["GetRequestMetadata"] == {"SortBy": "NAME", "AggregateBy": "TIMESTAMPS"}
    segments = jobs.get(job_id, AggregateBy="SEGMENTS")
    assert [(i["StartTimestampMillis"], i["ModerationLabel"]["Name"]) for i in segments[
        "ModerationLabels"]] == [(0, "Explicit"), (400, "Explicit"), (400, "Alcohol")]
    assert segments["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "SEGMENTS"}
    named = jobs.get(job_id, AggregateBy="SEGMENTS", SortBy="NAME")
    assert [(i["ModerationLabel"]["Name"], i["StartTimestampMillis"]) for i in named[
        "ModerationLabels"]] == [("Alcohol", 400), ("Explicit", 0), ("Explicit", 400)]


@pytest.mark.parametrize(("sort", "aggregate"), [(None, None), ("NAME", None),
                                                 (None, "SEGMENTS"), ("NAME", "SEGMENTS")])
def test_pages_of_one_give_the_rows_of_one_page(jobs: Jobs, sort: str | None,
                                                aggregate: str | None) -> None:
    job_id = jobs.start()
    jobs.succeed(job_id, _moderation_rows())
    view = {k: v for k, v in (("SortBy", sort), ("AggregateBy", aggregate)) if v}
    whole = jobs.get(job_id, **view)["ModerationLabels"]
    paged, token, pages = [], None, 0
    while True:
        out = jobs.get(job_id, MaxResults=1, **view, **({"NextToken": token} if token else {}))
        paged += out["ModerationLabels"]
        pages += 1
        token = out.get("NextToken")
        if not token:
            break
    assert paged == whole and pages == len(whole)


def test_a_token_names_its_view_and_another_views_is_refused(jobs: Jobs) -> None:
    job_id = jobs.start()
    jobs.succeed(job_id, _moderation_rows())
    token = jobs.get(job_id, MaxResults=1)["NextToken"]  # TIMESTAMP / TIMESTAMPS
    for other in ({"SortBy": "NAME"}, {"AggregateBy": "SEGMENTS"},
                  {"SortBy": "NAME", "AggregateBy": "SEGMENTS"}):
        with pytest.raises(InvalidPaginationTokenException):
            jobs.get(job_id, NextToken=token, **other)
    explicit = jobs.get(job_id, NextToken=token, SortBy="TIMESTAMP", AggregateBy="TIMESTAMPS")
    assert [i["ModerationLabel"]["Name"] for i in explicit["ModerationLabels"]] == [
        "Explicit Nudity", "Explicit", "Alcohol"]  # the defaults spelled out: the same view
    other_job = jobs.start(JobTag="other")
    jobs.succeed(other_job, _moderation_rows())
    with pytest.raises(InvalidPaginationTokenException):
        jobs.get(other_job, NextToken=token)
    with pytest.raises(InvalidPaginationTokenException):
        jobs.get(job_id, NextToken="not-a-token")


def test_bad_sort_by_and_aggregate_by_are_invalid_parameters(jobs: Jobs) -> None:
    job_id = jobs.start()
    with pytest.raises(InvalidParameterException, match="SortBy INDEX is not one of"):
        jobs.get(job_id, SortBy="INDEX")
    with pytest.raises(InvalidParameterException, match="AggregateBy SEGMENT is not one of"):
        jobs.get(job_id, AggregateBy="SEGMENT")


def test_aggregate_by_on_a_face_job_is_refused(jobs: Jobs) -> None:
    face = jobs.service.start(FaceDetectionRequest(CLIP), None)
    with pytest.raises(InvalidParameterException, match="AggregateBy is not a parameter"):
        jobs.service.get(face, "FaceDetection", ResultsQuery(aggregate="TIMESTAMPS"))
    page = jobs.service.get(face, "FaceDetection", ResultsQuery())
    assert page.aggregate is None and page.sort == "TIMESTAMP"


def test_max_results_defaults_to_and_is_capped_at_1000(jobs: Jobs) -> None:
    job_id = jobs.start()
    rows = [ResultRow(i, i, None, {"Timestamp": i, "ModerationLabel": _label("Explicit")},
                      TIMESTAMPS, "Explicit") for i in range(1001)]
    jobs.succeed(job_id, rows)
    for asked in ({}, {"MaxResults": 5000}):
        out = jobs.get(job_id, **asked)
        assert len(out["ModerationLabels"]) == 1000 and "NextToken" in out
        rest = jobs.get(job_id, NextToken=out["NextToken"], **asked)
        assert [i["Timestamp"] for i in rest["ModerationLabels"]] == [1000]


# ---- the log and the schema ---------------------------------------------------------------
def test_job_results_payload_round_trips_with_and_without_listed(jobs: Jobs) -> None:
    face = AddJobResults("j", 1, (ResultRow(0, 1200, 0, {"Timestamp": 1200}),))
    assert face.payload() == {"job_id": "j", "attempt": 1,
                              "rows": [[0, 1200, 0, {"Timestamp": 1200}]]}  # no listed
    assert encode(face, "id", "n") == (
        b'{"kind":"job.results","id":"id","node":"n","payload":{"job_id":"j","attempt":1,'
        b'"rows":[[0,1200,0,{"Timestamp":1200}]]}}')
    assert AddJobResults.from_known(face.payload()) == face
    moderation = AddJobResults("j", 2, tuple(_moderation_rows()))
    payload = json.loads(json.dumps(moderation.payload()))  # through JSON, as the log holds it
    assert payload["listed"][0] == [TIMESTAMPS, "Explicit"]
    assert payload["listed"][-1] == [SEGMENTS, "Alcohol"]
    assert AddJobResults.from_known(payload) == moderation
    assert set(payload) <= AddJobResults.payload_keys()
    payload["listed"] = payload["listed"][:-1]
    with pytest.raises(ValueError, match="listed and rows differ in length"):
        AddJobResults.from_known(payload)


def test_migration_9_keeps_the_rows_of_a_v8_database(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.db"
    old = Database(path, MAIN[:8])
    old.open()
    assert old.version == 8
    old.close()
    request = json.dumps(FaceDetectionRequest(CLIP).stored())
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO jobs (job_id, api, request, state, created) VALUES "
                     "('f', 'FaceDetection', ?, 'SUCCEEDED', 1.0)", (request,))
        conn.executemany("INSERT INTO job_results (job_id, seq, timestamp_ms, person, item) "
                         "VALUES ('f', ?, ?, NULL, ?)",
                         [(i, 100 * i, json.dumps({"Timestamp": 100 * i})) for i in range(3)])
    db = Database(path)
    db.open()
    assert db.version == MAIN[-1].version >= 9
    kept = db.query("SELECT seq, listing, name FROM job_results ORDER BY seq")
    assert [tuple(r) for r in kept] == [(0, "", ""), (1, "", ""), (2, "", "")]
    store = JobStore(db)
    assert store.results("f", ResultOrder.SEQUENCE, 0, 10) == [
        {"Timestamp": 0}, {"Timestamp": 100}, {"Timestamp": 200}]
    assert store.results("f", ResultOrder.SEQUENCE, 0, 10, TIMESTAMPS) == []
    indexes = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"job_results_time", "job_results_name"} <= indexes
    db.close()


# ---- a whole launch, in process: the real video runner and moderation stage, a fake pack -----
class _Brightness:
    """A fake pack: Explicit at the image's mean brightness (0-255 read as 0-100), and
    Gambling 10 below it when the image is bright."""

    model_version = "7.0-fake"
    served = ("Explicit", "Gambling")

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        out = []
        for image in images:
            level = float(image.mean()) * 100 / 255
            labels = [ModerationLabel("Explicit", "", 1, level)]
            if level > 50:
                labels.append(ModerationLabel("Gambling", "", 1, level - 10))
            out.append(ModerationAnalysis(tuple(labels)))
        return out


class _NoLive:
    def live_attached(self) -> bool:
        return False

    def live_waiting(self) -> bool:
        return False


def test_a_launch_writes_both_listings_and_flushes_the_open_segments_at_its_end(
        tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    # 10 frames a second; sampled at 5 a second: 0, 200, 400, 600, 800 ms.
    levels = [200, 0, 230, 0, 40, 0, 210, 0, 220, 0]
    encode_video([np.full((48, 64, 3), level, np.uint8) for level in levels], Fraction(10),
           tmp_path / "objects" / "vids" / "levels.mp4", "mp4")
    config = load_config(None, {"objects.local_root": str(tmp_path / "objects"),
                                "kafka.bootstrap": "k:9092", "jobs.sample_fps": 5.0})
    stage = ModerationStage(_Brightness(), 8, _NoLive())
    runners = JobRunners()
    runners.add(JobInput.VIDEO, MODERATION,
                video_runner(stage, config, ObjectStore(config.objects), tmp_path))
    registry = CollectorRegistry()
    metrics = JobMetrics.create(registry)
    notices = Notices(_Publisher(), "k:9092", {}, NoticeSensor(metrics),
                      OutputAllowlist.for_config(config))
    mailbox, appliers = JobMailbox(), Appliers()
    JobRules(jobs.store, mailbox.changed).register(appliers)
    ledger = LocalLedger(appliers)
    kinds = JobKinds([jobs.kind])
    scheduler = JobScheduler(
        SchedulerParts(jobs.store, JobWrites(ledger), runners, mailbox, notices, kinds,
                       metrics), SchedulerSettings(workers=1, stop_timeout_s=0.3))
    service = JobService(jobs.store, ObjectStore(config.objects), kinds, notices,
                         config.jobs, ledger, metrics)
    stage.start()
    try:
        job_id = service.start(ContentModerationRequest(ObjectRef("vids", "levels.mp4")), None)
        deadline = time.monotonic() + 30
        stored = jobs.store.get(job_id)
        while stored is not None and stored.state != SUCCEEDED and time.monotonic() < deadline:
            scheduler.reconcile_once()
            time.sleep(0.02)
            stored = jobs.store.get(job_id)
        assert stored is not None and stored.state == SUCCEEDED, stored.status_message
    finally:
        scheduler.stop(1.0)
        stage.stop(1.0)
    by_time = service.get(job_id, CONTENT_MODERATION, ResultsQuery())
    assert [(i["Timestamp"], i["ModerationLabel"]["Name"]) for i in by_time.items] == [
        (0, "Explicit"), (0, "Gambling"), (200, "Explicit"), (200, "Gambling"),
        (600, "Explicit"), (600, "Gambling"), (800, "Explicit"), (800, "Gambling")]
    segments = service.get(job_id, CONTENT_MODERATION, ResultsQuery(aggregate="SEGMENTS"))
    got = [(i["ModerationLabel"]["Name"], i["StartTimestampMillis"], i["EndTimestampMillis"],
            i["DurationMillis"]) for i in segments.items]
    assert got == [("Explicit", 0, 200, 200), ("Gambling", 0, 200, 200),
                   ("Explicit", 600, 800, 200), ("Gambling", 600, 800, 200)]  # last: at the end
    top = segments.items[0]["ModerationLabel"]["Confidence"]  # the run's highest (230)
    assert abs(top - 230 * 100 / 255) < 2
    jobs.db.close()
