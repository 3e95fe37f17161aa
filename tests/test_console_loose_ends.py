"""Console loose ends, in a real browser (Debian's Chromium) against a real daemon.

The processor page polls DescribeStreamProcessor in one chain, whatever is clicked: while
a processor is in a transition (STARTING here, held there by the test's answers) the page
describes it again every second, and a button's refresh (Stop) must replace that chain,
not start a second one beside it (counted over a few seconds). The overview's cluster panel
shows only the processors the key may DescribeStreamProcessor, as /console/stats does (the
cluster report is the test's: the daemon judges the key through whoami).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from console_browser import (  # noqa: F401 - browser, page: fixtures
    RecordedPage,
    browser,
    keyed_daemon,
    page,
)
from test_console import sign_in

from streamproc.daemon import Daemon

pytestmark = pytest.mark.e2e

ADMIN_ID, ADMIN_SECRET = "AKIDPOLLINGADMIN0001", "admin/polling+SECRET-1"
# May describe door-a only (and list, to see the overview's counts).
DOOR_ID, DOOR_SECRET = "AKIDPOLLINGDOORA0001", "door-a/polling+SECRET-2"
POLICIES: dict[str, object] = {DOOR_ID: {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "rekognition:ListStreamProcessors", "Resource": "*"},
    {"Effect": "Allow", "Action": "rekognition:DescribeStreamProcessor",
     "Resource": "arn:aws:rekognition:*:*:streamprocessor/door-a"}]}}
CLUSTER = {"cluster": "site", "node": "n1", "fenced": False, "applied_offset": 7,
           "members": [{"node": "n1", "address": "10.0.0.1:8085",
                        "processors": ["door-a", "door-b"]},
                       {"node": "n2", "address": "10.0.0.2:8085", "processors": ["door-c"]}]}
NAME = "door-polled"
WAIT_MS = 20_000
WATCH_S = 4.0  # seconds counted: the page polls once a second (POLL_MS)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = keyed_daemon(tmp_path_factory.mktemp("polling"),
                     {ADMIN_ID: ADMIN_SECRET, DOOR_ID: DOOR_SECRET}, POLICIES)
    d.start()
    yield d
    d.stop()


def starting(name: str) -> dict[str, Any]:
    return {"Name": name, "Status": "STARTING", "StreamProcessorArn": f"arn:x:{name}",
            "Input": {"KinesisVideoStream": {"Arn": "/nonexistent/door.mp4"}},
            "Output": {"KinesisDataStream": {"Arn": "arn:aws:kinesis:us-east-1:1:stream/x"}},
            "RoleArn": "arn:aws:iam::1:role/x", "Settings": {"FaceSearch": {
                "CollectionId": "staff", "FaceMatchThreshold": 80}}}


def test_a_click_during_a_transition_keeps_one_polling_chain(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    describes: list[float] = []

    def describe(route: Any) -> None:
        describes.append(time.monotonic())
        route.fulfill(status=200, content_type="application/x-amz-json-1.1",
                      body=json.dumps(starting(NAME)))

    page.page.route("**/console/api/DescribeStreamProcessor", describe)
    page.page.route("**/console/api/StopStreamProcessor",
                    lambda route: route.fulfill(status=200, body="{}",
                                                content_type="application/x-amz-json-1.1"))
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    page.page.evaluate("document.body.dataset.ready = ''")
    page.page.evaluate("(h) => { location.hash = h; }", f"#/processor?name={NAME}")
    page.page.wait_for_selector("body[data-ready='processor']", timeout=WAIT_MS)
    page.page.wait_for_timeout(1500)  # the timer's chain is running
    for _ in range(3):  # each click refreshes at once, and must not add a chain
        page.page.get_by_role("button", name="Stop").click()
        page.page.wait_for_timeout(200)
    clicked = time.monotonic()
    page.page.wait_for_timeout(WATCH_S * 1000)
    after = [t for t in describes if t > clicked + 0.1]
    # One chain: about one Describe a second. Each extra chain would add as many again.
    assert len(after) <= WATCH_S + 1, after
    assert len(after) >= WATCH_S - 1  # and polling went on


def cluster_rows(p: RecordedPage, daemon: Daemon, key: str, secret: str) -> dict[str, str]:
    p.page.route("**/cluster", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(CLUSTER)))
    sign_in(p, daemon, key, secret)
    p.page.wait_for_selector("#cluster-section", timeout=WAIT_MS)
    rows = p.page.locator("#members tbody tr")
    return {rows.nth(i).get_attribute("data-node") or "": rows.nth(i).locator(".runs")
            .inner_text() for i in range(rows.count())}


def test_the_cluster_panel_shows_only_the_processors_the_key_may_describe(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    assert cluster_rows(page, daemon, DOOR_ID, DOOR_SECRET) == {"n1": "door-a", "n2": "-"}
    counts = page.page.locator("#members tbody td:nth-child(3)").all_inner_texts()
    assert counts == ["1", "0"]


def test_a_key_that_may_describe_all_sees_every_processor_in_the_cluster(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    assert cluster_rows(page, daemon, ADMIN_ID, ADMIN_SECRET) == {
        "n1": "door-a, door-b", "n2": "door-c"}
