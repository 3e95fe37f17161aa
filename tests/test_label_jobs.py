"""Label video jobs without models: the request, the wire, paging, and whole launches in process.

StartLabelDetection / GetLabelDetection over the real jobs service, store, rules and handlers
(a local ledger); the launches run the real video runner and label stage over a fake label
pack (:class:`ByIndex`, fixed labels per frame index). The builder's own rules are
tests/test_label_job_results.py, the stage's tests/test_label_job_stage.py; a daemon with the
real pack is tests/test_label_jobs_e2e.py.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import botocore.session
import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import CollectorRegistry
from videos import encode as encode_video

from streamproc.api.context import RequestContext
from streamproc.api.job_handlers import JobHandler, job_handlers
from streamproc.api.job_kinds.labels import LabelDetectionWire
from streamproc.config import load_config
from streamproc.daemon.jobs import video_runner
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.jobrunners import JobRunners
from streamproc.dataplane.stored.label_stage import LABELS, LabelStage
from streamproc.errors import (
    IdempotentParameterMismatchException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceNotFoundException,
    VideoTooLargeException,
)
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.kinds.labels import (
    LABEL_DETECTION,
    LabelDetectionJobKind,
    LabelDetectionRequest,
    LabelDetectionResults,
)
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.parts import SchedulerParts, SchedulerSettings
from streamproc.jobs.request import NotificationChannel
from streamproc.jobs.rules import JobRules, JobWrites
from streamproc.jobs.scheduler import JobScheduler
from streamproc.jobs.service import JobService, ResultsQuery
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.filters import LabelFilters
from streamproc.labels.types import Box, Instance, Label
from streamproc.ledger import Appliers, LocalLedger
from streamproc.metrics import JobMetrics, NoticeSensor
from streamproc.storage.db import Database
from streamproc.storage.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore
from streamproc.storage.objects import ObjectRef, ObjectStore

CLIP = ObjectRef("vids", "clip.mp4")
_CTX: RequestContext = None  # type: ignore[assignment]  # the job handlers never read it
BOX = Box(0.25, 0.1, 0.2, 0.8)
# The fake pack's labels per frame index (10 frames a second, sampled at 5: 0, 2, 4, 6, 8).
TABLE: dict[int, tuple[Label, ...]] = {
    0: (Label("Person", 90.0, (Instance(BOX, 90.0), Instance(BOX, 30.0))),
        Label("Car", 40.0)),
    2: (Label("Person", 95.0, (Instance(BOX, 95.0),)),
        Label("Car", 60.0, parents=("Vehicle",), categories=("Vehicles and Automotive",))),
    4: (Label("Car", 80.0, parents=("Vehicle",), categories=("Vehicles and Automotive",)),),
    6: (Label("Tree", 99.0, categories=("Plants and Flowers",)),
        Label("Person", 55.0, (Instance(BOX, 55.0),))),
    8: (Label("Person", 70.0, (Instance(BOX, 70.0),)),),
}
LEVEL = 20  # frame i is a flat grey image at LEVEL * (i + 1)


class ByIndex:
    """A fake label pack: the frame's index read from its grey level, then :data:`TABLE`."""

    model_version = "fake-labels-1"

    def __init__(self) -> None:
        self.gate = threading.Event()  # cleared: detections wait (a launch held mid-way)
        self.gate.set()
        self.seen: list[int] = []

    def detect(self, image: npt.NDArray[np.uint8], min_confidence: float) -> tuple[Label, ...]:
        self.gate.wait(30)
        index = round(float(image.mean()) / LEVEL) - 1
        self.seen.append(index)
        return tuple(label for label in TABLE.get(index, ())
                     if label.confidence >= min_confidence)


class _Publisher:
    def submit(self, *args: Any) -> None:
        raise AssertionError("no notice is sent in these tests")


class Jobs:
    """The jobs' control plane with label detection registered (a fake pack, or none)."""

    def __init__(self, root: Path, detector: ByIndex | None = None, **config: Any) -> None:
        (root / "objects" / "vids").mkdir(parents=True, exist_ok=True)
        (root / "objects" / "vids" / "clip.mp4").write_bytes(b"not decoded here")
        self.root = root
        self.db = Database(root / "streamproc.db")
        self.db.open()
        self.config = load_config(None, {"objects.local_root": str(root / "objects"),
                                         "kafka.bootstrap": "k:9092", **config})
        self.metrics = JobMetrics.create(CollectorRegistry())
        self.notices = Notices(_Publisher(), "k:9092", {}, NoticeSensor(self.metrics),
                               OutputAllowlist.for_config(self.config))
        self.store = JobStore(self.db)
        self.mailbox, appliers = JobMailbox(), Appliers()
        JobRules(self.store, self.mailbox.changed).register(appliers)
        self.ledger = LocalLedger(appliers)
        self.detector = detector
        self.kind = LabelDetectionJobKind(detector)
        self.kinds = JobKinds([self.kind])
        self.objects = ObjectStore(self.config.objects)
        self.service = JobService(self.store, self.objects, self.kinds, self.notices,
                                  self.config.jobs, self.ledger, self.metrics)
        table: dict[str, JobHandler] = job_handlers([LabelDetectionWire(self.kind)])
        self.call = {op: functools.partial(fn, self.service, ctx=_CTX)
                     for op, fn in table.items()}

    def start(self, name: str = "clip.mp4", **params: Any) -> str:
        p = {"Video": {"S3Object": {"Bucket": "vids", "Name": name}}, **params}
        return str(self.call["StartLabelDetection"](p)["JobId"])

    def get(self, job_id: str, **params: Any) -> dict[str, Any]:
        return self.call["GetLabelDetection"]({"JobId": job_id, **params})

    def scheduler(self, stage: LabelStage) -> JobScheduler[Any]:
        runners = JobRunners()
        runners.add(JobInput.VIDEO, LABELS,
                    video_runner(stage, self.config, self.objects, self.root))
        return JobScheduler(
            SchedulerParts(self.store, JobWrites(self.ledger), runners, self.mailbox,
                           self.notices, self.kinds, self.metrics),
            SchedulerSettings(workers=1, stop_timeout_s=0.5))


class _NoLive:
    def live_attached(self) -> bool:
        return False

    def live_waiting(self) -> bool:
        return False


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    made = Jobs(tmp_path, ByIndex())
    yield made
    made.db.close()


def _clip(jobs: Jobs, name: str = "levels.mp4") -> str:
    frames = [np.full((48, 64, 3), LEVEL * (i + 1), np.uint8) for i in range(10)]
    encode_video(frames, Fraction(10), jobs.root / "objects" / "vids" / name, "mp4")
    return name


def _run_until(jobs: Jobs, scheduler: JobScheduler[Any], job_id: str,
               done: tuple[str, ...] = (SUCCEEDED, FAILED), timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scheduler.reconcile_once()
        stored = jobs.store.get(job_id)
        assert stored is not None
        if stored.state in done:
            return stored.state
        time.sleep(0.02)
    pytest.fail(f"job {job_id} did not reach {done}")


def _names(items: list[dict[str, Any]]) -> list[tuple[int, str, float]]:
    return [(i["Timestamp"], i["Label"]["Name"], i["Label"]["Confidence"]) for i in items]


# ---- the request and the wire ------------------------------------------------------------
def test_the_stored_form_fills_in_every_default_and_reads_back() -> None:
    filters = LabelFilters(include=frozenset({"Person", "Car"}),
                           exclude_categories=frozenset({"Plants and Flowers"}))
    request = LabelDetectionRequest(CLIP, "t", NotificationChannel("arn:aws:sns:r:1:x"),
                                    min_confidence=20.0, filters=filters)
    stored = request.stored()
    assert stored == {
        "Video": {"S3Object": {"Bucket": "vids", "Name": "clip.mp4"}}, "JobTag": "t",
        "NotificationChannel": {"SNSTopicArn": "arn:aws:sns:r:1:x"}, "MinConfidence": 20.0,
        "Features": ["GENERAL_LABELS"],
        "Settings": {"GeneralLabels": {"LabelInclusionFilters": ["Car", "Person"],
                                       "LabelCategoryExclusionFilters": ["Plants and Flowers"]}}}
    assert LabelDetectionRequest.from_stored(stored) == request
    bare = LabelDetectionRequest.from_stored({"Video": stored["Video"]})
    assert (bare.min_confidence, bare.features, bare.filters) == (
        50.0, ("GENERAL_LABELS",), LabelFilters())


def test_the_wire_parses_start_into_the_typed_request() -> None:
    wire = LabelDetectionWire(LabelDetectionJobKind(ByIndex()))
    video = {"S3Object": {"Bucket": "vids", "Name": "clip.mp4", "Version": "2"}}
    parsed = wire.request({
        "Video": video, "JobTag": "x", "MinConfidence": 0, "Features": ["GENERAL_LABELS"],
        "NotificationChannel": {"SNSTopicArn": "arn:aws:sns:r:1:t", "RoleArn": "arn:r"},
        "Settings": {"GeneralLabels": {"LabelExclusionFilters": ["Tree", "Tree"],
                                       "LabelCategoryInclusionFilters": ["Vehicles"]}}})
    assert parsed == LabelDetectionRequest(
        ObjectRef("vids", "clip.mp4", "2"), "x", NotificationChannel("arn:aws:sns:r:1:t", "arn:r"),
        min_confidence=0.0, filters=LabelFilters(exclude=frozenset({"Tree"}),
                                                 include_categories=frozenset({"Vehicles"})),
        model_version=ByIndex().model_version)  # the pack the Start was accepted with
    default = wire.request({"Video": video})
    assert default == wire.request({"Video": video, "Features": [], "Settings": {},
                                    "MinConfidence": 50})
    assert default.features == ("GENERAL_LABELS",)
    q = wire.query({"JobId": "j", "SortBy": "NAME", "AggregateBy": "SEGMENTS",
                    "MaxResults": 3, "NextToken": "t"})
    assert q == ResultsQuery("NAME", "t", 3, "SEGMENTS")


def test_the_kind_and_its_wire_match_botocores_model() -> None:
    model = botocore.session.get_session().get_service_model("rekognition")
    start = model.operation_model("StartLabelDetection").input_shape.members
    get = model.operation_model("GetLabelDetection")
    kind = LabelDetectionJobKind(ByIndex())
    assert set(start) == {"Video", "ClientRequestToken", "MinConfidence", "NotificationChannel",
                          "JobTag", "Features", "Settings"}
    assert set(start["Features"].member.enum) == {"GENERAL_LABELS"}
    assert set(kind.paging.orders) == set(get.input_shape.members["SortBy"].enum)
    assert set(kind.paging.listings) == set(get.input_shape.members["AggregateBy"].enum)
    assert (kind.paging.default, kind.paging.default_listing) == ("TIMESTAMP", "TIMESTAMPS")
    assert kind.paging.max_results == 1000
    general = model.shape_for("GeneralLabelsSettings").members
    stored = LabelDetectionRequest(CLIP, filters=LabelFilters(
        frozenset("a"), frozenset("b"), frozenset("c"), frozenset("d"))).stored()
    assert set(stored["Settings"]["GeneralLabels"]) == set(general)
    out = set(get.output_shape.members)
    assert {"JobStatus", "StatusMessage", "VideoMetadata", "NextToken", "Labels",
            "LabelModelVersion", "JobId", "Video", "JobTag", "GetRequestMetadata"} == out


@pytest.mark.parametrize("bad", [-0.5, 100.5])
def test_min_confidence_out_of_range_is_refused_by_the_kind(bad: float) -> None:
    kind = LabelDetectionJobKind(ByIndex())
    with pytest.raises(InvalidParameterException, match="MinConfidence"):
        kind.check(LabelDetectionRequest(CLIP, min_confidence=bad))
    kind.check(LabelDetectionRequest(CLIP, min_confidence=100.0))
    kind.check(LabelDetectionRequest(CLIP, min_confidence=0.0))
    assert kind.results(LabelDetectionRequest(CLIP, min_confidence=7.0)) == (
        LabelDetectionResults(7.0, LabelFilters()))


def test_a_feature_other_than_general_labels_is_refused() -> None:
    kind = LabelDetectionJobKind(ByIndex())
    with pytest.raises(InvalidParameterException, match="Features IMAGE_PROPERTIES"):
        kind.check(LabelDetectionRequest(CLIP, features=("IMAGE_PROPERTIES",)))


def test_without_a_pack_start_and_launch_say_the_pack_is_missing(tmp_path: Path) -> None:
    kind = LabelDetectionJobKind(None)
    assert kind.model_version == ""
    with pytest.raises(LabelPackMissing):
        kind.check(LabelDetectionRequest(CLIP))
    with pytest.raises(LabelPackMissing):
        kind.results(LabelDetectionRequest(CLIP))  # a job queued before: FAILS at launch
    jobs = Jobs(tmp_path, None)
    with pytest.raises(LabelPackMissing) as caught:
        jobs.start("missing.mp4")  # answered before the object is looked at
    assert caught.value.code == "InvalidParameterException" and caught.value.status_code == 400
    assert jobs.store.in_state(QUEUED) == []
    jobs.db.close()


# ---- Start: checks and idempotency -------------------------------------------------------
def test_a_client_request_token_is_idempotent_over_every_parameter(jobs: Jobs) -> None:
    settings = {"GeneralLabels": {"LabelInclusionFilters": ["Person", "Car"]}}
    first = jobs.start(ClientRequestToken="tok", Settings=settings)
    same = {"GeneralLabels": {"LabelInclusionFilters": ["Car", "Person"]}}  # order: no matter
    assert jobs.start(ClientRequestToken="tok", Settings=same, MinConfidence=50,
                      Features=["GENERAL_LABELS"]) == first
    stored = jobs.store.get(first)
    assert stored is not None and stored.api == LABEL_DETECTION
    for other in ({"MinConfidence": 60, "Settings": settings},
                  {"Settings": {"GeneralLabels": {"LabelInclusionFilters": ["Person"]}}},
                  {"Settings": settings, "JobTag": "t"}):
        with pytest.raises(IdempotentParameterMismatchException):
            jobs.start(ClientRequestToken="tok", **other)
    assert jobs.start(ClientRequestToken="tok2") != first


def test_start_refuses_what_cannot_run(jobs: Jobs, tmp_path: Path) -> None:
    with pytest.raises(InvalidS3ObjectException):
        jobs.start("missing.mp4")
    with pytest.raises(InvalidParameterException, match="MinConfidence"):
        jobs.start(MinConfidence=101)
    small = Jobs(tmp_path / "small", ByIndex(), **{"jobs.max_video_bytes": 4})
    with pytest.raises(VideoTooLargeException, match="jobs.max_video_bytes"):
        small.start()
    small.db.close()
    assert jobs.store.in_state(QUEUED) == []


# ---- whole launches: the real runner and stage, the fake pack -----------------------------
@pytest.fixture
def done(jobs: Jobs) -> Iterator[tuple[Jobs, str]]:
    """A label job over a 1 s clip with MinConfidence 50 and Tree excluded, SUCCEEDED."""
    name = _clip(jobs)
    stage = LabelStage(jobs.detector, 4, _NoLive())
    scheduler = jobs.scheduler(stage)
    stage.start()
    try:
        job_id = jobs.start(name, JobTag="levels", Settings={
            "GeneralLabels": {"LabelExclusionFilters": ["Tree"]}})
        assert _run_until(jobs, scheduler, job_id) == SUCCEEDED, jobs.get(job_id)
    finally:
        scheduler.stop(1.0)
        stage.stop(1.0)
    yield jobs, job_id


def test_get_by_timestamp_lists_each_sampled_frames_kept_labels(done: tuple[Jobs, str]) -> None:
    jobs, job_id = done
    out = jobs.get(job_id)
    assert out["JobStatus"] == "SUCCEEDED" and "NextToken" not in out
    assert (out["JobTag"], out["JobId"], out["LabelModelVersion"]) == (
        "levels", job_id, "fake-labels-1")
    assert out["Video"] == {"S3Object": {"Bucket": "vids", "Name": "levels.mp4"}}
    assert out["VideoMetadata"]["FrameWidth"] == 64
    assert out["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"}
    assert _names(out["Labels"]) == [(0, "Person", 90.0), (200, "Person", 95.0),
                                     (200, "Car", 60.0), (400, "Car", 80.0),
                                     (600, "Person", 55.0), (800, "Person", 70.0)]
    first = out["Labels"][0]["Label"]
    assert first["Instances"] == [{"BoundingBox": {"Width": 0.2, "Height": 0.8, "Left": 0.25,
                                                   "Top": 0.1}, "Confidence": 90.0}]
    car = out["Labels"][2]["Label"]
    assert (car["Parents"], car["Categories"], car["Aliases"]) == (
        [{"Name": "Vehicle"}], [{"Name": "Vehicles and Automotive"}], [])


def test_sort_by_name_groups_a_label_and_puts_its_highest_confidence_first(
        done: tuple[Jobs, str]) -> None:
    jobs, job_id = done
    out = jobs.get(job_id, SortBy="NAME")
    assert out["GetRequestMetadata"] == {"SortBy": "NAME", "AggregateBy": "TIMESTAMPS"}
    assert _names(out["Labels"]) == [(400, "Car", 80.0), (200, "Car", 60.0),
                                     (200, "Person", 95.0), (0, "Person", 90.0),
                                     (800, "Person", 70.0), (600, "Person", 55.0)]


def test_segments_merge_consecutive_detections(done: tuple[Jobs, str]) -> None:
    jobs, job_id = done
    out = jobs.get(job_id, AggregateBy="SEGMENTS")
    assert out["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "SEGMENTS"}
    got = [(s["Label"]["Name"], s["StartTimestampMillis"], s["EndTimestampMillis"],
            s["DurationMillis"], s["Label"]["Confidence"]) for s in out["Labels"]]
    assert got == [("Person", 0, 200, 200, 95.0), ("Car", 200, 400, 200, 80.0),
                   ("Person", 600, 800, 200, 70.0)]
    assert all(s["Timestamp"] == s["StartTimestampMillis"] and "Instances" not in s["Label"]
               for s in out["Labels"])
    named = jobs.get(job_id, AggregateBy="SEGMENTS", SortBy="NAME")["Labels"]
    assert [(s["Label"]["Name"], s["Label"]["Confidence"]) for s in named] == [
        ("Car", 80.0), ("Person", 95.0), ("Person", 70.0)]


@pytest.mark.parametrize("view", [{}, {"SortBy": "NAME"}, {"AggregateBy": "SEGMENTS"},
                                  {"SortBy": "NAME", "AggregateBy": "SEGMENTS"}])
def test_pages_of_one_give_the_rows_of_one_page(done: tuple[Jobs, str],
                                                view: dict[str, str]) -> None:
    jobs, job_id = done
    whole = jobs.get(job_id, **view)["Labels"]
    paged, token, pages = [], None, 0
    while True:
        out = jobs.get(job_id, MaxResults=1, **view, **({"NextToken": token} if token else {}))
        paged += out["Labels"]
        pages += 1
        token = out.get("NextToken")
        if not token:
            break
    assert paged == whole and pages == len(whole) >= 3


def test_bad_views_tokens_and_jobs_get_rekognitions_errors(done: tuple[Jobs, str]) -> None:
    jobs, job_id = done
    token = jobs.get(job_id, MaxResults=1)["NextToken"]
    with pytest.raises(InvalidParameterException, match="SortBy INDEX is not one of"):
        jobs.get(job_id, SortBy="INDEX")
    with pytest.raises(InvalidParameterException, match="AggregateBy FRAMES is not one of"):
        jobs.get(job_id, AggregateBy="FRAMES")
    for other in ({"SortBy": "NAME"}, {"AggregateBy": "SEGMENTS"}, {"NextToken": "bogus"}):
        with pytest.raises(InvalidPaginationTokenException):
            jobs.get(job_id, **{"NextToken": token, **other})
    with pytest.raises(ResourceNotFoundException):
        jobs.get("nosuchjob")


def test_get_answers_the_model_version_the_job_was_started_with(done: tuple[Jobs, str]
                                                               ) -> None:
    jobs, job_id = done
    stored = jobs.store.get(job_id)
    assert stored is not None and stored.request["LabelModelVersion"] == "fake-labels-1"
    assert isinstance(jobs.detector, ByIndex)
    jobs.detector.model_version = "fake-labels-2"  # this node's pack replaced since
    assert jobs.get(job_id)["LabelModelVersion"] == "fake-labels-1"
    # A row from before the version was kept answers the node's own, as it always did.
    old = LabelDetectionRequest.from_stored({"Video": {"S3Object": {"Bucket": "vids",
                                                                    "Name": "clip.mp4"}}})
    assert old.model_version == "" and "LabelModelVersion" not in old.stored()


def test_a_launch_on_another_pack_than_the_starts_fails_the_job(jobs: Jobs) -> None:
    name = _clip(jobs)
    detector = jobs.detector
    assert isinstance(detector, ByIndex)
    stage = LabelStage(detector, 4, _NoLive())
    scheduler = jobs.scheduler(stage)
    job_id = jobs.start(name)  # accepted with fake-labels-1, queued
    detector.model_version = "fake-labels-2"  # the pack changed before it launched
    stage.start()
    try:
        assert _run_until(jobs, scheduler, job_id) == FAILED
    finally:
        scheduler.stop(1.0)
        stage.stop(1.0)
    out = jobs.get(job_id)
    assert "fake-labels-1" in out["StatusMessage"] and "same label pack" in out["StatusMessage"]
    assert detector.seen == []  # no frame ran under the other pack


def test_a_launch_without_its_video_fails_with_the_reason(jobs: Jobs) -> None:
    (jobs.root / "objects" / "vids" / "gone.mp4").write_bytes(b"\x00not a video at all")
    stage = LabelStage(ByIndex(), 4, _NoLive())
    scheduler = jobs.scheduler(stage)
    stage.start()
    try:
        job_id = jobs.start("gone.mp4")
        assert _run_until(jobs, scheduler, job_id) == FAILED
    finally:
        scheduler.stop(1.0)
        stage.stop(1.0)
    out = jobs.get(job_id)
    assert out["JobStatus"] == "FAILED" and "Labels" not in out and out["StatusMessage"]


def test_a_restart_mid_job_resumes_it_and_loses_or_doubles_nothing(jobs: Jobs) -> None:
    name = _clip(jobs)
    detector = jobs.detector
    assert isinstance(detector, ByIndex)
    detector.gate.clear()  # the first launch stalls in its first detection
    first_stage = LabelStage(detector, 1, _NoLive())
    first = jobs.scheduler(first_stage)
    first_stage.start()
    job_id = jobs.start(name)
    _run_until(jobs, first, job_id, done=(RUNNING,))
    assert poll_until(lambda: detector.seen == [] and first_stage.running)
    first.stop(1.0)  # the daemon stops mid-job: its launch is halted, the job stays RUNNING
    first_stage.stop(0.2)
    detector.gate.set()
    assert first_stage.join(5.0)
    stored = jobs.store.get(job_id)
    assert stored is not None and stored.state == RUNNING and stored.attempt == 1

    stage = LabelStage(detector, 4, _NoLive())  # the restarted daemon
    second = jobs.scheduler(stage)
    stage.start()
    try:
        second.load()
        assert _run_until(jobs, second, job_id) == SUCCEEDED
    finally:
        second.stop(1.0)
        stage.stop(1.0)
    stored = jobs.store.get(job_id)
    assert stored is not None and stored.attempt == 2
    labels = jobs.get(job_id)["Labels"]
    assert [(t, n) for t, n, _ in _names(labels)] == [  # each sampled frame once
        (0, "Person"), (200, "Person"), (200, "Car"), (400, "Car"), (600, "Tree"),
        (600, "Person"), (800, "Person")]
    segments = jobs.get(job_id, AggregateBy="SEGMENTS")["Labels"]
    assert [(s["Label"]["Name"], s["StartTimestampMillis"]) for s in segments] == [
        ("Person", 0), ("Car", 200), ("Tree", 600), ("Person", 600)]


def poll_until(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False
