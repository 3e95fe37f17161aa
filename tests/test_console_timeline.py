"""The Jobs page's timeline in a real browser: marks grouped per lane in time order and capped,
and AggregateBy SEGMENTS results (content moderation, labels) drawn as spans.

The Get answers are served by the test (a real moderation or label job needs those models),
as in tests/test_console_jobs.py; the daemon is real, with auth off (loopback), so the page
needs no sign-in.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import make_config
from console_browser import RecordedPage, browser  # noqa: F401 - the browser fixture

from streamproc.daemon import Daemon

pytestmark = pytest.mark.e2e

WAIT_MS = 15_000
DURATION = 10_000
# The timeline's geometry (jobs.js): the axis starts at 160 and is 830 user units wide.
LABEL_W, PLOT_W = 160, 830


def _frame() -> bytes:
    """A grey JPEG for every frame asked for (what it shows is not looked at here)."""
    ok, jpeg = cv2.imencode(".jpg", np.full((360, 640, 3), 128, np.uint8))
    assert ok
    return bytes(jpeg.tobytes())


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(make_config(tmp_path_factory.mktemp("console-timeline") / "data"))
    d.start()
    yield d
    d.stop()


class Served:
    """A Get operation answered by the test, page by page; every request body is kept."""

    def __init__(self, items_key: str, job_id: str, pages: list[list[dict[str, Any]]]) -> None:
        self.items_key, self.job_id, self.pages = items_key, job_id, pages
        self.requests: list[dict[str, Any]] = []

    def __call__(self, route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        self.requests.append(body)
        n = int(body.get("NextToken", "0"))
        answer: dict[str, Any] = {
            "JobStatus": "SUCCEEDED", "JobId": self.job_id,
            "VideoMetadata": {"DurationMillis": DURATION, "FrameRate": 25.0,
                              "FrameWidth": 640, "FrameHeight": 360},
            self.items_key: self.pages[n]}
        if n + 1 < len(self.pages):
            answer["NextToken"] = str(n + 1)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))


def _open(p: RecordedPage, daemon: Daemon, api: str, job_id: str, served: Served,
          query: str = "") -> None:
    p.page.route(f"**/console/api/{api}", served)
    p.page.route(f"**/console/jobs/{api}/{job_id}/frame?ms=*", lambda route: route.fulfill(
        status=200, content_type="image/jpeg", body=_frame()))
    p.page.goto(f"{daemon.endpoint}/console/#/jobs?api={api}&id={job_id}{query}")
    p.page.wait_for_selector("#timeline", timeout=WAIT_MS)


def _x(ms: float) -> float:
    return LABEL_W + ms / DURATION * PLOT_W


def _moderation(start: int, end: int, name: str) -> dict[str, Any]:
    return {"Timestamp": start, "StartTimestampMillis": start, "EndTimestampMillis": end,
            "DurationMillis": end - start,
            "ModerationLabel": {"Name": name, "ParentName": "", "Confidence": 90.0}}


def test_moderation_segments_chosen_in_the_form_are_asked_for_and_drawn_as_spans(
        daemon: Daemon, browser: Any) -> None:  # noqa: F811
    pages = [[_moderation(1000, 3000, "Weapons"), _moderation(0, 8000, "Smoking")],
             [_moderation(5000, 5000, "Weapons")]]
    served = Served("ModerationLabels", "mod-seg", pages)
    p = RecordedPage(browser)
    try:
        p.page.route("**/console/api/GetContentModeration", served)
        p.page.route("**/console/jobs/GetContentModeration/mod-seg/frame?ms=*",
                     lambda route: route.fulfill(status=200, content_type="image/jpeg",
                                                 body=_frame()))
        p.page.goto(f"{daemon.endpoint}/console/#/jobs")
        p.page.wait_for_selector("body[data-ready=jobs]", timeout=WAIT_MS)
        results = p.page.get_by_label("Aggregate by")
        assert results.is_disabled()  # the first kind (face search) has no AggregateBy
        p.page.get_by_label("Job kind").select_option("GetContentModeration")
        results.select_option("SEGMENTS")
        p.page.get_by_label("Job ID").fill("mod-seg")
        p.page.get_by_role("button", name="Open", exact=True).click()
        p.page.wait_for_selector("#timeline", timeout=WAIT_MS)
        # Every page is asked for by segment, the second with the first's token.
        assert served.requests == [
            {"JobId": "mod-seg", "MaxResults": 1000, "AggregateBy": "SEGMENTS"},
            {"JobId": "mod-seg", "MaxResults": 1000, "AggregateBy": "SEGMENTS",
             "NextToken": "1"}]
        assert "AggregateBy SEGMENTS" in p.page.locator("#job-aggregate-note").inner_text()
        assert p.page.locator("#timeline .lane-label").all_text_contents() == ["Smoking",
                                                                              "Weapons"]
        spans = p.page.locator("#timeline .mark.span")
        assert spans.count() == 3
        long = p.page.get_by_role("button", name="Weapons at 0:01.000 to 0:03.000")
        assert float(long.get_attribute("x")) == pytest.approx(_x(1000), abs=0.01)
        assert float(long.get_attribute("width")) == pytest.approx(_x(3000) - _x(1000),
                                                                   abs=0.01)
        whole = p.page.get_by_role("button", name="Smoking at 0:00.000 to 0:08.000")
        assert float(whole.get_attribute("width")) == pytest.approx(_x(8000) - _x(0), abs=0.01)
        # A segment of one frame still gets a mark wide enough to click.
        blip = p.page.get_by_role("button", name="Weapons at 0:05.000 to 0:05.000")
        assert float(blip.get_attribute("width")) == 6
        long.click()
        p.page.wait_for_selector("#frame-view[data-frame=loaded]", timeout=WAIT_MS)
        assert p.page.locator("#frame-image").get_attribute("src").endswith("/frame?ms=1000")
        details = p.page.locator(".frame-details").inner_text()
        assert "Weapons: confidence 90.0%" in details
        assert "Segment 0:01.000 to 0:03.000" in details
        # This tab's list reopens the job by segment, too.
        assert p.page.locator("#recent a").first.get_attribute("href").endswith(
            "&by=SEGMENTS")
        p.screenshot("job-moderation-segments")
    finally:
        p.close()


def test_label_segments_without_a_timestamp_span_from_start_to_end(
        daemon: Daemon, browser: Any) -> None:  # noqa: F811
    """AWS's SEGMENTS items may carry no Timestamp: the span is Start..EndTimestampMillis."""
    items = [{"StartTimestampMillis": 2000, "EndTimestampMillis": 6000, "DurationMillis": 4000,
              "Label": {"Name": "Chair", "Confidence": 80.0, "Parents": [], "Instances": []}},
             {"Timestamp": 500, "Label": {"Name": "Chair", "Confidence": 70.0,
                                          "Parents": [], "Instances": []}}]
    served = Served("Labels", "lab-seg", [items])
    p = RecordedPage(browser)
    try:
        _open(p, daemon, "GetLabelDetection", "lab-seg", served, "&by=SEGMENTS")
        assert served.requests[0]["AggregateBy"] == "SEGMENTS"
        span = p.page.get_by_role("button", name="Chair at 0:02.000 to 0:06.000")
        assert float(span.get_attribute("x")) == pytest.approx(_x(2000), abs=0.01)
        assert float(span.get_attribute("width")) == pytest.approx(_x(6000) - _x(2000),
                                                                   abs=0.01)
        # An item with only a Timestamp stays a point mark, centred on its time.
        point = p.page.get_by_role("button", name="Chair at 0:00.500")
        assert point.get_attribute("class") == "mark"
        assert float(point.get_attribute("x")) == pytest.approx(_x(500) - 3, abs=0.01)
    finally:
        p.close()


def test_a_kind_without_aggregate_by_never_sends_it(
        daemon: Daemon, browser: Any) -> None:  # noqa: F811
    items = [{"Timestamp": 100, "Face": {"Confidence": 99.0, "BoundingBox": {
        "Width": 0.1, "Height": 0.1, "Left": 0.1, "Top": 0.1}}}]
    served = Served("Faces", "face-1", [items])
    p = RecordedPage(browser)
    try:
        _open(p, daemon, "GetFaceDetection", "face-1", served, "&by=SEGMENTS")
        assert served.requests == [{"JobId": "face-1", "MaxResults": 1000}]
        assert p.page.locator("#timeline .mark.span").count() == 0
        assert p.page.locator("#job-aggregate-note").count() == 0
        assert p.page.get_by_label("Aggregate by").is_disabled()
    finally:
        p.close()


def test_marks_are_grouped_per_lane_in_time_order_and_capped_at_120(
        daemon: Daemon, browser: Any) -> None:  # noqa: F811
    """Three lanes of 1,000 results each, shuffled: each lane gets 120 marks, in time order,
    each its slot's first result, however the results came."""
    names = ("Alcohol", "Smoking", "Weapons")
    items = [{"Timestamp": i * 10 + k, "ModerationLabel": {
        "Name": name, "ParentName": "", "Confidence": 85.0}}
        for i in range(1000) for k, name in enumerate(names)]
    random.Random(27).shuffle(items)
    served = Served("ModerationLabels", "mod-many", [items])
    p = RecordedPage(browser)
    try:
        _open(p, daemon, "GetContentModeration", "mod-many", served)
        assert served.requests == [{"JobId": "mod-many", "MaxResults": 1000}]
        lanes = p.page.locator("#timeline g.lane")
        assert lanes.locator(".lane-label").all_text_contents() == list(names)
        for k in range(len(names)):
            shown = lanes.nth(k).locator(".mark").evaluate_all(
                "ms => ms.map(m => Number(m.dataset.ms))")
            assert len(shown) == 120
            assert shown == sorted(shown)
            # The axis is 10,000 ms wide (the duration): slot s starts at s * 10000 / 120.
            firsts = [min(t for t in range(k, 10_000, 10) if math.floor(t / DURATION * 120) == s)
                      for s in range(120)]
            assert shown == firsts
        label = p.page.get_by_role("button", name="Weapons at 0:00.002").get_attribute(
            "aria-label")
        assert label == "Weapons at 0:00.002, 8 more until 0:00.082"
    finally:
        p.close()

