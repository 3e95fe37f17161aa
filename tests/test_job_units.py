"""Stored-video jobs without models or a broker: store, scheduler, mailbox, feed, priority."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fakes import MODEL, live_session
from prometheus_client import CollectorRegistry

from streamproc.config import CalibrationKnot, NotificationTarget, load_config
from streamproc.dataplane.analyzer import Analyzer
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.stored import jobworker
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.jobrun import JobFrames, JobInput, JobPlan
from streamproc.dataplane.stored.stages import FaceAnalysis, Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.errors import (
    IdempotentParameterMismatchException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
    LimitExceededException,
    ThrottlingException,
    VideoTooLargeException,
)
from streamproc.faces.similarity import SimilarityScale
from streamproc.faces.types import Face
from streamproc.jobs.commands import FinishJob, LaunchJob, StartJob
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.kinds.faces import (
    FaceDetectionJobKind,
    FaceDetectionRequest,
    FaceDetectionResults,
    FaceSearchJobKind,
    FaceSearchRequest,
    FaceSearchResults,
)
from streamproc.jobs.mailbox import Batch, JobMailbox, LaunchEnded
from streamproc.jobs.notices import Notices, notice
from streamproc.jobs.parts import JobHooks, SchedulerParts, SchedulerSettings
from streamproc.jobs.request import NotificationChannel
from streamproc.jobs.rules import JobRules, JobWrites
from streamproc.jobs.scheduler import JobScheduler
from streamproc.jobs.service import JobService, Page, ResultsQuery
from streamproc.ledger import Appliers, Command, LocalLedger
from streamproc.metrics import JobMetrics, JobSensor, NoticeSensor
from streamproc.rekognition.constants import FACE_DETECTION, FACE_SEARCH
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.collections import CollectionInfo, CollectionStore
from streamproc.storage.db import Database
from streamproc.storage.jobs import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobStore,
    ResultOrder,
    ResultRow,
)
from streamproc.storage.objects import ObjectRef, ObjectStore

VIDEO = ObjectRef("vids", "a.mp4")


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, bytes]] = []

    def submit(self, destination: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: Any) -> None:
        sensor.emitted()
        self.sent.append((destination, processor, topic, value))


class FakeRuntime:
    """Records launches; a launch ends only when the test says so."""

    def __init__(self) -> None:
        self.plans: list[JobPlan] = []
        self.halting: list[JobPlan] = []
        self.given: list[tuple[Any, Any, Any]] = []  # (sink, events, sensor) per launch
        self.abandoned: list[JobPlan] = []
        self.stuck = False

    def launch(self, plan: JobPlan, sink: Any, events: Any, sensor: Any) -> JobPlan:
        self.plans.append(plan)
        self.given.append((sink, events, sensor))
        return plan

    def begin_halt(self, run: JobPlan) -> None:
        self.halting.append(run)

    def halted(self, run: JobPlan) -> bool:
        return not self.stuck

    def abandon(self, run: JobPlan) -> None:
        self.abandoned.append(run)


class Jobs:
    """The jobs' control plane over a temporary database and a fake runtime."""

    def __init__(self, root: Path, **config: Any) -> None:
        self.db = Database(root / "streamproc.db")
        self.db.open()
        self.collections = CollectionStore(self.db)
        self.collections.load()
        scale = SimilarityScale([CalibrationKnot(cosine=-1, similarity=0),
                                 CalibrationKnot(cosine=1, similarity=100)])
        self.searcher = FaceSearcher(self.collections, lambda: MODEL, scale)
        (root / "objects" / "vids").mkdir(parents=True)
        (root / "objects" / "vids" / "a.mp4").write_bytes(b"x" * 1000)
        self.config = load_config(None, {"objects.local_root": str(root / "objects"),
                                          "kafka.bootstrap": "k:9092", **config})
        self.registry = CollectorRegistry()
        self.metrics = JobMetrics.create(self.registry)
        self.publisher = FakePublisher()
        self.notices = Notices(self.publisher, "k:9092", dict(self.config.jobs.notification_topics),
                               NoticeSensor(self.metrics), OutputAllowlist.for_config(self.config))
        self.store = JobStore(self.db)
        self.mailbox = JobMailbox()
        self.runtime = FakeRuntime()
        self.now = 1000.0
        appliers = Appliers()
        JobRules(self.store, self.mailbox.changed).register(appliers)
        self.ledger = LocalLedger(appliers)
        self.kinds = JobKinds([FaceDetectionJobKind(), FaceSearchJobKind(
            self.searcher, self.config.jobs.max_matches, "7.0")])
        self.service = JobService(self.store, ObjectStore(self.config.objects), self.kinds,
                                  self.notices, self.config.jobs, self.ledger, self.metrics)
        self.placement: Callable[[str, str | None], bool] = lambda job_id, on: True
        self.scheduler = self.restarted()

    def restarted(self, runtime: FakeRuntime | None = None, **settings: Any) -> JobScheduler:
        """A new scheduler over the same state (the daemon restarted)."""
        self.runtime = runtime or FakeRuntime()
        self.writes = JobWrites(self.ledger)
        return JobScheduler(
            SchedulerParts(self.store, self.writes, self.runtime, self.mailbox, self.notices,
                           self.kinds, self.metrics),
            SchedulerSettings(**{"workers": 1, "max_attempts": 2, "retention_s": 100,
                                 "stop_timeout_s": 0.3, "tick_s": 0.05, "purge_grace_s": 0.0,
                                 "unconfirmed_wait_s": 5.0, **settings}),
            JobHooks(placement=lambda active: {j for j, on in active if self.placement(j, on)}),
            clock=lambda: self.now)

    def detect(self, token: str | None = None, **extra: Any) -> str:
        return self.service.start(FaceDetectionRequest(VIDEO, **extra), token)

    def search(self, token: str | None = None, **extra: Any) -> str:
        return self.service.start(FaceSearchRequest(VIDEO, **extra), token)

    def get(self, job_id: str, api: str, sort: str | None, token: str | None,
            max_results: int | None) -> Page:
        return self.service.get(job_id, api, ResultsQuery(sort, token, max_results))

    def people(self) -> None:
        """A collection to search, made with this server's model."""
        self.collections.create(CollectionInfo("people", "arn:c/people", 1.0, MODEL.pack,
                                               MODEL.dim, "7.0", MODEL.recognizer))

    def state(self, job_id: str) -> str:
        job = self.store.get(job_id)
        assert job is not None
        return job.state

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def running(self) -> list[str]:
        """Jobs with a launch here: launched and not halted (the tests that ask end none
        otherwise), as many as the scheduler's running gauge counts."""
        ids = sorted(p.job_id for p in self.runtime.plans if p not in self.runtime.halting)
        assert self.metric("streamproc_job_running") == len(ids)
        return ids


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    j = Jobs(tmp_path)
    yield j
    j.scheduler.stop(1.0)
    j.db.close()


def channel_of(topic: str) -> NotificationChannel:
    return NotificationChannel(f"arn:aws:sns:us-east-1:123456789012:{topic}",
                               "arn:aws:iam::123456789012:role/r")


def _count(store: JobStore, job_id: str) -> int:
    """How many result rows the job has."""
    return len(store.results(job_id, ResultOrder.SEQUENCE, 0, 10_000))


def _rows(*specs: tuple[int, int | None]) -> list[ResultRow]:
    return [ResultRow(i, ts, person, {"Timestamp": ts, "P": person})
            for i, (ts, person) in enumerate(specs)]


# ---- store ------------------------------------------------------------------------------------
def test_results_belong_to_one_launch_and_failure_leaves_none(jobs: Jobs) -> None:
    store = jobs.store
    job_id = jobs.detect()
    assert store.launch(job_id) == 1
    assert store.add_results(job_id, 1, _rows((0, 1), (200, 0), (200, 1)))
    assert store.launch(job_id) == 2  # relaunched (a restart): the first launch's rows go
    assert _count(store, job_id) == 0
    assert not store.add_results(job_id, 1, _rows((0, 1)))  # the stale launch writes nothing
    assert _count(store, job_id) == 0
    assert store.add_results(job_id, 2, _rows((0, 1), (200, 0), (400, 1)))
    assert [r["P"] for r in store.results(job_id, ResultOrder.PERSON, 0, 10)] == [0, 1, 1]
    assert [r["Timestamp"] for r in store.results(job_id, ResultOrder.SEQUENCE, 1, 10)] == \
        [200, 400]
    assert store.finish(job_id, 2, FAILED, "broken", 5.0)
    assert _count(store, job_id) == 0  # nothing half-written survives a failure
    assert not store.finish(job_id, 2, SUCCEEDED, "", 6.0)  # already finished
    assert store.get(job_id).state == FAILED and store.get(job_id).status_message == "broken"


def test_purge_deletes_only_jobs_finished_before_the_cutoff(jobs: Jobs) -> None:
    old, recent, running = jobs.detect(), jobs.detect(), jobs.detect()
    for job_id in (old, recent, running):
        jobs.store.launch(job_id)
        jobs.store.add_results(job_id, 1, _rows((0, None)))
    jobs.store.finish(old, 1, SUCCEEDED, "", 100.0)
    jobs.store.finish(recent, 1, SUCCEEDED, "", 950.0)
    jobs.scheduler.purge()  # now = 1000, retention 100 s
    assert jobs.store.get(old) is None
    assert jobs.db.query("SELECT COUNT(*) FROM job_results WHERE job_id = ?", (old,))[0][0] == 0
    assert jobs.store.get(recent).state == SUCCEEDED and _count(jobs.store, recent) == 1
    assert jobs.store.get(running).state == RUNNING


# ---- service ------------------------------------------------------------------------------------
def test_tokens_return_the_same_job_or_refuse_a_different_request(jobs: Jobs) -> None:
    first = jobs.detect("tok-1", job_tag="a")
    assert jobs.detect("tok-1", job_tag="a") == first
    with pytest.raises(IdempotentParameterMismatchException):
        jobs.detect("tok-1", job_tag="b")
    # A token is per operation; the same token may start a face search.
    jobs.people()
    search = jobs.search("tok-1", collection_id="people")
    assert search != first
    explicit = FaceSearchRequest(VIDEO, collection_id="people", threshold=80.0)
    assert jobs.service.start(explicit, "tok-1") == search  # the default, spelled out


def test_concurrent_starts_with_one_token_make_one_job(jobs: Jobs) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        ids.append(jobs.detect("same"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(jobs.store.in_state(QUEUED)) == 1


def test_limits_and_missing_objects(tmp_path: Path) -> None:
    j = Jobs(tmp_path, **{"jobs.max_jobs": 2, "jobs.max_video_bytes": 999})
    with pytest.raises(VideoTooLargeException, match="1000 bytes; the limit is 999"):
        j.detect()
    j = Jobs(tmp_path / "b", **{"jobs.max_jobs": 2})
    j.detect(), j.detect()
    with pytest.raises(LimitExceededException, match="limit is 2"):
        j.detect()
    with pytest.raises(InvalidS3ObjectException):
        j.service.start(FaceDetectionRequest(ObjectRef("vids", "missing.mp4")), None)
    with pytest.raises(InvalidS3ObjectException, match="S3 endpoint"):
        j.service.start(FaceDetectionRequest(ObjectRef("vids", "a.mp4", "v1")), None)
    with pytest.raises(InvalidS3ObjectException):
        j.service.start(FaceDetectionRequest(ObjectRef("vids", "../../etc/passwd")), None)


def test_page_tokens_are_bound_to_job_and_order(jobs: Jobs) -> None:
    a, b = jobs.detect(), jobs.detect()
    for job_id in (a, b):
        jobs.store.launch(job_id)
        jobs.store.add_results(job_id, 1, _rows(*[(i * 200, None) for i in range(5)]))
        jobs.store.finish(job_id, 1, SUCCEEDED, "", 1.0)
    page = jobs.get(a, FACE_DETECTION, "TIMESTAMP", None, 2)
    assert [i["Timestamp"] for i in page.items] == [0, 200] and page.next_token
    rest = jobs.get(a, FACE_DETECTION, "TIMESTAMP", page.next_token, 10)
    assert [i["Timestamp"] for i in rest.items] == [400, 600, 800] and rest.next_token is None
    for bad in (page.next_token + "x", "not-a-token"):
        with pytest.raises(InvalidPaginationTokenException):
            jobs.get(a, FACE_DETECTION, "TIMESTAMP", bad, 2)
    with pytest.raises(InvalidPaginationTokenException):  # another job's token
        jobs.get(b, FACE_DETECTION, "TIMESTAMP", page.next_token, 2)
    jobs.people()
    search = jobs.search(collection_id="people")
    jobs.store.launch(search)
    jobs.store.add_results(search, 1, _rows(*[(i * 200, i % 2) for i in range(5)]))
    jobs.store.finish(search, 1, SUCCEEDED, "", 1.0)
    by_time = jobs.get(search, FACE_SEARCH, None, None, 2)  # TIMESTAMP, the default
    assert [i["Timestamp"] for i in by_time.items] == [0, 200] and by_time.next_token
    with pytest.raises(InvalidPaginationTokenException):  # another order's token
        jobs.get(search, FACE_SEARCH, "INDEX", by_time.next_token, 2)
    by_index = jobs.get(search, FACE_SEARCH, "INDEX", None, 10)
    assert [i["P"] for i in by_index.items] == [0, 0, 0, 1, 1]
    with pytest.raises(InvalidParameterException, match="SortBy INDEX is not one of TIMESTAMP"):
        jobs.get(a, FACE_DETECTION, "INDEX", None, 2)  # detection has one order


# ---- scheduler ----------------------------------------------------------------------------------
def test_workers_bound_launches_and_ends_are_events(jobs: Jobs) -> None:
    first, second = jobs.detect(), jobs.detect(job_tag="t")
    jobs.scheduler.reconcile_once()
    assert [p.job_id for p in jobs.runtime.plans] == [first]  # one worker
    assert jobs.state(first) == RUNNING and jobs.state(second) == QUEUED
    jobs.mailbox.job_ended(first, 7, None)  # a stale attempt: ignored
    jobs.scheduler.reconcile_once()
    assert jobs.state(first) == RUNNING
    jobs.mailbox.job_ended(first, 1, "Unsupported codec/format: vids/a.mp4 cannot be read")
    assert jobs.state(first) == RUNNING  # nothing changes on the reporting thread
    jobs.scheduler.reconcile_once()
    assert jobs.state(first) == FAILED
    assert jobs.store.get(first).status_message.startswith("Unsupported codec/format")
    assert [p.job_id for p in jobs.runtime.plans] == [first, second]
    jobs.mailbox.job_ended(second, 1, None)
    jobs.scheduler.reconcile_once()
    assert jobs.state(second) == SUCCEEDED


def test_placement_decides_which_jobs_run_here(jobs: Jobs) -> None:
    mine, theirs = jobs.detect(), jobs.detect(job_tag="x")
    seen: list[tuple[str, str | None]] = []

    def placement(job_id: str, on: str | None) -> bool:
        seen.append((job_id, on))
        return job_id == mine

    jobs.placement = placement
    jobs.scheduler.reconcile_once()
    assert seen == [(mine, None), (theirs, None)]  # oldest first, queued: no node yet
    assert jobs.store.get(mine).node == "local"  # the launch names its node
    seen.clear()
    jobs.scheduler.reconcile_once()
    assert (mine, "local") in seen  # a running job is offered with the node that runs it
    jobs.mailbox.job_ended(mine, 1, None)
    jobs.scheduler.reconcile_once()
    assert [p.job_id for p in jobs.runtime.plans] == [mine]
    assert jobs.state(theirs) == QUEUED


def test_a_job_taken_over_elsewhere_is_halted_here_and_its_launch_writes_nothing(
        jobs: Jobs) -> None:
    job_id = jobs.detect()
    jobs.scheduler.reconcile_once()
    (plan,) = jobs.runtime.plans
    jobs.placement = lambda j, on: False  # fenced for a moment: the launch goes on
    jobs.scheduler.reconcile_once()
    assert jobs.runtime.halting == [] and jobs.running() == [job_id]
    other = JobWrites(jobs.ledger)
    other.node_id = "node-b"  # the job really moved: node-b launched it again
    assert other.launch(job_id, 1, "") == 2
    assert other.launch(job_id, 1, "") is None  # a second taker loses
    assert not JobWrites(jobs.ledger).add_results(job_id, 1, _rows((0, None)))  # stale
    assert other.add_results(job_id, 2, _rows((0, None), (200, 1)))
    jobs.scheduler.reconcile_once()
    assert jobs.runtime.halting == [plan] and jobs.running() == []
    assert not JobWrites(jobs.ledger).finish(job_id, 1, SUCCEEDED, "", 5.0)
    jobs.mailbox.job_ended(job_id, 1, None)  # the halted launch reports late: ignored
    jobs.scheduler.reconcile_once()
    job = jobs.store.get(job_id)
    assert (job.state, job.node, job.attempt) == (RUNNING, "node-b", 2)
    assert _count(jobs.store, job_id) == 2


def test_a_running_launch_superseded_elsewhere_is_halted(jobs: Jobs) -> None:
    job_id = jobs.detect()
    jobs.placement = lambda j, on: on in (None, "local")  # running elsewhere: not here
    jobs.scheduler.reconcile_once()
    other = JobWrites(jobs.ledger)
    other.node_id = "node-b"  # node-b took the job over (attempt 2)
    assert other.launch(job_id, 1, "") == 2
    jobs.scheduler.reconcile_once()
    assert jobs.runtime.halting == jobs.runtime.plans[:1]
    assert jobs.running() == [] and len(jobs.runtime.plans) == 1
    job = jobs.store.get(job_id)
    assert (job.state, job.node, job.attempt) == (RUNNING, "node-b", 2)


def test_restart_resumes_then_fails_with_a_reason(jobs: Jobs) -> None:
    job_id = jobs.detect(job_tag="night", notification=channel_of("done"))
    jobs.scheduler.reconcile_once()
    JobWrites(jobs.ledger).add_results(job_id, 1, _rows((0, None)))
    jobs.scheduler = jobs.restarted()  # a restart found it RUNNING here with no launch
    jobs.scheduler.reconcile_once()
    job = jobs.store.get(job_id)
    assert job.state == RUNNING and job.attempt == 2 and "attempt 2 of 2" in job.status_message
    assert _count(jobs.store, job_id) == 0  # it runs again from the start
    assert [p.attempt for p in jobs.runtime.plans] == [2]
    jobs.scheduler = jobs.restarted()  # cut off again: max_attempts (2) reached
    jobs.scheduler.reconcile_once()
    job = jobs.store.get(job_id)
    assert job.state == FAILED and "cut off 2 times by a daemon restart" in job.status_message
    assert not jobs.runtime.plans
    (destination, key, topic, value), = jobs.publisher.sent
    assert (destination, key, topic) == ("k:9092", job_id, "done")
    assert b'"Status":"FAILED"' in value and b'"JobTag":"night"' in value
    assert jobs.metric("streamproc_job_finished_total", api=FACE_DETECTION,
                       status="FAILED") == 1


def test_an_end_that_cannot_be_written_is_written_later(jobs: Jobs) -> None:
    job_id = jobs.detect()
    jobs.scheduler.reconcile_once()
    undo = _refused(jobs)
    jobs.mailbox.job_ended(job_id, 1, None)
    jobs.scheduler.reconcile_once()
    assert jobs.state(job_id) == RUNNING and len(jobs.runtime.plans) == 1  # not relaunched
    undo()
    jobs.scheduler.reconcile_once()
    assert jobs.state(job_id) == SUCCEEDED and len(jobs.publisher.sent) == 0  # no channel


def _refused(jobs: Jobs, *kinds: type[Command[Any]],
             seen: list[Any] | None = None) -> Callable[[], None]:
    """Commands of ``kinds`` (every kind if none) do not land and their writer hears
    ThrottlingException (the cluster's log is away, or holds them unapplied for now);
    they go to ``seen``. Returns the undo."""
    real = jobs.ledger.submit

    def submit(command: Command[Any]) -> Any:
        if kinds and not isinstance(command, kinds):
            return real(command)
        if seen is not None:
            seen.append(command)
        raise ThrottlingException("The cluster's state log cannot be reached")

    jobs.ledger.submit = submit  # type: ignore[method-assign]
    return lambda: setattr(jobs.ledger, "submit", real)


def _unacknowledged(jobs: Jobs, *kinds: type[Command[Any]]) -> Callable[[], None]:
    """Commands of ``kinds`` land but their writer hears ThrottlingException (as when Kafka
    stores the record and the acknowledgement is lost); returns the undo."""
    real = jobs.ledger.submit

    def submit(command: Command[Any]) -> Any:
        result = real(command)
        if isinstance(command, kinds):
            raise ThrottlingException("sent, not acknowledged")
        return result

    jobs.ledger.submit = submit  # type: ignore[method-assign]
    return lambda: setattr(jobs.ledger, "submit", real)


def test_a_launch_that_landed_unacknowledged_runs_without_a_new_attempt(jobs: Jobs) -> None:
    job_id = jobs.detect()
    undo = _unacknowledged(jobs, LaunchJob)
    jobs.scheduler.reconcile_once()
    undo()
    assert not jobs.runtime.plans and jobs.store.get(job_id).attempt == 1
    jobs.scheduler.reconcile_once()
    assert [p.attempt for p in jobs.runtime.plans] == [1]  # adopted, not attempt 2 of 2
    assert jobs.store.get(job_id).status_message == ""


def test_unacknowledged_launches_hold_their_worker_slot(jobs: Jobs) -> None:
    first, *_ = [jobs.detect(job_tag=t) for t in "abc"]
    undo = _unacknowledged(jobs, LaunchJob)
    jobs.scheduler.reconcile_once()
    jobs.scheduler.reconcile_once()
    undo()
    assert [j.job_id for j in jobs.store.in_state(RUNNING)] == [first]  # one command sent
    for _ in range(3):
        jobs.scheduler.reconcile_once()
    assert [(p.job_id, p.attempt) for p in jobs.runtime.plans] == [(first, 1)]  # workers=1


def test_a_launch_that_lands_a_while_later_is_waited_for(jobs: Jobs) -> None:
    job_id = jobs.detect()
    late: list[LaunchJob] = []  # in the log, not yet applied anywhere
    undo = _refused(jobs, LaunchJob, seen=late)
    jobs.scheduler.reconcile_once()
    undo()
    jobs.scheduler.reconcile_once()  # still not applied: no second launch command
    assert len(late) == 1 and jobs.state(job_id) == QUEUED and not jobs.runtime.plans
    jobs.ledger.submit(late[0])  # it lands
    jobs.scheduler.reconcile_once()
    assert [p.attempt for p in jobs.runtime.plans] == [1]
    assert jobs.store.get(job_id).status_message == ""  # not "Resumed ... attempt 2"


def test_an_end_the_scheduler_decides_is_written_again_with_its_notice(jobs: Jobs) -> None:
    job_id = jobs.detect(notification=channel_of("done"))
    jobs.scheduler.reconcile_once()
    jobs.scheduler = jobs.restarted()
    jobs.scheduler.reconcile_once()  # attempt 2 of 2
    jobs.scheduler = jobs.restarted()
    undo = _unacknowledged(jobs, FinishJob)
    jobs.scheduler.reconcile_once()  # cut off twice: FAILED, but unacknowledged
    undo()
    assert jobs.state(job_id) == FAILED and not jobs.publisher.sent
    jobs.scheduler.reconcile_once()
    jobs.scheduler.reconcile_once()
    (_, key, _, value), = jobs.publisher.sent
    assert key == job_id and b'"Status":"FAILED"' in value


def test_an_end_that_landed_unacknowledged_still_sends_its_notice(jobs: Jobs) -> None:
    job_id = jobs.detect(notification=channel_of("done"))
    jobs.scheduler.reconcile_once()
    undo = _unacknowledged(jobs, FinishJob)
    jobs.mailbox.job_ended(job_id, 1, None)
    jobs.scheduler.reconcile_once()
    undo()
    assert jobs.state(job_id) == SUCCEEDED and not jobs.publisher.sent
    jobs.now += 30  # the notice keeps the time the end was written
    jobs.scheduler.reconcile_once()
    (_, key, topic, value), = jobs.publisher.sent
    assert (key, topic) == (job_id, "done") and b'"Status":"SUCCEEDED"' in value
    assert json.loads(value)["Timestamp"] == 1000000
    jobs.scheduler.reconcile_once()
    assert len(jobs.publisher.sent) == 1  # once


def test_a_token_past_retention_starts_a_new_job_on_every_node_alike(jobs: Jobs) -> None:
    old = jobs.detect("tok")
    JobWrites(jobs.ledger).finish(old, 0, FAILED, "x", 1000.0)
    start = {"job_id": "new", "api": FACE_DETECTION, "token": "tok",
             "request": FaceDetectionRequest(VIDEO).stored(), "created": 1050.0,
             "max_jobs": 20, "retention_s": 100.0}
    assert jobs.ledger.submit(StartJob(**start)) == old  # within retention: the same job
    # Past retention, whether or not this node's purge has run: a new job.
    assert jobs.ledger.submit(StartJob(**{**start, "created": 1101.0})) == "new"
    assert jobs.store.get(old) is None and jobs.store.by_token(FACE_DETECTION, "tok").job_id \
        == "new"
    assert jobs.ledger.submit(StartJob(**{**start, "created": 1101.0})) == "new"  # replayed


def test_a_collection_gone_before_launch_fails_the_job(jobs: Jobs) -> None:
    jobs.people()
    job_id = jobs.search(collection_id="people")
    jobs.collections.delete("people")
    jobs.scheduler.reconcile_once()
    assert jobs.state(job_id) == FAILED and not jobs.runtime.plans
    assert "does not exist" in jobs.store.get(job_id).status_message


def test_stop_is_bounded_and_leaves_launches_to_resume(jobs: Jobs) -> None:
    job_id = jobs.detect()
    jobs.scheduler.start()
    deadline = time.monotonic() + 5
    while not jobs.runtime.plans and time.monotonic() < deadline:
        time.sleep(0.01)
    jobs.runtime.stuck = True  # the launch never finishes halting
    started = time.monotonic()
    jobs.scheduler.stop(1.0)
    assert time.monotonic() - started < 3.0  # (stuck forever if stop waited for the halt)
    assert jobs.runtime.halting == jobs.runtime.plans
    assert jobs.state(job_id) == RUNNING  # resumed by the next start, not failed


# ---- notices ------------------------------------------------------------------------------------
def test_notification_targets(jobs: Jobs) -> None:
    topics = {"arn:aws:sns:us-east-1:123456789012:byarn": NotificationTarget(topic="t1"),
              "byname": NotificationTarget(topic="t2", bootstrap="other:9092")}
    allowed = OutputAllowlist.for_config(jobs.config)
    notices = Notices(jobs.publisher, "k:9092", topics, NoticeSensor(jobs.metrics), allowed)
    arn = "arn:aws:sns:eu-west-1:123456789012:"
    assert notices.target(NotificationChannel("arn:aws:sns:us-east-1:123456789012:byarn")) == (
        "k:9092", "t1")
    assert notices.target(NotificationChannel(arn + "byname")) == ("other:9092", "t2")
    assert notices.target(NotificationChannel(arn + "plain")) == ("k:9092", "plain")
    nowhere = Notices(jobs.publisher, None, {}, NoticeSensor(jobs.metrics), allowed)
    with pytest.raises(InvalidParameterException, match="no Kafka cluster"):
        nowhere.target(NotificationChannel(arn + "plain"))


def test_notice_is_the_sns_message(jobs: Jobs) -> None:
    job_id = jobs.detect(job_tag="tag-1")
    body = notice(jobs.kinds.job(jobs.store.get(job_id)), SUCCEEDED, "", 1700000000.123)
    assert body == {"JobId": job_id, "Status": "SUCCEEDED", "API": "StartFaceDetection",
                    "Message": "", "Timestamp": 1700000000123, "JobTag": "tag-1",
                    "Video": {"S3ObjectName": "a.mp4", "S3Bucket": "vids"}}


def test_mailbox_keeps_one_entry_per_job() -> None:
    box = JobMailbox()
    for attempt in range(100):
        box.job_ended("a", attempt, None)
    box.job_ended("a", 3, "late and stale")
    box.job_ended("b", 1, "x")
    assert box.take() == Batch((LaunchEnded("a", 99, None), LaunchEnded("b", 1, "x")))
    assert box.take() == Batch()


def test_a_stage_that_gave_up_fails_the_running_jobs(jobs: Jobs) -> None:
    running, queued = jobs.detect(), jobs.detect(job_tag="later")
    jobs.scheduler.reconcile_once()
    jobs.mailbox.fail_all("analyzer stage failed 6 times within 60 s: RuntimeError")
    jobs.scheduler.reconcile_once()
    assert jobs.state(running) == FAILED and jobs.runtime.halting == jobs.runtime.plans[:1]
    assert jobs.store.get(running).status_message.startswith("analyzer stage failed")
    assert jobs.state(queued) == FAILED  # it would wait for a stage that stays down
    assert len(jobs.runtime.plans) == 1
    assert jobs.metric("streamproc_job_finished_total", api=FACE_DETECTION,
                       status="FAILED") == 2


# ---- the analyzer's priority --------------------------------------------------------------------
class FakeEngine:
    face_model_version = "7.0"

    def __init__(self) -> None:
        self.embedded = 0
        self.broken = False

    def detect(self, image: np.ndarray) -> list[Face]:
        if self.broken:
            raise RuntimeError("model error")
        return [Face(np.array([10, 10, 50, 50], np.float32), 0.9, np.zeros((5, 2)))]

    def detect_many(self, images: list[np.ndarray]) -> list[list[Face]]:
        return [self.detect(image) for image in images]

    def embed_many(self, items: list[tuple[np.ndarray, list[Face]]]) -> None:
        for _, faces in items:
            for face in faces:
                face.embedding = np.ones(4, np.float32)
                self.embedded += 1


def _job_frames(name: str) -> JobFrames:
    sensor = JobSensor(JobMetrics.create(CollectorRegistry()), FACE_DETECTION, name)
    plan = JobPlan(name, 1, FACE_DETECTION, VIDEO, FaceDetectionResults())
    return JobFrames(plan, plan.results.builder(), 16, sensor)


def _frame(ts: int = 0) -> StoredFrame:
    return StoredFrame(np.zeros((64, 64, 3), np.uint8), ts, ts / 1000)


def test_live_frames_go_first_and_jobs_take_small_batches_beside_them() -> None:
    engine = FakeEngine()
    analyzer = Analyzer(engine, None, None, batch_frames=8, max_matches=1,  # type: ignore[arg-type]
                        emit_empty=False, wake=threading.Event())
    feed = BackgroundFeed()
    analyzer.add_background(feed, beside_live=2)
    one, two = _job_frames("one"), _job_frames("two")
    for owner in (one, two):
        feed.attach(owner)
        for i in range(6):
            owner.frames.put(_frame(i * 200))
    assert [o.name for o, _ in analyzer._collect()] == ["job one", "job two"] * 4  # no live
    live = live_session("cam")
    analyzer.attach(live)
    live.frames.put(object())  # type: ignore[arg-type]
    batch = analyzer._collect()
    assert [o for o, _ in batch] == [live]  # a live frame waits: no job frame joins it
    batch = analyzer._collect()
    assert len(batch) == 2 and all(o is not live for o, _ in batch)  # beside live: 2 at most
    analyzer.analyse(batch)
    assert engine.embedded == 0  # face detection jobs need no embeddings
    assert sum(len(o.take(1)) for o in (one, two)) == 2  # one face each, built on finish


class _Embedded:
    needs_embeddings = True

    def build(self, frame: StoredFrame, analysis: FaceAnalysis) -> list[Any]:
        return [frame.timestamp_ms for f in analysis.faces if f.embedding is not None]


def test_search_jobs_pace_embeddings_in_video_time() -> None:
    engine = FakeEngine()
    analyzer = Analyzer(engine, None, None, batch_frames=8, max_matches=1,  # type: ignore[arg-type]
                        emit_empty=False, wake=threading.Event())
    sensor = JobSensor(JobMetrics.create(CollectorRegistry()), FACE_SEARCH, "s")
    owner = JobFrames(JobPlan("s", 1, FACE_SEARCH, VIDEO, FaceDetectionResults()), _Embedded(),  # type: ignore
                      16, sensor,
                      embed_interval_s=0.5)
    analyzer.analyse([(owner, _frame(0))])
    analyzer.analyse([(owner, _frame(ts)) for ts in (200, 400, 600, 800)])  # one batch
    assert engine.embedded == 2  # at 0 s and 0.6 s of video, however fast the job runs
    assert len(owner.take(1)) == 5  # every timestamp still has the face's latest embedding


def test_a_batch_that_cannot_be_analysed_fails_its_jobs() -> None:
    engine = FakeEngine()
    engine.broken = True
    analyzer = Analyzer(engine, None, None, batch_frames=8, max_matches=1,  # type: ignore[arg-type]
                        emit_empty=False, wake=threading.Event())
    feed = BackgroundFeed()
    analyzer.add_background(feed, beside_live=2)
    owner = _job_frames("one")
    feed.attach(owner)
    owner.frames.put(_frame())
    analyzer.start()
    feed.notify()
    assert owner.ended.wait(5)
    analyzer.stop(2)
    assert owner.failure == "Analysing a frame failed: RuntimeError"


def test_a_blocked_decoder_waits_without_dropping() -> None:
    queue: BoundedQueue[int] = BoundedQueue(1, DropPolicy.BLOCK)
    ended = threading.Event()
    queue.put(1, ended)
    threading.Timer(0.2, queue.get).start()
    started = time.monotonic()
    assert queue.put(2, ended, timeout=float("inf"))  # waits for room, however long
    assert time.monotonic() - started >= 0.15 and queue.dropped == 0
    threading.Timer(0.1, ended.set).start()
    assert not queue.put(3, ended, timeout=float("inf"))  # only the end stops the wait


def test_old_image_root_setting_still_works(tmp_path: Path) -> None:
    config = load_config(None, {"images.s3_local_root": str(tmp_path)})
    assert config.objects.local_root == tmp_path
    with pytest.raises(ValueError, match="disagree"):
        load_config(None, {"images.s3_local_root": str(tmp_path), "objects.local_root": "/x"})


class _Events:
    def __init__(self) -> None:
        self.ended: list[tuple[str, int, str | None]] = []

    def job_ended(self, job_id: str, attempt: int, error: str | None) -> None:
        self.ended.append((job_id, attempt, error))


class _Sink:
    def __init__(self) -> None:
        self.metadata: dict[str, Any] = {}

    def set_metadata(self, job_id: str, attempt: int, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    def add_results(self, job_id: str, attempt: int, rows: list[ResultRow]) -> bool:
        return True


def test_a_launch_blocked_on_a_full_queue_stops_in_bounded_time(tmp_path: Path) -> None:
    from conftest import VIDEO as CLIPS
    from conftest import require_shared

    from streamproc.dataplane.stored.jobrun import JobSettings
    from streamproc.dataplane.stored.jobworker import JobRunner

    require_shared()
    config = load_config(None, {"objects.local_root": str(CLIPS.parent)})
    feed = BackgroundFeed()  # attached to no analyzer: nothing ever takes a frame
    runner = JobRunner(ObjectStore(config.objects), feed, JobSettings(
        sample_fps=5, max_video_bytes=10**9, max_duration_s=60, frame_queue=2,
        decode_nice=10, embed_interval_s=0.5, scratch=tmp_path))
    events, sink = _Events(), _Sink()
    plan = JobPlan("j1", 1, FACE_DETECTION,
                   ObjectRef(CLIPS.name, "head-pose-face-detection-female-and-male.mp4"),
                   FaceDetectionResults())
    sensor = JobSensor(JobMetrics.create(CollectorRegistry()), FACE_DETECTION, "j1")
    run = runner.launch(plan, sink, events, sensor)
    deadline = time.monotonic() + 10
    queue = run._frames.frames
    while time.monotonic() < deadline and len(queue) < queue.maxsize:
        time.sleep(0.01)
    time.sleep(0.2)  # decoding has filled the 2-frame queue and waits for room
    assert len(queue) == queue.maxsize and queue.dropped == 0
    assert sink.metadata["Codec"] == "h264" and not runner.halted(run)
    started = time.monotonic()
    runner.begin_halt(run)
    while not runner.halted(run) and time.monotonic() - started < 5:
        time.sleep(0.01)
    assert runner.halted(run) and time.monotonic() - started < 2.0
    assert events.ended == []  # a halted launch reports nothing: its job resumes later


def test_a_reserved_embedding_that_never_came_is_retried() -> None:
    from streamproc.dataplane.tracking import Track

    track = Track(1, np.zeros(4))
    track.will_embed(0.0)  # its batch then failed: no embedding arrived
    assert track.needs_embedding(0.1, 0.5)
    track.observe(np.ones(4, np.float32), 0.1)
    track.will_embed(0.6)
    assert not track.needs_embedding(0.7, 0.5)  # reserved, and an embedding exists


def test_a_launch_waits_out_a_cluster_log_outage_instead_of_failing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobworker, "RETRY_MAX_S", 0.01)
    frames = _job_frames("j")
    plan = JobPlan("j", 1, FACE_DETECTION, VIDEO, FaceDetectionResults())
    tries: list[int] = []

    class Sink:
        def add_results(self, job_id: str, attempt: int, rows: list[ResultRow]) -> bool:
            tries.append(len(rows))
            if len(tries) < 3:
                raise ThrottlingException("The cluster's state log cannot be reached")
            return True

    sensor = JobSensor(JobMetrics.create(CollectorRegistry()), FACE_DETECTION, "j")
    run = jobworker.JobRun(plan, frames, None, Sink(), None, sensor)  # type: ignore[arg-type]
    sink = Sink()
    started = time.monotonic()
    assert run._retrying(lambda: sink.add_results("j", 1, _rows((0, None)))) is True
    assert tries == [1, 1, 1] and time.monotonic() - started < 2.0
    # The analysis fails meanwhile: the write gives up without halting the launch, so
    # the launch still reports the failure (a halted launch reports nothing).
    tries.clear()
    frames.fail("Internal error: model")
    run._frames.take = lambda at_least: [  # type: ignore[method-assign]
        Result(0, None, {})]
    run._write(1)
    assert tries == [1] and not run.stopping


# ---- what the mutation run of jobs/ found untested -------------------------------------------
def test_a_launch_plan_carries_the_request(jobs: Jobs) -> None:
    jobs.people()
    queued = jobs.detect(), jobs.search(collection_id="people", threshold=91.5)
    jobs.scheduler.reconcile_once()
    assert jobs.metrics.queued._value.get() == 1  # one waits for the one worker
    jobs.mailbox.job_ended(queued[0], 1, None)
    jobs.scheduler.reconcile_once()
    detect, search = jobs.runtime.plans
    assert (detect.api, detect.results, detect.source) == \
        (FACE_DETECTION, FaceDetectionResults(), VIDEO)  # no collection
    assert (search.job_id, search.attempt, search.api, search.source) == \
        (queued[1], 1, FACE_SEARCH, VIDEO)
    results = search.results
    assert isinstance(results, FaceSearchResults)
    assert results.collection.collection_id == "people"  # pinned at launch
    assert (results.threshold, results.max_matches) == (91.5, 10)
    assert detect.input == search.input == JobInput.VIDEO
    assert jobs.metrics.queued._value.get() == 0


def test_a_launch_that_lost_to_its_own_earlier_command_runs_that_attempt(jobs: Jobs) -> None:
    job_id = jobs.detect()
    real = jobs.ledger.submit

    def earlier_landed(command: Command[Any]) -> Any:
        if isinstance(command, LaunchJob):
            real(command)  # this node's earlier, unacknowledged launch landed first
        return real(command)  # so this one finds the attempt moved on: None

    jobs.ledger.submit = earlier_landed  # type: ignore[method-assign]
    jobs.scheduler.reconcile_once()
    jobs.ledger.submit = real  # type: ignore[method-assign]
    assert [(p.job_id, p.attempt) for p in jobs.runtime.plans] == [(job_id, 1)]
    jobs.scheduler.reconcile_once()
    assert len(jobs.runtime.plans) == 1 and jobs.store.get(job_id).attempt == 1


def test_a_launch_relaunched_by_this_node_id_is_halted_too(jobs: Jobs) -> None:
    job_id = jobs.detect()
    jobs.scheduler.reconcile_once()
    assert JobWrites(jobs.ledger).launch(job_id, 1, "") == 2  # same node id, new attempt
    jobs.scheduler.reconcile_once()
    assert jobs.runtime.halting == jobs.runtime.plans[:1]


def test_job_commands_apply_what_they_carry(jobs: Jobs) -> None:
    job_id = jobs.detect()
    writes = JobWrites(jobs.ledger)
    assert writes.launch("no-such-job", 0, "") is None
    assert writes.launch(job_id, 0, "") == 1
    writes.set_metadata(job_id, 1, {"Codec": "h264"})
    assert writes.add_results(job_id, 1, [ResultRow(0, 200, 3, {"Timestamp": 200})])
    assert jobs.store.get(job_id).video_metadata == {"Codec": "h264"}
    assert writes.finish(job_id, 1, SUCCEEDED, "", 5.0)
    assert jobs.store.results(job_id, ResultOrder.PERSON, 0, 10) == [{"Timestamp": 200}]
    assert jobs.db.query("SELECT person FROM job_results WHERE job_id = ?", (job_id,)) == [(3,)]
    # A job.start applied twice (a replay after a crash) is one job, with or without token.
    start = StartJob("j2", FACE_DETECTION, None, FaceDetectionRequest(VIDEO).stored(), 10.0,
                     20, 100.0)
    assert jobs.ledger.submit(start) == jobs.ledger.submit(start)


def test_token_expiry_boundaries_and_commands_without_retention(jobs: Jobs) -> None:
    old = jobs.detect("tok")
    JobWrites(jobs.ledger).finish(old, 0, FAILED, "x", 1000.0)
    start = {"job_id": "new", "api": FACE_DETECTION, "token": "tok",
             "request": FaceDetectionRequest(VIDEO).stored(), "created": 1100.0,
             "max_jobs": 20}
    assert jobs.ledger.submit(StartJob(**start)) == old  # no retention_s: never expired
    assert jobs.ledger.submit(StartJob(**start, retention_s=100.0)) == old  # == edge
    with pytest.raises(LimitExceededException, match=r"limit is 0 \(jobs\.max_jobs\)"):
        jobs.ledger.submit(StartJob(**{**start, "token": None, "job_id": "n2",
                                       "max_jobs": 0}))


# ---- the scheduler: what launches and ends carry, slots, order --------------------------------
def test_an_end_carries_its_time_message_and_api_into_the_row_the_notice_and_metrics(
        jobs: Jobs) -> None:
    failed = jobs.detect(job_tag="f", notification=channel_of("done"))
    jobs.scheduler.reconcile_once()
    jobs.now = 1234.5
    jobs.mailbox.job_ended(failed, 1, "Unsupported codec/format: vids/a.mp4")
    jobs.scheduler.reconcile_once()
    job = jobs.store.get(failed)
    assert (job.state, job.attempt, job.finished) == (FAILED, 1, 1234.5)
    assert job.status_message == "Unsupported codec/format: vids/a.mp4"
    (_, key, topic, value), = jobs.publisher.sent
    body = json.loads(value)
    assert (key, topic, body["Status"], body["Timestamp"]) == (failed, "done", "FAILED", 1234500)
    assert body["Message"] == "Unsupported codec/format: vids/a.mp4"
    succeeded = jobs.detect(job_tag="s", notification=channel_of("done"))
    jobs.scheduler.reconcile_once()
    jobs.now = 1300.0
    jobs.mailbox.job_ended(succeeded, 1, None)
    jobs.scheduler.reconcile_once()
    job = jobs.store.get(succeeded)
    assert (job.state, job.status_message, job.finished) == (SUCCEEDED, "", 1300.0)
    body = json.loads(jobs.publisher.sent[1][3])
    assert (body["Status"], body["Message"], body["Timestamp"]) == ("SUCCEEDED", "", 1300000)
    api = FACE_DETECTION
    assert jobs.metric("streamproc_job_finished_total", api=api, status="FAILED") == 1
    assert jobs.metric("streamproc_job_finished_total", api=api, status="SUCCEEDED") == 1
    assert jobs.metric("streamproc_job_duration_seconds_count", api=api) == 2
    assert 0 <= jobs.metric("streamproc_job_duration_seconds_sum", api=api) < 60


def test_an_end_retried_late_leaves_a_job_that_moved_meanwhile_alone(jobs: Jobs) -> None:
    job_id = jobs.detect(notification=channel_of("done"))
    jobs.scheduler.reconcile_once()
    undo = _refused(jobs)
    jobs.mailbox.job_ended(job_id, 1, None)
    jobs.scheduler.reconcile_once()  # the end of attempt 1 waits to be written
    undo()
    other = JobWrites(jobs.ledger)
    other.node_id = "node-b"  # meanwhile node-b took the job over
    assert other.launch(job_id, 1, "") == 2
    jobs.placement = lambda j, on: on in (None, "local")
    jobs.scheduler.reconcile_once()  # the end is for attempt 1 only
    job = jobs.store.get(job_id)
    assert (job.state, job.node, job.attempt) == (RUNNING, "node-b", 2)
    assert not jobs.publisher.sent
    assert jobs.metric("streamproc_job_finished_total", api=FACE_DETECTION,
                       status="SUCCEEDED") == 0


def test_a_launch_is_given_the_writes_the_mailbox_and_a_sensor_of_its_own(jobs: Jobs) -> None:
    job_id = jobs.detect()
    jobs.scheduler.reconcile_once()
    (sink, events, sensor), = jobs.runtime.given
    assert sink is jobs.writes and events is jobs.mailbox
    sensor.frame_decoded(2.0, 4.0)
    sensor.frame_analysed(3)
    assert jobs.metric("streamproc_job_frames_decoded_total", api=FACE_DETECTION) == 1
    assert jobs.metric("streamproc_job_faces_detected_total", api=FACE_DETECTION) == 3
    assert jobs.metric("streamproc_job_progress_ratio", job_id=job_id) == 0.5


def test_two_workers_launch_two_jobs_in_one_turn_and_end_them_in_one_turn(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    jobs.scheduler = jobs.restarted(workers=2)
    try:
        first = jobs.detect(job_tag="a")
        jobs.scheduler.reconcile_once()
        jobs.scheduler.reconcile_once()  # launched once, not again while it runs
        second = jobs.detect(job_tag="b")
        jobs.scheduler.reconcile_once()  # the running one is passed over, not the end
        assert [p.job_id for p in jobs.runtime.plans] == [first, second]
        third, fourth = jobs.detect(job_tag="c"), jobs.detect(job_tag="d")
        jobs.mailbox.job_ended(first, 1, None)
        jobs.mailbox.job_ended(second, 1, None)
        jobs.scheduler.reconcile_once()  # both slots filled in one turn
        assert [p.job_id for p in jobs.runtime.plans][2:] == [third, fourth]
        first, second = third, fourth
        jobs.mailbox.job_ended("gone-long-ago", 1, None)  # a report nobody launched
        jobs.mailbox.job_ended(first, 1, None)
        jobs.mailbox.job_ended(second, 1, None)
        jobs.scheduler.reconcile_once()
        assert (jobs.state(first), jobs.state(second)) == (SUCCEEDED, SUCCEEDED)
    finally:
        jobs.scheduler.stop(1.0)
        jobs.db.close()


def test_each_lost_launch_is_halted_not_only_the_first(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    jobs.scheduler = jobs.restarted(workers=2)
    try:
        first, second, kept = (jobs.detect(job_tag=t) for t in "abc")
        jobs.scheduler.reconcile_once()
        assert [p.job_id for p in jobs.runtime.plans] == [first, second]
        other = JobWrites(jobs.ledger)
        other.node_id = "node-b"
        assert other.launch(first, 1, "") == 2
        assert other.launch(second, 1, "") == 2
        jobs.placement = lambda j, on: on in (None, "local")
        jobs.scheduler.reconcile_once()
        assert jobs.runtime.halting == jobs.runtime.plans[:2]
        assert jobs.running() == [kept]  # the freed slots go to the next
    finally:
        jobs.scheduler.stop(1.0)
        jobs.db.close()


def test_a_job_not_placed_here_does_not_hold_back_the_next(jobs: Jobs) -> None:
    theirs, mine = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
    jobs.placement = lambda j, on: j == mine
    jobs.scheduler.reconcile_once()
    assert [p.job_id for p in jobs.runtime.plans] == [mine]
    assert jobs.state(theirs) == QUEUED


def test_a_job_failed_at_launch_frees_its_slot_in_the_same_turn(jobs: Jobs) -> None:
    jobs.people()
    search = jobs.search(collection_id="people")
    detect = jobs.detect()
    jobs.collections.delete("people")
    jobs.scheduler.reconcile_once()
    assert jobs.state(search) == FAILED
    assert [p.job_id for p in jobs.runtime.plans] == [detect]
    assert jobs.metric("streamproc_job_finished_total", api=FACE_SEARCH, status="FAILED") == 1


def test_with_the_log_away_one_launch_command_is_tried_per_turn(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    jobs.scheduler = jobs.restarted(workers=2)
    try:
        jobs.detect(job_tag="a")
        jobs.detect(job_tag="b")
        tried: list[LaunchJob] = []
        _refused(jobs, LaunchJob, seen=tried)
        jobs.scheduler.reconcile_once()
        assert len(tried) == 1  # the next would only fail the same way
    finally:
        jobs.scheduler.stop(1.0)
        jobs.db.close()


def test_a_launch_command_not_landed_yet_holds_the_only_slot(jobs: Jobs) -> None:
    first, second = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
    late: list[LaunchJob] = []
    undo = _refused(jobs, LaunchJob, seen=late)
    jobs.scheduler.reconcile_once()
    undo()
    jobs.scheduler.reconcile_once()
    jobs.scheduler.reconcile_once()
    assert [c.job_id for c in late] == [first] and not jobs.runtime.plans
    assert jobs.state(second) == QUEUED  # the slot waits for the first one's command


def test_an_unlanded_launch_that_lost_to_another_node_frees_its_slot(
        jobs: Jobs, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "streamproc.jobs.slots")
    first, second = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
    undo = _refused(jobs, LaunchJob)  # sent, and never lands
    jobs.scheduler.reconcile_once()
    undo()
    other = JobWrites(jobs.ledger)
    other.node_id = "node-b"
    assert other.launch(first, 0, "") == 1  # node-b launched attempt 1, the one we wanted
    jobs.placement = lambda j, on: on in (None, "local")
    jobs.scheduler.reconcile_once()  # not ours: forgotten, and the slot goes to the next
    jobs.scheduler.reconcile_once()
    assert [p.job_id for p in jobs.runtime.plans] == [second]
    assert jobs.store.get(first).node == "node-b"
    assert f"job {first}: slot unconfirmed -> none (another launch won, or it never landed)" \
        in caplog.messages


def test_a_turn_purges_and_keeps_the_grace(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    jobs.scheduler = jobs.restarted(purge_grace_s=50.0)
    try:
        old, recent = jobs.detect(job_tag="o"), jobs.detect(job_tag="r")
        JobWrites(jobs.ledger).finish(old, None, SUCCEEDED, "", jobs.now - 160)
        JobWrites(jobs.ledger).finish(recent, None, SUCCEEDED, "", jobs.now - 120)
        jobs.scheduler.reconcile_once()  # retention 100 + grace 50: only the first goes
        assert jobs.store.get(old) is None and jobs.store.get(recent) is not None
    finally:
        jobs.scheduler.stop(1.0)
        jobs.db.close()


class SlowHalts(FakeRuntime):
    """A launch takes a moment to halt (its thread finishes the frame it holds)."""

    def __init__(self) -> None:
        super().__init__()
        self.halt_at: dict[str, float] = {}
        self.seen_halted: set[str] = set()  # launches whose end someone saw

    def begin_halt(self, run: JobPlan) -> None:
        super().begin_halt(run)
        self.halt_at[run.job_id] = time.monotonic() + 0.1

    def halted(self, run: JobPlan) -> bool:
        done = time.monotonic() >= self.halt_at[run.job_id]
        if done:
            self.seen_halted.add(run.job_id)
        return done


def test_stop_ends_the_loop_promptly_and_waits_for_halting_launches(jobs: Jobs) -> None:
    jobs.scheduler = jobs.restarted(runtime=SlowHalts())
    jobs.detect()
    jobs.scheduler.start()
    deadline = time.monotonic() + 5
    while not jobs.runtime.plans and time.monotonic() < deadline:
        time.sleep(0.01)
    assert jobs.runtime.plans, "the loop never launched the job"
    assert jobs.scheduler.stop(2.0), "the loop did not end"
    runtime = jobs.runtime
    assert isinstance(runtime, SlowHalts)
    assert runtime.seen_halted == {p.job_id for p in runtime.plans}  # stop waited for it


def test_a_launch_another_node_made_first_is_not_run_here_and_the_next_job_goes_on(
        jobs: Jobs) -> None:
    assert jobs.scheduler.name == "jobs"  # its stage in /health and the metrics
    taken, free = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
    real = jobs.ledger.submit
    other = JobWrites(jobs.ledger)
    other.node_id = "node-b"

    def beaten(command: Command[Any]) -> Any:
        if isinstance(command, LaunchJob) and command.job_id == taken and \
                command.node == "local":
            jobs.ledger.submit = real  # type: ignore[method-assign]
            assert other.launch(taken, 0, "") == 1  # node-b got there first
        return real(command)

    jobs.ledger.submit = beaten  # type: ignore[method-assign]
    jobs.placement = lambda j, on: on in (None, "local")
    jobs.scheduler.reconcile_once()
    assert [p.job_id for p in jobs.runtime.plans] == [free]  # in the same turn
    assert jobs.store.get(taken).node == "node-b"


def test_a_plan_carries_the_configured_match_limit(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path, **{"jobs.max_matches": 3})
    try:
        jobs.people()
        jobs.search(collection_id="people")
        jobs.scheduler.reconcile_once()
        assert [getattr(p.results, "max_matches", None) for p in jobs.runtime.plans] == [3]
    finally:
        jobs.scheduler.stop(1.0)
        jobs.db.close()


def test_a_landed_launch_waits_while_placement_holds_the_job_back(jobs: Jobs) -> None:
    """Fenced, or briefly out of the group: nothing starts here, and no attempt is lost."""
    job_id = jobs.detect()
    undo = _unacknowledged(jobs, LaunchJob)
    jobs.scheduler.reconcile_once()  # the launch lands as this node's; the ack is lost
    undo()
    jobs.placement = lambda j, on: False
    jobs.scheduler.reconcile_once()
    jobs.scheduler.reconcile_once()
    assert not jobs.runtime.plans
    jobs.placement = lambda j, on: True
    jobs.scheduler.reconcile_once()
    assert [p.attempt for p in jobs.runtime.plans] == [1]
    assert jobs.store.get(job_id).attempt == 1


def test_records_have_an_owner_while_their_processor_or_job_exists(jobs: Jobs) -> None:
    """What the publisher asks before dropping a name's records (kafka.deleted_grace_s)."""
    from streamproc.daemon.parts import record_owners
    from streamproc.processors.registry import ProcessorRegistry

    registry = ProcessorRegistry()
    exists = record_owners(SimpleNamespace(registry=registry),  # type: ignore[arg-type]
                           SimpleNamespace(db=jobs.db))  # type: ignore[arg-type]
    assert not exists("job-1") and not exists("cam")
    jobs.store.insert("job-1", FACE_DETECTION, None, {"Video": {}}, 0.0)
    registry.add(SimpleNamespace(spec=SimpleNamespace(name="cam")))  # type: ignore[arg-type]
    assert exists("job-1") and exists("cam") and not exists("other")
    jobs.store.delete("job-1")
    registry.remove("cam")
    assert not exists("job-1") and not exists("cam")


# ---- mutation survivors of the re-cut (issue 24) -------------------------------------------------
def test_an_unlanded_launch_of_a_job_that_ended_frees_its_slot_at_once(
        jobs: Jobs, caplog: pytest.LogCaptureFixture) -> None:
    first, second = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
    undo = _refused(jobs, LaunchJob)  # sent, and never lands
    jobs.scheduler.reconcile_once()
    undo()
    JobWrites(jobs.ledger).finish(first, None, FAILED, "ended elsewhere", jobs.now)
    with caplog.at_level(logging.DEBUG, "streamproc.jobs.slots"):
        jobs.scheduler.reconcile_once()  # its job is no longer active: the only slot is free
    assert [p.job_id for p in jobs.runtime.plans] == [second]
    assert f"job {first}: slot unconfirmed -> none (its job is no longer active)" in \
        caplog.messages


def test_a_kept_launch_does_not_stop_a_later_lost_one_from_halting(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    jobs = Jobs(tmp_path)
    jobs.scheduler = jobs.restarted(workers=2)
    try:
        kept, lost = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
        jobs.scheduler.reconcile_once()
        assert [p.job_id for p in jobs.runtime.plans] == [kept, lost]
        other = JobWrites(jobs.ledger)
        other.node_id = "node-b"
        assert other.launch(lost, 1, "") == 2
        jobs.placement = lambda j, on: on in (None, "local")
        with caplog.at_level(logging.DEBUG, "streamproc.jobs"):
            jobs.scheduler.reconcile_once()
        assert jobs.runtime.halting == jobs.runtime.plans[1:]
        assert f"job {lost}: slot running -> none (halted: the launch is lost)" in \
            caplog.messages
        assert jobs.running() == [kept]
        assert f"job {lost} is no longer this launch's (attempt 1); halting it" in caplog.messages
    finally:
        jobs.scheduler.stop(1.0)
        jobs.db.close()


def test_a_second_stop_halts_no_launch_again(
        jobs: Jobs, caplog: pytest.LogCaptureFixture) -> None:
    job_id = jobs.detect()
    jobs.scheduler.reconcile_once()
    with caplog.at_level(logging.DEBUG, "streamproc.jobs.slots"):
        assert jobs.scheduler.stop(1.0) and jobs.scheduler.stop(1.0)
    assert jobs.runtime.halting == jobs.runtime.plans  # each halted once
    assert caplog.messages == [f"job {job_id}: slot running -> none (halted: the daemon stops)"]


def _launched_elsewhere_meanwhile(jobs: Jobs) -> None:
    """Placement (read after the turn read the jobs) lets node-b launch every queued job
    first: the turn's rows are one attempt behind, as when another node is quicker."""
    other = JobWrites(jobs.ledger)
    other.node_id = "node-b"

    def placement(job_id: str, on: str | None) -> bool:
        current = jobs.store.get(job_id)
        if current is not None and current.state == QUEUED:
            assert other.launch(job_id, current.attempt, "") == current.attempt + 1
        return True

    jobs.placement = placement


def test_a_refused_launch_fails_only_the_attempt_it_read(jobs: Jobs) -> None:
    jobs.people()
    search = jobs.search(collection_id="people")
    jobs.collections.delete("people")
    _launched_elsewhere_meanwhile(jobs)
    jobs.scheduler.reconcile_once()  # it would FAIL attempt 0; node-b's attempt 1 runs on
    job = jobs.store.get(search)
    assert (job.state, job.attempt, job.node) == (RUNNING, 1, "node-b")


def test_a_stage_that_gave_up_fails_only_the_attempt_it_read(jobs: Jobs) -> None:
    queued = jobs.detect()
    jobs.mailbox.fail_all("analyzer stage failed 6 times within 60 s: RuntimeError")
    _launched_elsewhere_meanwhile(jobs)
    jobs.scheduler.reconcile_once()
    job = jobs.store.get(queued)
    assert (job.state, job.attempt, job.node) == (RUNNING, 1, "node-b")


def test_the_loop_turns_on_its_tick_without_a_wake(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    jobs.scheduler = jobs.restarted(purge_every_s=0.0)
    try:
        old, job_id = jobs.detect(job_tag="o"), jobs.detect(job_tag="n")
        JobWrites(jobs.ledger).finish(old, None, SUCCEEDED, "", jobs.now - 1000)
        JobWrites(jobs.ledger).finish(job_id, None, SUCCEEDED, "", jobs.now)
        jobs.scheduler.start()
        deadline = time.monotonic() + 5
        while jobs.store.get(old) is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # the first turn (woken by those commands) purged it, last
        assert jobs.store.get(old) is None and jobs.store.get(job_id) is not None
        jobs.now += 1000  # past retention; nothing wakes the loop, only its tick
        while jobs.store.get(job_id) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert jobs.store.get(job_id) is None
    finally:
        jobs.scheduler.stop(1.0)
        jobs.db.close()


def test_a_job_logs_its_launch_its_slot_moves_and_its_end(
        jobs: Jobs, caplog: pytest.LogCaptureFixture) -> None:
    done, failed = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
    with caplog.at_level(logging.DEBUG, "streamproc.jobs"):
        jobs.scheduler.reconcile_once()
        jobs.mailbox.job_ended(done, 1, None)
        jobs.scheduler.reconcile_once()
        jobs.mailbox.job_ended(failed, 1, "bad frame")
        jobs.scheduler.reconcile_once()
    shown = jobs.runtime.plans[0].source.shown
    for job_id in (done, failed):
        assert f"job {job_id}: slot none -> running (launched)" in caplog.messages
        assert f"job {job_id} ({FACE_DETECTION} of {shown}) launched, attempt 1" in \
            caplog.messages
    assert f"job {done}: slot running -> none (ended SUCCEEDED)" in caplog.messages
    assert f"job {done} SUCCEEDED" in caplog.messages
    assert f"job {failed} FAILED: bad frame" in caplog.messages


def test_an_outage_logs_the_launch_and_end_not_written_yet(
        jobs: Jobs, caplog: pytest.LogCaptureFixture) -> None:
    first, second = jobs.detect(job_tag="a"), jobs.detect(job_tag="b")
    jobs.scheduler.reconcile_once()
    jobs.mailbox.job_ended(first, 1, None)
    undo = _refused(jobs)
    with caplog.at_level(logging.DEBUG, "streamproc.jobs"):
        jobs.scheduler.reconcile_once()  # the end is not written; the next is not launched
    undo()
    away = "The cluster's state log cannot be reached"
    assert f"job {first}: slot running -> end unwritten (its end is not written yet)" in \
        caplog.messages
    assert f"job {first}: its end (SUCCEEDED) is not written yet: {away}" in caplog.messages
    assert f"job {second}: slot none -> unconfirmed (unacknowledged)" in caplog.messages
    assert f"job {second} not launched yet: {away}" in caplog.messages


def test_a_purge_logs_how_many_jobs_it_deleted(
        jobs: Jobs, caplog: pytest.LogCaptureFixture) -> None:
    for tag in "ab":
        JobWrites(jobs.ledger).finish(jobs.detect(job_tag=tag), None, SUCCEEDED, "", 1.0)
    with caplog.at_level(logging.INFO, "streamproc.jobs.scheduler"):
        assert jobs.scheduler.purge() == 2
    assert caplog.messages == ["deleted 2 jobs older than 100 s"]


def test_an_end_another_node_wrote_first_is_counted_and_told_once(jobs: Jobs) -> None:
    reason = "analyzer stage failed 6 times within 60 s: RuntimeError"
    queued = jobs.detect(notification=channel_of("done"))
    jobs.mailbox.fail_all(reason)
    other = JobWrites(jobs.ledger)
    other.node_id = "node-b"

    def placement(job_id: str, on: str | None) -> bool:  # node-b decides the same end first
        assert other.finish(job_id, 0, FAILED, reason, jobs.now)
        return True

    jobs.placement = placement
    jobs.scheduler.reconcile_once()
    jobs.placement = lambda job_id, on: True
    jobs.scheduler.reconcile_once()
    assert jobs.state(queued) == FAILED
    assert jobs.metric("streamproc_job_finished_total", api=FACE_DETECTION, status="FAILED") == 0
    assert jobs.publisher.sent == []  # node-b's notice, not a second one from here
