"""The console's overview and processors list: ``/console/stats`` and the pages that poll it.

Unit: the snapshot read from a real registry the data plane's sensors count into, and its
key filtering through a fake ConsoleAccess. End to end (Debian's Chromium, a real daemon with
auth on): the overview's provider, stages and a sparkline that gains points and stops polling
when left; the processors list paged 25 at a time with Next / Previous and links to the
detail page; a read-only key sees no Create link; a collection's users paged apart from its faces.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import requests
from console_browser import (  # noqa: F401 - browser, page: fixtures
    RecordedPage,
    browser,
    keyed_client,
    keyed_daemon,
    page,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from prometheus_client import CollectorRegistry
from starlette.requests import Request

from streamproc.console.extension import ExtraRoute
from streamproc.console.routes import Refusals
from streamproc.console.sessions import Session
from streamproc.console.stats import PATH, MetricsSnapshot
from streamproc.metrics import ApiMetrics, ProcessorMetrics

WAIT_MS = 15_000


# Each processor's collection, as the daemon's collection_of tells it.
COLLECTION_OF = {"door": "staff", "lobby": "visitors"}


class FakeAccess:
    """A session for requests with an ``x-key`` header; the key may describe ``visible``.

    ``faces``: the collections each key may ListFaces in (None: every collection).
    """

    def __init__(self, visible: dict[str, set[str]],
                 faces: dict[str, set[str]] | None = None) -> None:
        self.visible = visible
        self.faces = faces
        self.metrics = ApiMetrics.create(CollectorRegistry())
        self.refusals = Refusals(self.metrics)
        self.asked: list[tuple[str, str, dict[str, Any]]] = []

    def session_of(self, request: Request) -> Session | None:
        key = request.headers.get("x-key")
        return Session(key, "csrf", time.time() + 60) if key else None

    def allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        key = session.key_id or ""
        self.asked.append((key, operation, params))
        if operation == "ListFaces":
            return self.faces is None or params.get("CollectionId") in self.faces.get(key, set())
        return operation == "DescribeStreamProcessor" and \
            params.get("Name") in self.visible.get(key, set())


def snapshots(registry: CollectorRegistry) -> MetricsSnapshot:
    return MetricsSnapshot(registry, COLLECTION_OF.get)


def _get(route: ExtraRoute, key: str | None) -> tuple[int, dict[str, Any]]:
    headers = [(b"x-key", key.encode())] if key else []
    scope = {"type": "http", "method": "GET", "path": PATH, "headers": headers,
             "query_string": b""}
    response = anyio.run(route.endpoint, Request(scope))
    return response.status_code, json.loads(bytes(response.body))


@pytest.fixture
def counted() -> tuple[CollectorRegistry, ProcessorMetrics]:
    registry = CollectorRegistry()
    metrics = ProcessorMetrics.create(registry)
    door, lobby = metrics.sensor("door"), metrics.sensor("lobby")
    for _ in range(5):
        door.frame_analysed(faces=1, matched=0)
    door.frame_analysed(faces=2, matched=2)
    for seconds in (0.1, 0.3):
        door.observe_latency(seconds)
    for _ in range(3):
        lobby.frame_analysed(faces=0, matched=0)
    return registry, metrics


@pytest.mark.unit
def test_the_snapshot_reads_the_processors_counters_and_last_match(
        counted: tuple[CollectorRegistry, ProcessorMetrics]) -> None:
    registry, _ = counted
    access = FakeAccess({"ADMIN": {"door", "lobby"}})
    (route,) = snapshots(registry).routes(access)
    assert route.path == "/console/stats" and route.methods == ("GET",)
    before = int(time.time() * 1000)
    status, body = _get(route, "ADMIN")
    assert status == 200
    door, lobby = body["processors"]["door"], body["processors"]["lobby"]
    assert door["framesAnalysed"] == 6 and door["matches"] == 2
    assert door["latencyCount"] == 2 and door["latencySum"] == pytest.approx(0.4)
    assert before - 5000 <= door["lastMatch"] <= body["at"]  # set when the frame matched
    assert lobby == {"framesAnalysed": 3, "matches": 0, "latencySum": 0.0, "latencyCount": 0,
                     "lastMatch": None}
    assert body["totals"]["framesAnalysed"] == 9 and body["totals"]["processors"] == 2
    assert body["totals"]["lastMatch"] == door["lastMatch"]
    assert before <= body["at"] <= int(time.time() * 1000)


@pytest.mark.unit
def test_a_key_sees_only_the_processors_it_may_describe_even_in_the_totals(
        counted: tuple[CollectorRegistry, ProcessorMetrics]) -> None:
    registry, _ = counted
    access = FakeAccess({"READER": {"lobby"}})
    (route,) = snapshots(registry).routes(access)
    status, body = _get(route, "READER")
    assert status == 200 and list(body["processors"]) == ["lobby"]
    assert body["totals"]["framesAnalysed"] == 3 and body["totals"]["matches"] == 0
    assert body["totals"]["lastMatch"] is None  # door's match is not this key's to know
    assert ("READER", "DescribeStreamProcessor", {"Name": "door"}) in access.asked
    status, body = _get(route, "NOBODY")
    assert status == 200 and body["processors"] == {} and body["totals"]["framesAnalysed"] == 0


@pytest.mark.unit
def test_match_facts_need_list_faces_on_the_processors_collection_as_the_feed_does(
        counted: tuple[CollectorRegistry, ProcessorMetrics]) -> None:
    registry, _ = counted
    access = FakeAccess({"ADMIN": {"door", "lobby"}, "DESCRIBER": {"door", "lobby"}},
                        faces={"ADMIN": {"staff", "visitors"}, "DESCRIBER": {"visitors"}})
    (route,) = snapshots(registry).routes(access)
    _, told = _get(route, "ADMIN")
    assert told["processors"]["door"]["matches"] == 2
    assert told["processors"]["door"]["lastMatch"] is not None
    assert told["totals"]["matches"] == 2 and told["totals"]["lastMatch"] is not None
    # Describe alone: the processor and its frames are shown, its matches are not.
    _, body = _get(route, "DESCRIBER")
    door = body["processors"]["door"]
    assert door["framesAnalysed"] == 6 and door["latencyCount"] == 2
    assert door["matches"] is None and door["lastMatch"] is None
    assert body["processors"]["lobby"]["matches"] == 0  # its collection is readable
    assert body["totals"]["matches"] == 0 and body["totals"]["lastMatch"] is None
    assert body["totals"]["framesAnalysed"] == 9
    assert ("DESCRIBER", "ListFaces", {"CollectionId": "staff"}) in access.asked


@pytest.mark.unit
def test_no_session_is_refused_and_counted(
        counted: tuple[CollectorRegistry, ProcessorMetrics]) -> None:
    registry, _ = counted
    access = FakeAccess({})
    (route,) = snapshots(registry).routes(access)
    status, body = _get(route, None)
    assert status == 403 and body["__type"] == "AccessDeniedException"
    assert access.metrics.console_refused.labels("no_session")._value.get() == 1
    assert access.asked == []


@pytest.mark.unit
def test_a_deleted_processor_leaves_the_snapshot(
        counted: tuple[CollectorRegistry, ProcessorMetrics]) -> None:
    registry, metrics = counted
    metrics.remove("door", [])
    snapshot = snapshots(registry).snapshot()
    assert list(snapshot["processors"]) == ["lobby"]


@pytest.mark.unit
def test_a_snapshot_of_a_hundred_processors_is_cheap() -> None:
    registry = CollectorRegistry()
    metrics = ProcessorMetrics.create(registry)
    for i in range(100):
        sensor = metrics.sensor(f"cam-{i:03d}")
        sensor.frame_analysed(faces=1, matched=i % 2)
        sensor.observe_latency(0.05)
    stats = snapshots(registry)
    started = time.perf_counter()
    for _ in range(20):
        snapshot = stats.snapshot()
    per_snapshot = (time.perf_counter() - started) / 20
    assert len(snapshot["processors"]) == 100
    assert snapshot["totals"]["matches"] == 50
    assert per_snapshot < 0.05, per_snapshot  # measured ~3 ms here; a poll every 2 s


# ---- in the browser ------------------------------------------------------------------------
ADMIN_ID, ADMIN_SECRET = "AKIDOVERVIEWADMIN001", "admin/overview+SECRET-1"
READER_ID, READER_SECRET = "AKIDOVERVIEWREADER01", "reader/overview+SECRET-2"
LOBBY_ID, LOBBY_SECRET = "AKIDOVERVIEWLOBBY001", "lobby/overview+SECRET-3"
_READ = {"Effect": "Allow", "Action": ["rekognition:List*", "rekognition:Describe*"],
         "Resource": "*"}
POLICIES: dict[str, object] = {
    READER_ID: {"Version": "2012-10-17", "Statement": [_READ]},
    # May create only processors named lobby-* (on any collection): resource-scoped.
    LOBBY_ID: {"Version": "2012-10-17", "Statement": [_READ, {
        "Effect": "Allow", "Action": "rekognition:CreateStreamProcessor",
        "Resource": ["arn:aws:rekognition:*:*:streamprocessor/lobby-*",
                     "arn:aws:rekognition:*:*:collection/*"]}]}}
IDLE = [f"cam-{i:02d}" for i in range(30)]
LIVE = "aa-live"  # first in name order: on page 1
STATS_GONE_MS = 5_000  # more than two poll periods: a timer left running would ask by now


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from conftest import VIDEO

    home = tmp_path_factory.mktemp("overview")
    d = keyed_daemon(home, {ADMIN_ID: ADMIN_SECRET, READER_ID: READER_SECRET,
                            LOBBY_ID: LOBBY_SECRET}, POLICIES,
                     **{"outputs.clusters": ["127.0.0.1:9"],  # never reached: records wait
                        "processors.max_processors": 200})
    d.start()
    try:
        rek = keyed_client(d, ADMIN_ID, ADMIN_SECRET)
        rek.create_collection(CollectionId="overview-people")
        for name, source in [(n, f"/nonexistent/{n}.mp4") for n in IDLE] + [
                (LIVE, str(VIDEO / "head-pose-face-detection-male.mp4"))]:
            rek.create_stream_processor(
                Name=name, RoleArn="arn:aws:iam::000000000000:role/console",
                Input={"KinesisVideoStream": {"Arn": source}},
                Output={"KinesisDataStream": {"Arn": f"kafka://127.0.0.1:9/{name}"}},
                Settings={"FaceSearch": {"CollectionId": "overview-people"}})
        rek.start_stream_processor(Name=LIVE)  # a looping file: frames are analysed
        yield d
    finally:
        d.stop()


def _sign_in(p: Any, d: Any, key: str, secret: str) -> None:
    p.page.goto(f"{d.endpoint}/console/")
    p.page.wait_for_selector("body[data-ready=login]", timeout=WAIT_MS)
    p.page.get_by_label("Access key ID").fill(key)
    p.page.get_by_label("Secret access key").fill(secret)
    p.page.get_by_role("button", name="Sign in").click()
    p.page.wait_for_selector("body[data-ready=overview]", timeout=WAIT_MS)


def _open_processors(p: Any) -> None:
    p.page.evaluate("document.body.dataset.ready = ''")
    p.page.get_by_role("link", name="Stream processors").click()
    p.page.wait_for_selector("body[data-ready=processors]", timeout=WAIT_MS)


def _assert_polling_stops(p: Any) -> None:
    """Leave the page: the poller says it stopped, and no /console/stats request follows."""
    p.page.get_by_role("link", name="Collections").click()
    p.page.wait_for_selector("body[data-stats=stopped]", timeout=WAIT_MS)
    with pytest.raises(PlaywrightTimeout), \
            p.page.expect_request("**/console/stats", timeout=STATS_GONE_MS):
        pass  # waits for a request that must not come


@pytest.mark.e2e
def test_the_overview_shows_the_provider_stages_and_a_sparkline_that_gains_points(
        daemon: Any, page: RecordedPage) -> None:  # noqa: F811
    _sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    health = daemon.health()
    pg = page.page
    assert pg.locator("#inference-backend").inner_text() == health["inference"]["backend"]
    assert pg.locator("#models td.provider").all_inner_texts() == [
        m["provider"] for m in health["inference"]["models"]]
    assert sorted(pg.locator("#stages tbody th").all_inner_texts()) == sorted(health["stages"])
    assert pg.locator("#cluster-section").count() == 0  # single node: no cluster panel
    # The live processor's destination (never reachable here) is listed with its state.
    pg.wait_for_selector("#throughput", timeout=WAIT_MS)
    spark = pg.locator("#spark-fps")
    pg.wait_for_function(
        "() => Number(document.querySelector('#spark-fps').dataset.points) >= 2",
        timeout=30_000)
    # The label names the latest value: a running processor analyses frames, so above 0.
    pg.wait_for_function(
        "() => { const m = /latest ([0-9.]+) fps/.exec("
        "document.querySelector('#spark-fps').getAttribute('aria-label'));"
        " return m && Number(m[1]) > 0; }", timeout=30_000)
    assert spark.get_attribute("role") == "img"
    # Read together (a poll between two reads would change both): the text shown is the label's.
    label, shown = pg.evaluate("[document.querySelector('#spark-fps').getAttribute('aria-label'),"
                               " document.querySelector('#spark-fps-value').textContent]")
    assert label.endswith(f"latest {shown}")
    points = spark.locator("polyline").get_attribute("points") or ""
    assert len(points.split()) >= 2
    assert pg.locator("#spark-latency").get_attribute("aria-label").startswith(
        "Frame-to-publish latency")
    page.screenshot("overview-sparklines")
    _assert_polling_stops(page)


@pytest.mark.e2e
def test_the_processors_list_pages_through_with_next_and_previous(
        daemon: Any, page: RecordedPage) -> None:  # noqa: F811
    _sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    pg = page.page
    page.requests.clear()
    _open_processors(page)
    everyone = sorted([*IDLE, LIVE])
    rows = pg.locator("#processors tbody tr")
    assert rows.locator("th").all_inner_texts() == everyone[:25]
    # Described: only the page's rows; whoami asked about those names only.
    described = [u for u in page.requests if u.endswith("/console/api/DescribeStreamProcessor")]
    assert len(described) == 25
    (whoami,) = [u for u in page.requests if "/console/whoami?" in u]
    assert whoami.count("processor=") == 25 and "cam-29" not in whoami
    assert pg.locator("#create-processor").get_attribute("href") == "#/processor-new"
    # fps from two polls of /console/stats: above 0 for the running one, 0 for an idle one.
    pg.wait_for_function(
        f"() => Number(document.querySelector('#processors tr[data-name=\"{LIVE}\"] td.fps')"
        ".textContent) > 0", timeout=30_000)
    assert pg.locator('#processors tr[data-name="cam-00"] td.fps').inner_text() == "0.0"
    assert pg.get_by_role("button", name="Previous page").is_disabled()
    page.screenshot("processors-paged")
    pg.get_by_role("button", name="Next page").click()
    expect(pg.locator("#processors-page")).to_have_text("Page 2", timeout=WAIT_MS)
    assert rows.locator("th").all_inner_texts() == everyone[25:]
    assert pg.get_by_role("button", name="Next page").is_disabled()
    pg.get_by_role("button", name="Previous page").click()
    expect(pg.locator("#processors-page")).to_have_text("Page 1", timeout=WAIT_MS)
    assert rows.locator("th").all_inner_texts() == everyone[:25]
    # A name is a link to the processor's own page.
    pg.evaluate("document.body.dataset.ready = ''")
    pg.get_by_role("link", name="cam-03", exact=True).click()
    pg.wait_for_selector("body[data-ready=processor]", timeout=WAIT_MS)
    assert pg.evaluate("location.hash") == "#/processor?name=cam-03"
    _open_processors(page)
    _assert_polling_stops(page)


@pytest.mark.e2e
def test_a_key_allowed_to_create_only_lobby_processors_gets_the_form_and_the_apis_answer(
        daemon: Any, page: RecordedPage) -> None:  # noqa: F811
    _sign_in(page, daemon, LOBBY_ID, LOBBY_SECRET)
    _open_processors(page)
    pg = page.page
    pg.locator("#create-processor").click()
    expect(pg.locator("#processor-form")).to_be_visible(timeout=WAIT_MS)
    expect(pg.locator("#create-scoped")).to_contain_text("only some stream processors")
    assert pg.locator("#no-create").count() == 0

    def submit(name: str) -> None:
        pg.get_by_label("Name", exact=True).fill(name)
        pg.get_by_label("Input: video stream").fill("/nonexistent/lobby.mp4")
        pg.get_by_label("Output: data stream").fill(f"kafka://127.0.0.1:9/{name}")
        pg.get_by_label("RoleArn").fill("arn:aws:iam::000000000000:role/console")
        pg.get_by_label("Collection").select_option("overview-people")
        pg.get_by_role("button", name="Create").click()

    submit("door-1")  # outside lobby-*: the API's refusal, shown as it is, form kept
    expect(pg.locator("#error")).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
    expect(pg.locator("#error")).to_contain_text("streamprocessor/door-1")
    assert pg.get_by_label("Name", exact=True).input_value() == "door-1"
    page.screenshot("create-scoped-refused")
    submit("lobby-1")
    pg.wait_for_selector("body[data-ready=processor]", timeout=WAIT_MS)
    assert pg.evaluate("location.hash") == "#/processor?name=lobby-1"
    rek = keyed_client(daemon, ADMIN_ID, ADMIN_SECRET)
    try:
        described = rek.describe_stream_processor(Name="lobby-1")
        assert described["Settings"]["FaceSearch"]["CollectionId"] == "overview-people"
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            rek.describe_stream_processor(Name="door-1")
    finally:
        rek.delete_stream_processor(Name="lobby-1")


@pytest.mark.e2e
def test_a_read_only_key_sees_no_create_link(daemon: Any, page: RecordedPage) -> None:  # noqa: F811
    _sign_in(page, daemon, READER_ID, READER_SECRET)
    _open_processors(page)
    assert page.page.locator("#processors tbody tr").count() == 25
    assert page.page.locator("#create-processor").count() == 0
    assert page.page.get_by_role("link", name="Create stream processor").count() == 0
    assert page.page.locator("#processors tbody button").count() == 0
    cookie = page.context.cookies()[0]["value"]
    # /console/stats for this key: only what it may describe (all of them here), JSON.
    stats = requests.get(f"{daemon.endpoint}/console/stats", timeout=5,
                         cookies={"streamproc_console": cookie})
    assert stats.status_code == 200 and LIVE in stats.json()["processors"]
    assert requests.get(f"{daemon.endpoint}/console/stats", timeout=5).status_code == 403


@pytest.mark.e2e
def test_the_users_of_a_collection_are_paged_apart_from_its_faces(
        daemon: Any, page: RecordedPage) -> None:  # noqa: F811
    rek = keyed_client(daemon, ADMIN_ID, ADMIN_SECRET)
    rek.create_collection(CollectionId="overview-users")
    users = [f"user-{i:03d}" for i in range(101)]
    for user in users:
        rek.create_user(CollectionId="overview-users", UserId=user)
    _sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    pg = page.page
    pg.evaluate("document.body.dataset.ready = ''")
    pg.goto(f"{daemon.endpoint}/console/#/collections?id=overview-users")
    pg.wait_for_selector("body[data-ready=collections]", timeout=WAIT_MS)
    rows = pg.locator("#users li.user .id")
    expect(rows).to_have_count(100, timeout=WAIT_MS)
    first = rows.all_inner_texts()
    assert pg.locator("#users-page").inner_text() == "Page 1"
    assert pg.get_by_role("button", name="Previous users").is_disabled()
    assert pg.get_by_role("button", name="Next page").count() == 1  # the faces' own pager
    pg.get_by_role("button", name="Next users").click()
    expect(pg.locator("#users-page")).to_have_text("Page 2", timeout=WAIT_MS)
    expect(rows).to_have_count(1)
    assert sorted(first + rows.all_inner_texts()) == users
    assert pg.get_by_role("button", name="Next users").is_disabled()
    pg.get_by_role("button", name="Previous users").click()
    expect(pg.locator("#users-page")).to_have_text("Page 1", timeout=WAIT_MS)
    assert rows.all_inner_texts() == first
