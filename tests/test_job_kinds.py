"""Job kinds as an extension point, without models: kinds that are not face jobs plug in.

The proof the issue asks for, twice. A fake kind reading a *manifest of images* (an input
nobody runs today), with a fake runner for that input, registered the way the daemon
registers its kinds: it is started, checked, launched on its own runner, ended, paged and
answered on the wire by the same scheduler, service, rules and handlers as the face jobs.
And a fake *video* kind whose frames go to an analysis stage of its own (no model: each
frame's mean brightness), through the real video runner, decoder, JobFrames and JobRun over
a real encoded video. None of the scheduler, service, rules, runner or analyzer is edited
for either.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from videos import encode

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.job_handlers import job_handlers
from streamproc.api.job_kinds.base import WIRE_STATUS, results_query, video_response
from streamproc.api.job_kinds.faces import FaceDetectionWire, FaceSearchWire
from streamproc.config import load_config
from streamproc.daemon.jobs import video_runner
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.jobrun import JobInput, JobPlan
from streamproc.dataplane.stored.jobrunners import JobRunners
from streamproc.dataplane.stored.stages import FACES, Result, ResultBuilder
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.jobs.kind import Job, JobKinds, Paging, UnknownJobKind
from streamproc.jobs.kinds.faces import (
    FaceDetectionJobKind,
    FaceDetectionRequest,
    FaceSearchRequest,
)
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.parts import SchedulerParts, SchedulerSettings
from streamproc.jobs.request import JobRequest, NotificationChannel
from streamproc.jobs.rules import JobRules, JobWrites
from streamproc.jobs.scheduler import JobScheduler
from streamproc.jobs.service import JobService, Page, ResultsQuery
from streamproc.jobs.slots import IllegalMove, JobEnd, Phase, Slots, running, unwritten
from streamproc.ledger import Appliers, LocalLedger
from streamproc.lifecycle import Service
from streamproc.metrics import JobMetrics, NoticeSensor
from streamproc.storage.db import Database
from streamproc.storage.jobs import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobStore,
    ResultOrder,
    ResultRow,
    StoredJob,
)
from streamproc.storage.objects import ObjectRef, ObjectStore

MANIFEST = ObjectRef("vids", "labels.manifest")


# ---- the kind that plugs in -------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LabelsRequest(JobRequest):
    """A label job over a manifest of images; ``min_confidence`` is its own field."""

    min_confidence: float = 50.0

    def _own_stored(self) -> dict[str, Any]:
        return {"MinConfidence": self.min_confidence}

    @classmethod
    def _own_from_stored(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {"min_confidence": data["MinConfidence"]}


@dataclass(frozen=True)
class LabelResults:
    min_confidence: float

    def builder(self) -> ResultBuilder[Any]:
        raise NotImplementedError  # the fake runner builds nothing per frame


class LabelsKind:
    api = "FakeLabels"
    operation = "StartFakeLabels"
    input = JobInput.IMAGES
    stage = "labels"
    request_type = LabelsRequest
    paging = Paging({"NAME": ResultOrder.PERSON, "TIMESTAMP": ResultOrder.SEQUENCE}, 2)

    def check(self, request: LabelsRequest) -> None:
        if request.min_confidence > 100:
            raise InvalidParameterException("MinConfidence is at most 100")

    def results(self, request: LabelsRequest) -> LabelResults:
        if request.job_tag == "refused-at-launch":
            raise ResourceNotFoundException("The label model is gone")
        return LabelResults(request.min_confidence)


class LabelsWire:
    api = "FakeLabels"
    start_operation = "StartFakeLabels"
    get_operation = "GetFakeLabels"

    def request(self, p: Params) -> LabelsRequest:
        return LabelsRequest(ObjectRef(**p["Manifest"]), p.get("JobTag"),
                             min_confidence=p.get("MinConfidence", 50.0))

    def query(self, p: Params) -> ResultsQuery:
        return results_query(p)

    def response(self, page: Page) -> Response:
        return {**video_response(page, "Labels"), "LabelModelVersion": "fake-1"}


class ImagesRunner:
    """The manifest runner the issue leaves for later, faked: records launches."""

    def __init__(self) -> None:
        self.plans: list[JobPlan] = []
        self.halted_runs: list[JobPlan] = []

    def launch(self, plan: JobPlan, sink: Any, events: Any, sensor: Any) -> JobPlan:
        self.plans.append(plan)
        self.sink, self.events = sink, events
        return plan

    def begin_halt(self, run: JobPlan) -> None:
        self.halted_runs.append(run)

    def halted(self, run: JobPlan) -> bool:
        return True

    def abandon(self, run: JobPlan) -> None:
        raise AssertionError("a fake launch always halts")


# ---- a video kind with an analysis stage of its own --------------------------------------
@dataclass(frozen=True, kw_only=True)
class BrightnessRequest(JobRequest):
    """A video job with no fields of its own."""


@dataclass(frozen=True)
class Brightness:
    """The brightness stage's value for one frame."""

    mean: float

    @property
    def found(self) -> int:
        return 0  # no faces


class BrightnessResults:
    needs_embeddings = False

    def build(self, frame: StoredFrame, analysis: Brightness) -> list[Result]:
        return [Result(frame.timestamp_ms, None, {"Timestamp": frame.timestamp_ms,
                                                  "Brightness": analysis.mean})]


@dataclass(frozen=True)
class BrightnessFactory:
    def builder(self) -> ResultBuilder[Brightness]:
        return BrightnessResults()


class BrightnessKind:
    api = "FakeBrightness"
    operation = "StartFakeBrightness"
    input = JobInput.VIDEO
    stage = "brightness"
    request_type = BrightnessRequest
    paging = Paging({"TIMESTAMP": ResultOrder.SEQUENCE})

    def check(self, request: BrightnessRequest) -> None:
        pass

    def results(self, request: BrightnessRequest) -> BrightnessFactory:
        return BrightnessFactory()


class BrightnessStage(Service):
    """A stage over whole frames without a model: each frame's mean brightness."""

    def __init__(self) -> None:
        super().__init__("brightness")
        self._wake = threading.Event()
        self._feed: BackgroundFeed[Brightness] | None = None
        self.analysed = 0

    def add_background(self, feed: BackgroundFeed[Brightness], beside_live: int) -> None:
        feed.wake = self._wake
        self._feed = feed

    def _run(self) -> None:
        while not self.stopping:
            taken = [] if self._feed is None else self._feed.take(4)
            if not taken:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            for owner, frame in taken:
                self.analysed += 1
                owner.finish(frame, Brightness(float(frame.image.mean())))


class Plugged:
    """The jobs' control plane with the fake kinds registered beside face detection."""

    def __init__(self, root: Path) -> None:
        (root / "objects" / "vids").mkdir(parents=True)
        (root / "objects" / "vids" / "labels.manifest").write_text("{}\n")
        self.db = Database(root / "streamproc.db")
        self.db.open()
        config = load_config(None, {"objects.local_root": str(root / "objects"),
                                    "kafka.bootstrap": "k:9092", "jobs.sample_fps": 5.0})
        self.registry = CollectorRegistry()
        metrics = JobMetrics.create(self.registry)
        notices = Notices(_Publisher(), "k:9092", {}, NoticeSensor(metrics),
                          OutputAllowlist.for_config(config))
        self.store, self.mailbox = JobStore(self.db), JobMailbox()
        appliers = Appliers()
        JobRules(self.store, self.mailbox.changed).register(appliers)
        ledger = LocalLedger(appliers)
        self.kinds = JobKinds([FaceDetectionJobKind(), LabelsKind(), BrightnessKind()])
        self.images, self.videos = ImagesRunner(), ImagesRunner()
        self.brightness = BrightnessStage()  # its runner is the daemon's own video runner
        runners = JobRunners()
        runners.add(JobInput.VIDEO, FACES, self.videos)
        runners.add(JobInput.IMAGES, "labels", self.images)
        runners.add(JobInput.VIDEO, "brightness",
                    video_runner(self.brightness, config, ObjectStore(config.objects), root))
        runners.require(self.kinds.needs())
        self.service = JobService(self.store, ObjectStore(config.objects), self.kinds, notices,
                                  config.jobs, ledger, metrics)
        self.scheduler = JobScheduler(
            SchedulerParts(self.store, JobWrites(ledger), runners, self.mailbox, notices,
                           self.kinds, metrics),
            SchedulerSettings(workers=2, stop_timeout_s=0.3))
        table = job_handlers([FaceDetectionWire(), LabelsWire()])  # as the daemon binds them
        self.handlers = {op: functools.partial(fn, self.service, ctx=_CTX)
                         for op, fn in table.items()}

    def metric(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


class _Publisher:
    def submit(self, destination: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: Any) -> None:
        sensor.emitted()


_CTX: RequestContext = None  # type: ignore[assignment]  # the job handlers never read it


@pytest.fixture
def plugged(tmp_path: Path) -> Iterator[Plugged]:
    made = Plugged(tmp_path)
    yield made
    made.scheduler.stop(1.0)
    made.brightness.stop(1.0)
    made.db.close()


def _start(plugged: Plugged, **params: Any) -> str:
    p = {"Manifest": {"bucket": MANIFEST.bucket, "name": MANIFEST.name}, **params}
    return str(plugged.handlers["StartFakeLabels"](p)["JobId"])


def test_a_new_kind_with_its_own_input_plugs_in_without_touching_the_scheduler(
        plugged: Plugged) -> None:
    job_id = _start(plugged, JobTag="shelf", MinConfidence=70.0)
    plugged.scheduler.reconcile_once()
    (plan,) = plugged.images.plans  # its input's runner, not the video runner
    assert plugged.videos.plans == []
    assert (plan.job_id, plan.api, plan.source, plan.input) == (
        job_id, "FakeLabels", MANIFEST, JobInput.IMAGES)
    assert plan.results == LabelResults(70.0)  # what the kind decided at launch
    plugged.images.sink.add_results(job_id, 1, [
        ResultRow(0, 0, 1, {"Name": "b"}), ResultRow(1, 200, 0, {"Name": "a"}),
        ResultRow(2, 400, 1, {"Name": "c"})])
    plugged.images.events.job_ended(job_id, 1, None)
    plugged.scheduler.reconcile_once()
    stored = plugged.store.get(job_id)
    assert stored is not None and stored.state == SUCCEEDED
    assert stored.request == {"Video": {"S3Object": {"Bucket": "vids",
                                                     "Name": "labels.manifest"}},
                              "JobTag": "shelf", "MinConfidence": 70.0}
    first = plugged.handlers["GetFakeLabels"]({"JobId": job_id})  # NAME, the kind's default
    assert [i["Name"] for i in first["Labels"]] == ["a", "b"]  # page size 2: the kind's
    assert first["JobStatus"] == "SUCCEEDED" and first["LabelModelVersion"] == "fake-1"
    assert first["JobTag"] == "shelf"
    rest = plugged.handlers["GetFakeLabels"]({"JobId": job_id, "NextToken": first["NextToken"]})
    assert [i["Name"] for i in rest["Labels"]] == ["c"] and "NextToken" not in rest
    by_time = plugged.handlers["GetFakeLabels"]({"JobId": job_id, "SortBy": "TIMESTAMP"})
    assert [i["Name"] for i in by_time["Labels"]] == ["b", "a"]
    with pytest.raises(ResourceNotFoundException):  # a kind's Get answers only its jobs
        plugged.handlers["GetFaceDetection"]({"JobId": job_id})


def test_a_new_kind_checks_at_start_and_may_refuse_at_launch(plugged: Plugged) -> None:
    with pytest.raises(InvalidParameterException, match="MinConfidence is at most 100"):
        _start(plugged, MinConfidence=101.0)
    assert plugged.store.in_state(QUEUED) == []
    job_id = _start(plugged, JobTag="refused-at-launch")
    plugged.scheduler.reconcile_once()
    stored = plugged.store.get(job_id)
    assert stored is not None and (stored.state, stored.status_message) == (
        FAILED, "The label model is gone")
    assert plugged.images.plans == []


def test_face_and_new_jobs_share_the_workers_and_each_runner_halts_its_own(
        plugged: Plugged) -> None:
    labels = _start(plugged)
    faces = plugged.service.start(FaceDetectionRequest(MANIFEST), None)
    plugged.scheduler.reconcile_once()
    assert [p.job_id for p in plugged.images.plans] == [labels]
    assert [p.job_id for p in plugged.videos.plans] == [faces]
    assert plugged.metric("streamproc_job_running") == 2
    plugged.scheduler.stop(1.0)
    assert [p.job_id for p in plugged.images.halted_runs] == [labels]
    assert [p.job_id for p in plugged.videos.halted_runs] == [faces]
    assert plugged.store.get(labels).state == RUNNING  # resumed at the next start


def test_a_video_kind_with_a_stage_of_its_own_runs_through_the_real_video_runner(
        plugged: Plugged, tmp_path: Path) -> None:
    levels = [20 + 20 * i for i in range(10)]  # one grey level per frame, 10 frames a second
    encode([np.full((48, 64, 3), level, np.uint8) for level in levels], Fraction(10),
           tmp_path / "objects" / "vids" / "grey.mp4", "mp4")
    plugged.brightness.start()
    job_id = plugged.service.start(BrightnessRequest(ObjectRef("vids", "grey.mp4")), None)
    deadline = time.monotonic() + 30
    stored = plugged.store.get(job_id)
    while stored is not None and stored.state != SUCCEEDED and time.monotonic() < deadline:
        plugged.scheduler.reconcile_once()  # launches it, then ends it once it reported
        time.sleep(0.02)
        stored = plugged.store.get(job_id)
    assert stored is not None and stored.state == SUCCEEDED, stored.status_message
    assert stored.video_metadata is not None and stored.video_metadata["Codec"] == "h264"
    assert plugged.videos.plans == [] and plugged.images.plans == []  # its own runner only
    items = plugged.service.get(job_id, "FakeBrightness", ResultsQuery()).items
    assert [i["Timestamp"] for i in items] == [0, 200, 400, 600, 800]  # sampled at 5 fps
    assert plugged.brightness.analysed == 5  # every sampled frame went to its stage
    for item, level in zip(items, levels[::2], strict=True):  # the stage's value, built
        assert abs(item["Brightness"] - level) < 3


def test_a_row_of_a_kind_this_node_lacks_is_left_for_a_node_that_knows_it(
        plugged: Plugged, caplog: pytest.LogCaptureFixture) -> None:
    plugged.store.insert("newer", "FakeCelebrities", None, {"Video": {}}, 0.0)
    plugged.store.insert("newer-run", "FakeCelebrities", None, {"Video": {}}, 0.0)
    plugged.store.launch("newer-run", node="gone")  # its node left: placed here now
    with caplog.at_level(logging.WARNING, logger="streamproc.jobs.scheduler"):
        plugged.scheduler.reconcile_once()
        plugged.scheduler.reconcile_once()
    queued, run = plugged.store.get("newer"), plugged.store.get("newer-run")
    assert queued is not None and run is not None
    assert (queued.state, queued.attempt, queued.status_message) == (QUEUED, 0, "")
    assert (run.state, run.attempt, run.node, run.finished) == (RUNNING, 1, "gone", None)
    assert plugged.images.plans == [] and plugged.videos.plans == []
    said = [r.getMessage() for r in caplog.records if "no FakeCelebrities jobs" in r.getMessage()]
    assert len(said) == 2  # once per job, not once per turn
    assert said[0].startswith("job newer is placed here") and "left QUEUED" in said[0]
    assert "left RUNNING" in said[1]
    face = plugged.service.start(FaceDetectionRequest(MANIFEST), None)  # a job behind them
    plugged.scheduler.reconcile_once()
    assert [p.job_id for p in plugged.videos.plans] == [face]  # they hold no worker
    assert plugged.metric("streamproc_job_queued") == 1  # the queued one still waits
    for get in ("GetFaceDetection", "GetFakeLabels"):  # no 500: each Get* reads its own kind
        with pytest.raises(ResourceNotFoundException, match="No .* job with JobId newer"):
            plugged.handlers[get]({"JobId": "newer"})
    assert plugged.service.running_on() == {"newer-run": "gone", face: "local"}  # GET /cluster


# ---- the registries ----------------------------------------------------------------------
def test_a_kind_whose_input_and_stage_have_no_runner_is_refused_at_wiring() -> None:
    runners = JobRunners()
    runners.add(JobInput.VIDEO, FACES, ImagesRunner())
    runners.require({(JobInput.VIDEO, FACES)})
    with pytest.raises(ValueError, match="^no job runner for input images into stage labels$"):
        runners.require(JobKinds([FaceDetectionJobKind(), LabelsKind()]).needs())
    with pytest.raises(ValueError, match="no job runner for input video into stage brightness"):
        runners.require(JobKinds([BrightnessKind()]).needs())  # a stage, not only an input
    with pytest.raises(ValueError, match="two job runners for input video into stage faces"):
        runners.add(JobInput.VIDEO, FACES, ImagesRunner())


def test_a_launch_goes_to_the_runner_of_its_input_and_stage_and_halts_there() -> None:
    faces, other = ImagesRunner(), ImagesRunner()
    runners = JobRunners()
    runners.add(JobInput.VIDEO, FACES, faces)
    runners.add(JobInput.VIDEO, "brightness", other)
    plan = JobPlan("j", 1, "FakeBrightness", MANIFEST, BrightnessFactory(), JobInput.VIDEO,
                   "brightness")
    launched = runners.launch(plan, None, None, None)  # type: ignore[arg-type]
    assert other.plans == [plan] and faces.plans == [] and launched.plan == plan
    runners.begin_halt(launched)
    assert other.halted_runs == [plan] and faces.halted_runs == []
    assert runners.halted(launched)
    with pytest.raises(AssertionError, match="always halts"):  # abandon reaches its runner
        runners.abandon(launched)


def test_kinds_are_unique_by_name_and_by_request_type() -> None:
    with pytest.raises(ValueError, match="two job kinds"):
        JobKinds([LabelsKind(), LabelsKind()])
    kinds = JobKinds([FaceDetectionJobKind(), LabelsKind()])
    assert kinds.of(LabelsRequest(MANIFEST)).api == "FakeLabels"
    assert kinds.of(FaceDetectionRequest(MANIFEST)).api == "FaceDetection"
    with pytest.raises(UnknownJobKind, match="No job kind takes a FaceSearchRequest") as caught:
        kinds.of(FaceSearchRequest(MANIFEST, collection_id="c"))
    assert caught.value.status_code == 500  # the daemon's wiring, not the client, is wrong


class _OtherLabelsRequest(LabelsRequest):
    """A request type of its own, for a kind that reuses another kind's name."""


class _SameNameKind(LabelsKind):
    request_type = _OtherLabelsRequest


def test_a_kind_name_or_a_request_type_taken_once_is_refused() -> None:
    with pytest.raises(ValueError, match="two job kinds named FakeLabels"):
        JobKinds([LabelsKind(), _SameNameKind()])  # one name, two request types
    kinds = JobKinds([LabelsKind()])
    with pytest.raises(UnknownJobKind) as caught:
        kinds.get("FakePersons")
    assert caught.value.message == "This node runs no FakePersons jobs (no such job kind here)"


def test_a_stored_job_is_read_once_into_its_kind_and_request() -> None:
    row = StoredJob("j", "FakeLabels", None, LabelsRequest(
        MANIFEST, "t", NotificationChannel("arn:aws:sns:r:1:done")).stored(), QUEUED, "", None,
        0, 0.0, None)
    job = JobKinds([LabelsKind()]).job(row)
    assert isinstance(job, Job) and isinstance(job.kind, LabelsKind)
    assert job.request == LabelsRequest(MANIFEST, "t", NotificationChannel(
        "arn:aws:sns:r:1:done"), min_confidence=50.0)


# ---- the wire halves of the face jobs -------------------------------------------------------
def test_face_wire_halves_parse_starts_into_typed_requests() -> None:
    video = {"S3Object": {"Bucket": "b", "Name": "v.mp4", "Version": "3"}}
    channel = {"SNSTopicArn": "arn:aws:sns:r:1:t", "RoleArn": "arn:aws:iam::1:role/r"}
    detect = FaceDetectionWire().request({"Video": video, "JobTag": "x",
                                          "NotificationChannel": channel})
    assert detect == FaceDetectionRequest(ObjectRef("b", "v.mp4", "3"), "x",
                                          NotificationChannel("arn:aws:sns:r:1:t",
                                                              "arn:aws:iam::1:role/r"))
    search = FaceSearchWire().request({"Video": video, "CollectionId": "c"})
    assert (search.collection_id, search.threshold) == ("c", 80.0)  # the default, once
    with pytest.raises(InvalidParameterException, match="Video.S3Object is required"):
        FaceDetectionWire().request({"Video": {}})
    with pytest.raises(InvalidParameterException, match="S3Object needs Bucket and Name"):
        FaceDetectionWire().request({"Video": {"S3Object": {"Bucket": "b"}}})


@pytest.mark.parametrize(("state", "status"), [(QUEUED, "IN_PROGRESS"),
                                               (RUNNING, "IN_PROGRESS"),
                                               (SUCCEEDED, "SUCCEEDED"), (FAILED, "FAILED")])
def test_a_get_response_shows_results_only_once_succeeded(state: str, status: str) -> None:
    request = FaceDetectionRequest(ObjectRef("b", "v.mp4"), "tag")
    row = StoredJob("j", "FaceDetection", None, request.stored(), state,
                    "why" if state == FAILED else "", {"Codec": "h264"}, 1, 0.0, None)
    job = JobKinds([FaceDetectionJobKind()]).job(row)
    out = FaceDetectionWire().response(Page(job, [{"Timestamp": 0}], "next"))
    assert WIRE_STATUS[state] == out["JobStatus"] == status
    assert out["Video"] == {"S3Object": {"Bucket": "b", "Name": "v.mp4"}}
    assert (out["JobId"], out["JobTag"], out["VideoMetadata"]) == ("j", "tag", {"Codec": "h264"})
    assert ("Faces" in out) == (status == "SUCCEEDED") and out["NextToken"] == "next"
    assert out.get("StatusMessage") == ("why" if state == FAILED else None)


# ---- the scheduler's per-job slot ---------------------------------------------------------
def test_a_slot_moves_only_as_its_table_allows() -> None:
    slots = Slots()
    end = JobEnd(1, "FaceDetection", FAILED, "x")
    slots.change("j", None, "nothing held: no move")
    assert slots.phase("j") is None
    slots.change("j", running("j", object(), 1, "FaceDetection", 0.0), "launched")
    assert slots.working() == 1 and slots.phase("j") is Phase.RUNNING
    with pytest.raises(IllegalMove, match="running -> running"):
        slots.change("j", running("j", object(), 2, "FaceDetection", 0.0), "twice")
    slots.change("j", unwritten("j", end), "its end is not written")
    assert slots.working() == 0 and slots.get("j").end == end  # type: ignore[union-attr]
    slots.change("j", unwritten("j", end), "again")  # an end that fails again stays
    with pytest.raises(IllegalMove, match="end unwritten -> running"):
        slots.change("j", running("j", object(), 1, "FaceDetection", 0.0), "relaunched")
    slots.change("j", None, "written")
    assert slots.in_phase(*Phase) == []
