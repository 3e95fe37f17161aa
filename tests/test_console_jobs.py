"""The Jobs page: the frame route in process (a fake ConsoleAccess, real clips) and in a
real browser against a real daemon (a face detection job on a shared clip, its timeline,
the frame at a mark, a key that may not read the job)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import cv2
import numpy as np
import pytest
import requests
from conftest import VIDEO
from console_browser import browser  # noqa: F401 - the browser fixture
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from test_console_video import remux_ts

import streamproc.console
from streamproc.config import ObjectsConfig, load_config
from streamproc.console.job_frames import JobFrameRoute, job_frames, jpeg_of
from streamproc.console.routes import Refusals
from streamproc.console.sessions import Session
from streamproc.dataplane.stored.video import StoredVideo
from streamproc.errors import ResourceNotFoundException
from streamproc.metrics import ApiMetrics
from streamproc.storage.objects import ObjectRef, ObjectStore

BOTH = VIDEO / "head-pose-face-detection-female-and-male.mp4"
BUCKET = "vids"
TS_NAME = "both.ts"  # the same clip remuxed to MPEG-TS, whose seeks near the end overshoot


# ---- the console's job kinds are the daemon's -----------------------------------------------
def test_the_console_knows_every_video_job_kind_the_daemon_serves() -> None:
    from streamproc.console.job_frames import FRAME_APIS
    from streamproc.console.job_kinds import MEDIA_JOB_OPERATIONS, VIDEO_JOB_GETS
    from streamproc.console.routes import JOB_OPERATIONS, PAGE_OPERATIONS
    from streamproc.daemon.jobs import job_wires
    from streamproc.jobs.kinds.moderation import ContentModerationJobKind

    wires = job_wires(ContentModerationJobKind(""))
    video = {w.get_operation: w.api for w in wires if w.get_operation not in
             MEDIA_JOB_OPERATIONS}
    assert dict(VIDEO_JOB_GETS) == video
    assert dict(FRAME_APIS) == video
    assert set(JOB_OPERATIONS) == {*video, *MEDIA_JOB_OPERATIONS} <= set(PAGE_OPERATIONS)
    assert {w.get_operation for w in wires} - set(video) == {"GetMediaAnalysisJob"}
    # The page's own table of kinds (titles, result keys): the same operations, same order.
    script = (Path(streamproc.console.__file__).parent / "static" / "jobs.js").read_text()
    table = script.split("const KINDS = {", 1)[1].split("};", 1)[0]
    assert re.findall(r"^  (\w+): \{", table, re.MULTILINE) == list(VIDEO_JOB_GETS)
    # Its drawing of each kind's results: one entry per operation, none falling through.
    drawings = script.split("const DESCRIBE = {", 1)[1].split("\n};", 1)[0]
    assert sorted(re.findall(r"^  (\w+)\(item\) \{", drawings, re.MULTILINE)) == sorted(
        VIDEO_JOB_GETS)


# ---- in process ----------------------------------------------------------------------------
class FakeAccess:
    """ConsoleAccess: a session when the request carries ``x-session: yes``; ``allowed`` ops."""

    def __init__(self, allowed: set[str], registry: CollectorRegistry) -> None:
        self.allowed = allowed
        self.refusals = Refusals(ApiMetrics.create(registry))

    def session_of(self, request: Request) -> Session | None:
        if request.headers.get("x-session") != "yes":
            return None
        return Session("AKIDJOBSUNIT", "csrf", 1e18)

    def allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        return operation in self.allowed


class FakeJobs:
    """JobService.job: the jobs in ``table`` (JobId -> (kind, object name))."""

    def __init__(self, table: dict[str, tuple[str, str]]) -> None:
        self.table = table

    def job(self, job_id: str, api: str) -> Any:
        found = self.table.get(job_id)
        if found is None or found[0] != api:
            raise ResourceNotFoundException(f"No {api} job with JobId {job_id}")
        return SimpleNamespace(request=SimpleNamespace(source=ObjectRef(BUCKET, found[1])))


class App:
    """The frame route as a Starlette app, called in process over ASGI."""

    def __init__(self, root: Path, decoders: int = 2,
                 allowed: frozenset[str] = frozenset({"GetFaceDetection"}),
                 objects: Any = None, copies: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.access = FakeAccess(set(allowed), self.registry)
        jobs = FakeJobs({"job-both": ("FaceDetection", BOTH.name),
                         "job-bad": ("FaceDetection", "unreadable.mp4"),
                         "job-gone": ("FaceDetection", "gone.mp4"),
                         "job-search": ("FaceSearch", BOTH.name),
                         "job-ts": ("FaceDetection", TS_NAME)})
        if objects is None:
            objects = ObjectStore(ObjectsConfig(local_root=root))
        self.frames = JobFrameRoute(jobs, objects, decoders,  # type: ignore[arg-type]
                                    root / "scratch", 10 << 20, self.registry, copies=copies)
        (extra,) = self.frames.routes(self.access)
        self.app = Starlette(routes=[Route(extra.path, extra.endpoint,
                                           methods=list(extra.methods))])

    def get(self, path: str, session: bool = True, method: str = "GET"
            ) -> tuple[int, dict[str, str], bytes]:
        path, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "root_path": "",
                 "headers": [(b"host", b"127.0.0.1")] + ([(b"x-session", b"yes")] if session
                                                         else []),
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        anyio.run(self.app, scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], headers, body

    def count(self, result: str) -> float:
        value = self.registry.get_sample_value("streamproc_console_job_frames_total",
                                               {"result": result})
        return value or 0.0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    objects = tmp_path_factory.mktemp("frames-objects")
    (objects / BUCKET).mkdir()
    shutil.copy(BOTH, objects / BUCKET / BOTH.name)
    (objects / BUCKET / "unreadable.mp4").write_bytes(b"this is not a video\n" * 205)
    remux_ts(BOTH, objects / BUCKET / TS_NAME)
    return objects


def frames_of(path: Path) -> list[tuple[int, np.ndarray]]:
    """Every frame of a clip with its timestamp as the job runner reads it (StoredVideo)."""
    with StoredVideo(path, path.name, 1000.0, 3600.0) as video:  # 1000/s: every frame
        return [(f.timestamp_ms, f.image) for f in video.frames(threading.Event())]


def image(body: bytes) -> np.ndarray:
    decoded = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None, "not a JPEG"
    return decoded


def error(body: bytes) -> tuple[str, str]:
    parsed = json.loads(body)
    return parsed["__type"], parsed.get("Message", parsed.get("message", ""))


URL = "/console/jobs/GetFaceDetection/job-both/frame"


@pytest.mark.unit
def test_the_frame_is_the_first_at_or_after_ms_and_differs_along_the_video(root: Path) -> None:
    app = App(root)
    frames = frames_of(BOTH)
    for ms in (0, 2000, 3190):
        status, headers, body = app.get(f"{URL}?ms={ms}")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        got = image(body)
        t, expected = next((t, f) for t, f in frames if t >= ms)
        assert got.shape == expected.shape == (270, 480, 3)  # under 640: never scaled up
        # JPEG loss only: the frame decoded at t, not one before or after it.
        errors = {t2: float(np.abs(got.astype(int) - f.astype(int)).mean())
                  for t2, f in frames if abs(t2 - t) <= 400}
        assert min(errors, key=errors.__getitem__) == t and errors[t] < 4.0, (ms, errors)
    early, late = image(app.get(f"{URL}?ms=0")[2]), image(app.get(f"{URL}?ms=3190")[2])
    assert float(np.abs(early.astype(int) - late.astype(int)).mean()) > 5.0
    assert app.count("ok") == 3 and app.count("cached") == 2  # the two asked again


@pytest.mark.unit
def test_past_the_end_gives_the_last_frame(root: Path) -> None:
    status, _, body = App(root).get(f"{URL}?ms=3600000")
    assert status == 200
    last = frames_of(BOTH)[-1][1]
    assert float(np.abs(image(body).astype(int) - last.astype(int)).mean()) < 4.0


@pytest.mark.unit
def test_a_mark_near_the_end_of_an_mpeg_ts_video_gets_a_frame_not_a_422(root: Path) -> None:
    app = App(root)
    frames = frames_of(root / BUCKET / TS_NAME)
    last = frames[-1][0]
    for ms in (last - 40, last, last + 1000):
        status, _, body = app.get(f"/console/jobs/GetFaceDetection/job-ts/frame?ms={ms}")
        assert status == 200, (ms, body[:200])
        expected = next((f for t, f in frames if t >= ms), frames[-1][1])
        assert float(np.abs(image(body).astype(int) - expected.astype(int)).mean()) < 4.0, ms
    assert app.count("undecodable") == 0


@pytest.mark.unit
def test_no_session_unknown_api_and_a_key_without_the_operation_are_refused(root: Path
                                                                            ) -> None:
    app = App(root)
    status, _, body = app.get(f"{URL}?ms=0", session=False)
    assert status == 403 and error(body) == ("AccessDeniedException",
                                             "No console session: sign in at /console/")
    status, _, body = app.get("/console/jobs/GetMediaAnalysisJob/job-both/frame?ms=0")
    assert status == 404 and error(body)[0] == "ResourceNotFoundException"
    status, _, body = app.get("/console/jobs/GetFaceSearch/job-search/frame?ms=0")
    assert status == 403
    code, message = error(body)
    assert code == "AccessDeniedException" and "rekognition:GetFaceSearch" in message
    assert app.count("denied") == 1 and app.count("no_session") == 1


@pytest.mark.unit
@pytest.mark.parametrize("query", ["", "?ms=", "?ms=abc", "?ms=-5", "?ms=1e3", "?ms=1.5",
                                   "?ms=%C2%B2", "?ms=99999999999"])
def test_a_bad_or_missing_ms_is_a_400_that_says_why(root: Path, query: str) -> None:
    app = App(root)
    status, _, body = app.get(f"{URL}{query}")
    code, message = error(body)
    assert status == 400 and code == "InvalidParameterException"
    assert "ms" in message and "milliseconds" in message
    assert app.count("bad_request") == 1


@pytest.mark.unit
def test_an_unknown_job_a_missing_video_and_an_undecodable_one_are_4xx(root: Path) -> None:
    app = App(root, allowed=frozenset({"GetFaceDetection", "GetFaceSearch"}))
    for path in ("/console/jobs/GetFaceDetection/nope/frame?ms=0",
                 "/console/jobs/GetFaceDetection/job-search/frame?ms=0",  # another kind's
                 "/console/jobs/GetFaceDetection/job-gone/frame?ms=0"):
        status, _, body = app.get(path)
        assert status == 404, path
        assert error(body)[0] in ("ResourceNotFoundException", "InvalidS3ObjectException")
    status, _, body = app.get("/console/jobs/GetFaceDetection/job-bad/frame?ms=0")
    code, message = error(body)
    assert status == 422 and code == "InvalidParameterException"
    assert "vids/unreadable.mp4" in message and str(root) not in message  # no local path
    assert app.count("undecodable") == 1


@pytest.mark.unit
def test_beyond_frame_decoders_a_request_is_refused_not_queued(root: Path) -> None:
    app = App(root, decoders=1)
    assert app.frames._slots.acquire(blocking=False)  # one decode under way
    try:
        status, headers, body = app.get(f"{URL}?ms=1000")
        code, message = error(body)
        assert status == 429 and code == "LimitExceededException"
        assert headers["retry-after"] == "1"
        assert "console.frame_decoders" in message
    finally:
        app.frames._slots.release()
    assert app.get(f"{URL}?ms=1000")[0] == 200
    assert app.count("busy") == 1 and app.count("ok") == 1


class HugeS3Objects:
    """An S3-backed store holding a 10 GiB video: size() says so; any copy is a failure."""

    def __init__(self) -> None:
        self.copies = 0

    def size(self, ref: ObjectRef) -> int:
        return 10 * 1024 ** 3

    @contextmanager
    def local_file(self, *args: Any) -> Iterator[Path | None]:
        self.copies += 1
        raise AssertionError("a frame must not copy an object over frame_max_copy_bytes")


@pytest.mark.unit
def test_an_s3_video_over_frame_max_copy_bytes_is_refused_without_a_copy(root: Path) -> None:
    objects = HugeS3Objects()
    app = App(root, objects=objects, copies=True)
    status, _, body = app.get(f"{URL}?ms=0")
    code, message = error(body)
    assert status == 400 and code == "VideoTooLargeException"
    assert "console.frame_max_copy_bytes" in message and str(10 << 20) in message
    assert objects.copies == 0 and app.count("too_large") == 1


@pytest.mark.unit
def test_head_is_405_and_decodes_nothing(root: Path) -> None:
    app = App(root, decoders=1)
    status, headers, _ = app.get(f"{URL}?ms=1000", method="HEAD")
    assert status == 405 and headers["allow"] == "GET"
    assert app.count("method") == 1 and app.count("ok") == 0
    assert app.frames._cache.get(("GetFaceDetection", "job-both", 1000)) is None


class BlockingObjects:
    """A local store whose copy waits until ``go`` is set, saying when it has started."""

    def __init__(self, root: Path) -> None:
        self.inner = ObjectStore(ObjectsConfig(local_root=root))
        self.started, self.go = threading.Event(), threading.Event()
        self.stop_seen: threading.Event | None = None

    @contextmanager
    def local_file(self, ref: ObjectRef, scratch: Path, max_bytes: int,
                   stop: threading.Event) -> Iterator[Path | None]:
        self.stop_seen = stop
        self.started.set()
        while not (self.go.is_set() or stop.is_set()):
            self.go.wait(0.01)
        with self.inner.local_file(ref, scratch, max_bytes, stop) as path:
            yield None if stop.is_set() else path


@pytest.mark.unit
def test_close_stops_a_copy_under_way_and_refuses_new_frames(root: Path) -> None:
    objects = BlockingObjects(root)
    app = App(root, decoders=1, objects=objects)
    answer: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: answer.update(got=app.get(f"{URL}?ms=1000")))
    worker.start()
    assert objects.started.wait(10)
    app.frames.close()
    worker.join(10)
    assert not worker.is_alive() and answer["got"][0] == 503
    assert error(answer["got"][2])[0] == "LimitExceededException"
    assert app.get(f"{URL}?ms=2000")[0] == 503 and app.count("stopped") == 2
    assert app.frames._slots.acquire(blocking=False)  # the stopped decode gave its slot back


def request_of(path: str) -> Request:
    path, _, query = path.partition("?")
    request = Request({"type": "http", "method": "GET", "path": path, "query_string":
                       query.encode(), "headers": [(b"x-session", b"yes")], "path_params": {
                           "api": "GetFaceDetection", "job_id": "job-both"}})
    return request


@pytest.mark.unit
def test_a_large_frame_is_scaled_to_640_on_its_longest_side() -> None:
    wide = image(jpeg_of(np.zeros((720, 1280, 3), np.uint8)))
    tall = image(jpeg_of(np.zeros((1920, 1080, 3), np.uint8)))
    assert wide.shape[:2] == (360, 640) and tall.shape[:2] == (640, 360)


@pytest.mark.unit
def test_the_factory_is_off_with_the_console_and_cleans_its_scratch(tmp_path: Path) -> None:
    leftover = (tmp_path / "scratch" / "console-frames"
                / f"{socket.gethostname()}-{os.getpid()}" / "object-x")
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x")
    config = load_config(None, {"storage.data_dir": str(tmp_path)})
    assert config.console.frame_decoders == 2
    objects = ObjectStore(config.objects)
    made = job_frames(config, FakeJobs({}), objects, CollectorRegistry())  # type: ignore[arg-type]
    assert made is not None and not leftover.exists()
    off = load_config(None, {"storage.data_dir": str(tmp_path), "console.enabled": False})
    assert job_frames(off, FakeJobs({}), objects, CollectorRegistry()) is None  # type: ignore[arg-type]


@pytest.mark.e2e
def test_a_video_in_s3_is_copied_for_the_frame_and_the_copy_removed(tmp_path: Path) -> None:
    from s3servers import moto_server

    with moto_server() as s3:
        s3.make_bucket(BUCKET)
        s3.client().upload_file(str(BOTH), BUCKET, BOTH.name)
        app = App(tmp_path, objects=ObjectStore(s3.objects()), copies=True)
        status, _, body = app.get(f"{URL}?ms=2000")
        assert status == 200
        t, expected = next((t, f) for t, f in frames_of(BOTH) if t >= 2000)
        assert float(np.abs(image(body).astype(int) - expected.astype(int)).mean()) < 4.0
        assert list((tmp_path / "scratch").glob("*")) == []  # the whole-object copy is gone
        status, _, body = app.get("/console/jobs/GetFaceDetection/job-gone/frame?ms=0")
        assert status == 404 and error(body)[0] == "InvalidS3ObjectException"


# ---- in a real browser ---------------------------------------------------------------------
ADMIN_ID, ADMIN_SECRET = "AKIDJOBSCONSOLEADMIN", "admin/jobs+SECRET-1"
NOFACES_ID, NOFACES_SECRET = "AKIDJOBSCONSOLENOFCE", "nofaces/jobs+SECRET-2"
POLICIES = {NOFACES_ID: {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["rekognition:List*", "rekognition:Describe*",
                                   "rekognition:GetFaceSearch"], "Resource": "*"}]}}
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def jobs_daemon(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Iterator[Any]:
    from console_browser import keyed_daemon

    home = tmp_path_factory.mktemp("console-jobs")
    d = keyed_daemon(home, {ADMIN_ID: ADMIN_SECRET, NOFACES_ID: NOFACES_SECRET}, POLICIES,
                     **{"objects.local_root": str(root)})
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def detection(jobs_daemon: Any) -> dict[str, Any]:
    from console_browser import keyed_client
    from jobs_helpers import wait_job

    rek = keyed_client(jobs_daemon, ADMIN_ID, ADMIN_SECRET)
    job_id = rek.start_face_detection(Video={"S3Object": {"Bucket": BUCKET,
                                                          "Name": BOTH.name}})["JobId"]
    done = wait_job(rek.get_face_detection, job_id, timeout=60.0, MaxResults=1000)
    assert done["JobStatus"] == "SUCCEEDED", done
    return done


def _sign_in(page: Any, daemon: Any, key: str, secret: str) -> None:
    page.goto(f"{daemon.endpoint}/console/")
    page.wait_for_selector("body[data-ready=login]", timeout=WAIT_MS)
    page.get_by_label("Access key ID").fill(key)
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("body[data-ready=overview]", timeout=WAIT_MS)


@pytest.mark.e2e
def test_a_face_detection_job_on_the_timeline_shows_the_frame_at_a_mark(
        jobs_daemon: Any, detection: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from console_browser import RecordedPage
    from test_console import assert_controls_labelled

    job_id = detection["JobId"]
    times = sorted({f["Timestamp"] for f in detection["Faces"]})
    assert times
    p = RecordedPage(browser)
    try:
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        # Opened by id through the form (labelled select and field), as a person would.
        p.page.evaluate("document.body.dataset.ready = ''")
        p.page.get_by_role("link", name="Jobs").click()
        p.page.wait_for_selector("body[data-ready=jobs]", timeout=WAIT_MS)
        p.page.get_by_label("Job kind").select_option("GetFaceDetection")
        p.page.get_by_label("Job ID").fill(job_id)
        p.page.evaluate("document.body.dataset.ready = ''")
        p.page.get_by_role("button", name="Open", exact=True).click()
        p.page.wait_for_selector("body[data-ready=jobs] #timeline", timeout=WAIT_MS)
        assert "SUCCEEDED" in p.page.locator("#job-status").inner_text()
        assert "0:04.480" in p.page.locator("#job-status").inner_text()  # DurationMillis
        assert "480 × 270" in p.page.locator("#job-status").inner_text()
        marks = p.page.locator("#timeline .mark")
        assert marks.count() == len(times)  # one mark per timestamp in the Faces lane
        shown = sorted(int(m) for m in marks.evaluate_all("ms => ms.map(m => m.dataset.ms)"))
        assert shown == times
        # Keyboard: Tab to a mark, Enter shows the frame there with the faces' boxes.
        chosen = times[len(times) // 2]
        p.page.locator("#recent a").last.focus()  # the control just before the timeline
        for _ in range(len(times) // 2 + 1):
            p.page.keyboard.press("Tab")
        focused = p.page.evaluate("document.activeElement.dataset.ms")
        assert focused == str(chosen)
        p.page.keyboard.press("Enter")
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        img = p.page.locator("#frame-image")
        assert img.evaluate("i => i.naturalWidth") == 480
        assert img.get_attribute("src").endswith(f"/frame?ms={chosen}")
        faces_then = [f for f in detection["Faces"] if f["Timestamp"] == chosen]
        assert p.page.locator("#frame-view .job-box").count() == len(faces_then)
        box = faces_then[0]["Face"]["BoundingBox"]
        rect = p.page.locator("#frame-view .job-box").first
        assert abs(float(rect.get_attribute("x")) - box["Left"]) < 1e-6
        assert f"{len(faces_then)} result" in p.page.locator(".frame-details h3").inner_text()
        assert p.page.locator("#recent").get_by_role("link").count() == 1  # this tab's list
        assert_controls_labelled(p)
        for control in p.page.locator("#timeline .mark").all()[:5]:
            assert control.get_attribute("aria-label").startswith("Faces at ")
        p.screenshot("job-timeline")
        assert p.hosts() == {"127.0.0.1"}
    finally:
        p.close()


@pytest.fixture(scope="module")
def face_search(jobs_daemon: Any) -> dict[str, Any]:
    from console_browser import keyed_client
    from jobs_helpers import wait_job
    from streams import MAN, WOMAN, enrol

    rek = keyed_client(jobs_daemon, ADMIN_ID, ADMIN_SECRET)
    rek.create_collection(CollectionId="jobs-people")
    assert enrol(rek, "jobs-people", WOMAN, "woman-W", every=12) >= 1
    assert enrol(rek, "jobs-people", MAN, "man-M", every=12) >= 1
    job_id = rek.start_face_search(Video={"S3Object": {"Bucket": BUCKET, "Name": BOTH.name}},
                                   CollectionId="jobs-people")["JobId"]
    done = wait_job(rek.get_face_search, job_id, timeout=60.0, MaxResults=1000)
    assert done["JobStatus"] == "SUCCEEDED", done
    return done


@pytest.mark.e2e
def test_face_search_matches_are_lanes_named_by_external_image_id(
        jobs_daemon: Any, face_search: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from console_browser import RecordedPage

    job_id = face_search["JobId"]
    named = {m["Face"]["ExternalImageId"] for p in face_search["Persons"]
             for m in p.get("FaceMatches", [])[:1]}
    assert named == {"woman-W", "man-M"}
    p = RecordedPage(browser)
    try:
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetFaceSearch&id={job_id}")
        p.page.wait_for_selector("#timeline .mark", timeout=WAIT_MS)
        lanes = set(p.page.locator("#timeline .lane-label").all_text_contents())
        assert named <= lanes
        woman = [q for q in face_search["Persons"] if q.get("FaceMatches")
                 and q["FaceMatches"][0]["Face"]["ExternalImageId"] == "woman-W"]
        at = woman[0]["Timestamp"]
        mark = p.page.get_by_role("button", name="woman-W at ", exact=False).first
        assert mark.get_attribute("data-ms") == str(at)  # marks in time order, first is hers
        mark.click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        assert p.page.locator("#frame-image").evaluate("i => i.naturalWidth") == 480
        details = p.page.locator(".frame-details").inner_text()
        similarity = woman[0]["FaceMatches"][0]["Similarity"]
        assert f"woman-W: similarity {similarity:.1f}%" in details
        assert p.page.locator("#frame-view .job-box").count() == 1
        p.screenshot("job-face-search")
    finally:
        p.close()


@pytest.mark.e2e
def test_media_analysis_jobs_are_listed_paged_and_opened(
        jobs_daemon: Any, browser: Any) -> None:  # noqa: F811
    """The table and detail as drawn from ListMediaAnalysisJobs / GetMediaAnalysisJob
    answers (served here by the test: a real media job needs the moderation models)."""
    from console_browser import RecordedPage

    def job(n: int, status: str = "SUCCEEDED") -> dict[str, Any]:
        return {"JobId": f"media-{n}", "JobName": f"batch-{n}", "Status": status,
                "CreationTimestamp": 1_800_000_000 + n, "OperationsConfig": {
                    "DetectModerationLabels": {"MinConfidence": 50}},
                **({"FailureDetails": {"Code": "INVALID_MANIFEST",
                                       "Message": "The manifest has no line"}}
                   if status == "FAILED" else {})}

    pages = {None: {"MediaAnalysisJobs": [job(1), job(2, "FAILED")], "NextToken": "t2"},
             "t2": {"MediaAnalysisJobs": [job(3, "IN_PROGRESS")]}}
    asked: list[dict[str, Any]] = []

    def listed(route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        asked.append(body)
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps(pages[body.get("NextToken")]))

    def detail(route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        route.fulfill(status=200, content_type="application/json", body=json.dumps({
            **job(int(body["JobId"].split("-")[1])), "ManifestSummary": {
                "S3Object": {"Bucket": "out", "Name": "summary.jsonl"}}}))

    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/ListMediaAnalysisJobs", listed)
        p.page.route("**/console/api/GetMediaAnalysisJob", detail)
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs")
        p.page.wait_for_selector("#media-jobs tbody tr", timeout=WAIT_MS)
        assert asked[0] == {"MaxResults": 25}
        headers = p.page.locator("#media-jobs thead th").all_inner_texts()
        assert headers[:3] == ["JobId", "JobName", "Status"] and "FailureDetails" in headers
        failed = p.page.locator('#media-jobs tr[data-job="media-2"]')
        assert "The manifest has no line" in failed.inner_text()
        p.page.get_by_role("button", name="Open media analysis job media-1").click()
        p.page.wait_for_selector("#media-detail:not([hidden])", timeout=WAIT_MS)
        shown = p.page.locator("#media-detail").inner_text()
        assert "summary.jsonl" in shown and "MinConfidence" in shown
        p.page.get_by_role("button", name="Next").click()
        p.page.wait_for_selector('#media-jobs tr[data-job="media-3"]', timeout=WAIT_MS)
        assert asked[-1] == {"MaxResults": 25, "NextToken": "t2"}
        assert p.page.locator("#media-jobs tbody tr").count() == 1
        assert "null" not in p.page.locator("main").inner_text()
    finally:
        p.close()


@pytest.mark.e2e
def test_moderation_labels_are_lanes_and_a_long_result_list_is_capped_and_said(
        jobs_daemon: Any, browser: Any) -> None:  # noqa: F811
    """Lanes by ModerationLabel Name, and the 10-page cap, from GetContentModeration answers
    served by the test (a real moderation job needs the moderation models)."""
    from console_browser import RecordedPage

    pages: list[dict[str, Any]] = []

    def moderation(route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        pages.append(body)
        n = int(body.get("NextToken", "0"))
        labels = [{"Timestamp": (n * 1000 + i) * 100, "ModerationLabel": {
            "Name": "Weapons" if i % 2 else "Smoking", "ParentName": "", "Confidence": 88.5}}
            for i in range(1000)]
        route.fulfill(status=200, content_type="application/json", body=json.dumps({
            "JobStatus": "SUCCEEDED", "JobId": "mod-1", "VideoMetadata": {
                "DurationMillis": 3_600_000, "FrameRate": 25.0, "FrameWidth": 1280,
                "FrameHeight": 720}, "ModerationLabels": labels, "NextToken": str(n + 1)}))

    ok, jpeg = cv2.imencode(".jpg", np.full((360, 640, 3), 128, np.uint8))
    assert ok
    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/GetContentModeration", moderation)
        p.page.route("**/console/jobs/GetContentModeration/mod-1/frame?ms=*", lambda route:
                     route.fulfill(status=200, content_type="image/jpeg", body=jpeg.tobytes()))
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetContentModeration&id=mod-1")
        p.page.wait_for_selector("#timeline", timeout=WAIT_MS)
        assert len(pages) == 10 and pages[0] == {"JobId": "mod-1", "MaxResults": 1000}
        assert p.page.locator("#capped").inner_text().startswith("Showing the first 10000")
        lanes = p.page.locator("#timeline .lane-label").all_text_contents()
        assert lanes == ["Smoking", "Weapons"]
        # 10,000 results in the first 1,000 s of an hour: one mark per lane and slot of the
        # axis (30 s each), not 10,000 overlapping ones.
        assert p.page.locator("#timeline .mark").count() == 2 * 34
        mark = p.page.get_by_role("button", name="Weapons at 0:00.100")
        assert mark.get_attribute("aria-label") == "Weapons at 0:00.100, 149 more until 0:29.900"
        mark.click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        assert "Weapons: confidence 88.5%" in p.page.locator(".frame-details").inner_text()
        assert p.page.locator("#frame-view .job-box").count() == 0  # no box: the whole frame
        assert "149 later results" in p.page.locator(".frame-details").inner_text()
        p.screenshot("job-moderation-capped")
        # A frame the server cannot give: its error shown plainly, not a broken image alone.
        p.page.unroute("**/console/jobs/GetContentModeration/mod-1/frame?ms=*")
        p.page.route("**/console/jobs/GetContentModeration/mod-1/frame?ms=*", lambda route:
                     route.fulfill(status=422, content_type="application/json", body=json.dumps(
                         {"__type": "InvalidParameterException",
                          "Message": "No frame: decoding vids/x.mp4 failed"})))
        p.page.get_by_role("button", name="Smoking at 0:00.000").click()
        p.page.wait_for_selector("#frame-view[data-frame=error]", timeout=WAIT_MS)
        alert = p.page.get_by_role("alert")
        assert "InvalidParameterException" in alert.inner_text()
        assert "decoding vids/x.mp4 failed" in alert.inner_text()
    finally:
        p.close()


def _served_frame(page: Any, api: str, job_id: str) -> None:
    """Frames of ``job_id`` answered by the test: a grey 640x360 JPEG."""
    ok, jpeg = cv2.imencode(".jpg", np.full((360, 640, 3), 128, np.uint8))
    assert ok
    page.route(f"**/console/jobs/{api}/{job_id}/frame?ms=*", lambda route: route.fulfill(
        status=200, content_type="image/jpeg", body=jpeg.tobytes()))


def _answer(items_key: str, job_id: str, items: list[dict[str, Any]]) -> Any:
    def fulfil(route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps({
            "JobStatus": "SUCCEEDED", "JobId": job_id, "VideoMetadata": {
                "DurationMillis": 4000, "FrameRate": 25.0, "FrameWidth": 640,
                "FrameHeight": 360}, items_key: items}))
    return fulfil


def _celebrity(ms: int, cid: str, name: str, left: float) -> dict[str, Any]:
    box = {"Width": 0.2, "Height": 0.4, "Left": left, "Top": 0.1}
    return {"Timestamp": ms, "Celebrity": {"Id": cid, "Name": name, "Urls": [],
                                           "Confidence": 91.25, "BoundingBox": box,
                                           "Face": {"BoundingBox": box, "Confidence": 99.0}}}


@pytest.mark.e2e
def test_a_celebrity_job_has_a_lane_per_celebrity_id_and_boxes_on_its_frame(
        jobs_daemon: Any, browser: Any) -> None:  # noqa: F811
    """GetCelebrityRecognition answers served by the test (a gallery needs enrolled users):
    one lane per Id, even for two celebrities of one Name, and each face's box."""
    from console_browser import RecordedPage

    items = [_celebrity(0, "W1", "Woman W", 0.1), _celebrity(0, "M1", "M1", 0.6),
             _celebrity(400, "W1", "Woman W", 0.12), _celebrity(800, "W2", "Woman W", 0.3)]
    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/GetCelebrityRecognition",
                     _answer("Celebrities", "celeb-1", items))
        _served_frame(p.page, "GetCelebrityRecognition", "celeb-1")
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetCelebrityRecognition"
                    "&id=celeb-1")
        p.page.wait_for_selector("#timeline", timeout=WAIT_MS)
        assert p.page.locator("#job-title").inner_text() == (
            "Celebrity recognition job celeb-1")
        lanes = p.page.locator("#timeline .lane-label").all_text_contents()
        assert lanes == ["M1", "Woman W (W1)", "Woman W (W2)"]
        assert p.page.locator("#timeline .mark").count() == 4
        p.page.get_by_role("button", name="Woman W (W1) at 0:00.000").click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        details = p.page.locator(".frame-details").inner_text()
        assert "Woman W (Id W1): confidence 91.3%" in details
        box = p.page.locator("#frame-view .job-box")
        assert box.count() == 1 and box.get_attribute("x") == "0.1"
        assert p.page.get_by_label("Job kind").locator(
            "option[value=GetCelebrityRecognition]").count() == 1
        p.screenshot("job-celebrities")
    finally:
        p.close()


@pytest.mark.e2e
def test_a_celebritys_urls_are_shown_and_its_face_box_stands_in_for_a_missing_box(
        jobs_daemon: Any, browser: Any) -> None:  # noqa: F811
    """The celebrity drawing, not another kind's: Urls listed, and Face.BoundingBox drawn
    where Celebrity.BoundingBox is absent (a box distinct from any Celebrity.BoundingBox)."""
    from console_browser import RecordedPage

    with_urls = _celebrity(0, "W1", "Woman W", 0.1)
    with_urls["Celebrity"]["Urls"] = ["www.example.com/woman-w"]
    face_only = _celebrity(400, "M1", "Man M", 0.6)
    del face_only["Celebrity"]["BoundingBox"]
    face_only["Celebrity"]["Face"]["BoundingBox"] = {"Width": 0.15, "Height": 0.3,
                                                     "Left": 0.55, "Top": 0.2}
    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/GetCelebrityRecognition",
                     _answer("Celebrities", "celeb-2", [with_urls, face_only]))
        _served_frame(p.page, "GetCelebrityRecognition", "celeb-2")
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetCelebrityRecognition"
                    "&id=celeb-2")
        p.page.wait_for_selector("#timeline", timeout=WAIT_MS)
        p.page.get_by_role("button", name="Woman W (W1) at 0:00.000").click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        assert "More: www.example.com/woman-w" in p.page.locator(".frame-details").inner_text()
        p.page.get_by_role("button", name="Man M (M1) at 0:00.400").click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        box = p.page.locator("#frame-view .job-box")
        assert box.count() == 1
        assert (box.get_attribute("x"), box.get_attribute("width")) == ("0.55", "0.15")
    finally:
        p.close()


@pytest.mark.e2e
def test_a_person_tracking_job_has_a_lane_per_person_index(
        jobs_daemon: Any, browser: Any) -> None:  # noqa: F811
    """GetPersonTracking answers served by the test: one lane per Person.Index, its box and
    whether a face was found."""
    from console_browser import RecordedPage

    def person(ms: int, index: int, left: float, face: bool) -> dict[str, Any]:
        box = {"Width": 0.2, "Height": 0.6, "Left": left, "Top": 0.2}
        found = {"Face": {"BoundingBox": box, "Confidence": 98.0}} if face else {}
        return {"Timestamp": ms, "Person": {"Index": index, "BoundingBox": box, **found}}

    items = [person(0, 0, 0.1, True), person(0, 1, 0.5, False), person(500, 0, 0.12, True),
             person(1000, 1, 0.52, False)]
    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/GetPersonTracking", _answer("Persons", "pt-1", items))
        _served_frame(p.page, "GetPersonTracking", "pt-1")
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetPersonTracking&id=pt-1")
        p.page.wait_for_selector("#timeline", timeout=WAIT_MS)
        assert p.page.locator("#job-title").inner_text() == "Person tracking job pt-1"
        assert p.page.locator("#timeline .lane-label").all_text_contents() == [
            "Person 0", "Person 1"]
        assert p.page.locator("#timeline .mark").count() == 4
        p.page.get_by_role("button", name="Person 1 at 0:01.000").click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        details = p.page.locator(".frame-details").inner_text()
        assert "Person 1" in details and "face found" not in details
        box = p.page.locator("#frame-view .job-box")
        assert box.count() == 1 and box.get_attribute("x") == "0.52"
    finally:
        p.close()


@pytest.mark.e2e
def test_a_label_job_has_a_lane_per_label_name_and_a_box_per_instance(
        jobs_daemon: Any, browser: Any) -> None:  # noqa: F811
    """GetLabelDetection answers served by the test: lanes by Label Name, every Instance's
    box on the frame, and a SEGMENTS item (no Timestamp) drawn at its start."""
    from console_browser import RecordedPage

    def label(name: str, boxes: list[float]) -> dict[str, Any]:
        return {"Name": name, "Confidence": 77.0, "Parents": [{"Name": "Thing"}],
                "Instances": [{"BoundingBox": {"Width": 0.1, "Height": 0.1, "Left": x,
                                               "Top": 0.2}, "Confidence": 70.0}
                              for x in boxes]}

    items = [{"Timestamp": 200, "Label": label("Person", [0.1, 0.5])},
             {"Timestamp": 200, "Label": label("Chair", [])},
             {"StartTimestampMillis": 1000, "EndTimestampMillis": 2000,
              "DurationMillis": 1000, "Label": label("Chair", [])}]
    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/GetLabelDetection", _answer("Labels", "lab-1", items))
        _served_frame(p.page, "GetLabelDetection", "lab-1")
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetLabelDetection&id=lab-1")
        p.page.wait_for_selector("#timeline", timeout=WAIT_MS)
        assert p.page.locator("#timeline .lane-label").all_text_contents() == ["Chair",
                                                                               "Person"]
        assert p.page.get_by_role("button", name="Chair at 0:01.000").count() == 1
        p.page.get_by_role("button", name="Person at 0:00.200").click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        assert p.page.locator("#frame-view .job-box").count() == 2
        assert "Person: confidence 77.0%, 2 instances (under Thing)" in p.page.locator(
            ".frame-details").inner_text()
    finally:
        p.close()


@pytest.mark.e2e
def test_a_running_job_says_so_and_is_read_again_until_it_ends(
        jobs_daemon: Any, browser: Any) -> None:  # noqa: F811
    """IN_PROGRESS, then FAILED with its StatusMessage (answers served by the test)."""
    from console_browser import RecordedPage
    from playwright.sync_api import expect

    answers = [{"JobStatus": "IN_PROGRESS", "JobId": "run-1"},
               {"JobStatus": "FAILED", "JobId": "run-1",
                "StatusMessage": "Unsupported codec/format: vids/x.mp4 cannot be read"}]
    reads: list[int] = []

    def get(route: Any) -> None:
        reads.append(1)
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps(answers[min(len(reads) - 1, 1)]))

    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/GetFaceDetection", get)
        _sign_in(p.page, jobs_daemon, ADMIN_ID, ADMIN_SECRET)
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetFaceDetection&id=run-1")
        status = p.page.locator("#job-status")
        expect(status).to_contain_text("IN_PROGRESS", timeout=WAIT_MS)
        assert "no percentage" in status.inner_text()
        expect(status).to_contain_text("FAILED", timeout=WAIT_MS)  # read again by itself
        assert "cannot be read" in status.inner_text()
        assert p.page.locator("#timeline").count() == 0
        assert len(reads) == 2
    finally:
        p.close()


@pytest.mark.e2e
def test_a_key_without_get_face_detection_is_refused_plainly_and_gets_no_frame(
        jobs_daemon: Any, detection: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from console_browser import RecordedPage

    job_id = detection["JobId"]
    p = RecordedPage(browser)
    try:
        _sign_in(p.page, jobs_daemon, NOFACES_ID, NOFACES_SECRET)
        p.page.evaluate("document.body.dataset.ready = ''")
        p.page.goto(f"{jobs_daemon.endpoint}/console/#/jobs?api=GetFaceDetection&id={job_id}")
        p.page.wait_for_selector("body[data-ready=jobs]", timeout=WAIT_MS)
        alert = p.page.get_by_role("alert")
        alert.wait_for(state="visible", timeout=WAIT_MS)
        text = alert.inner_text()
        assert "AccessDeniedException" in text and "rekognition:GetFaceDetection" in text
        assert p.page.locator("#timeline").count() == 0
        frame = p.context.request.get(
            f"{jobs_daemon.endpoint}/console/jobs/GetFaceDetection/{job_id}/frame?ms=0")
        assert frame.status == 403 and frame.json()["__type"] == "AccessDeniedException"
        # Without any session: 403 too.
        bare = requests.get(f"{jobs_daemon.endpoint}/console/jobs/GetFaceDetection/"
                            f"{job_id}/frame?ms=0", timeout=5)
        assert bare.status_code == 403
        p.screenshot("job-refused")
    finally:
        p.close()


@pytest.mark.e2e
def test_the_daemons_stop_closes_the_job_frames_before_the_api_server(tmp_path: Path) -> None:
    from conftest import make_config

    from streamproc.daemon import Daemon

    d = Daemon(make_config(tmp_path / "data"))
    d.start()
    frames = [p for p in d._console_parts if isinstance(p, JobFrameRoute)]
    assert len(frames) == 1 and not frames[0]._stop.is_set()
    steps = [what for what, _ in d._stop_steps(1.0)]
    assert steps.index("console part JobFrameRoute") < steps.index("API server")
    d.stop()
    assert frames[0]._stop.is_set()  # copies and decodes under way stop at their next chunk
