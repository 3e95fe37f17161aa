"""The processor page live, in a real browser (Debian's Chromium) against a real daemon, a real
Kafka-protocol broker (tansu) and a live ffmpeg stream.

Man M is enrolled by uploading frames of his clip on the Collections page; a processor is
created on a live stream of the same clip through the create form and started from its page;
his match appears in the feed with the face crop within 5 s of RUNNING, the current frame loads
with the regions drawn over it, and the feed's connection closes when the page is left. Also:
a read-only key's view of both pages, and the API's error for a bad form entry. Screenshots
go to tests/artifacts/console/.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from console_browser import (  # noqa: F401 - browser, page: fixtures
    RecordedPage,
    browser,
    keyed_client,
    keyed_daemon,
    page,
)
from playwright.sync_api import expect
from streams import MAN, ROLE, Records, output_arn, remove_processor, wait_status
from test_console import assert_controls_labelled, sign_in
from test_console_collections import open_collection

from streamproc.daemon import Daemon
from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.clusterkit import poll
from streamproc.tools.demo import clip_frames
from streamproc.tools.livestream import LoopingStream

pytestmark = pytest.mark.e2e

ADMIN_ID, ADMIN_SECRET = "AKIDLIVEADMIN0000001", "admin/live+SECRET-1"
READER_ID, READER_SECRET = "AKIDLIVEREADER000001", "reader/live+SECRET-2"
POLICIES: dict[str, object] = {READER_ID: {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["rekognition:List*", "rekognition:Describe*"],
     "Resource": "*"}]}}
WAIT_MS = 20_000
PERSON = "man-M"  # the ExternalImageId his photos' file names give
MATCH_WITHIN_S = 5.0  # the bound: a match in the feed this soon after RUNNING
# Regions the man's face (centred in his clip) is inside, so they do not hide his matches.
REGIONS: list[dict[str, Any]] = [
    {"BoundingBox": {"Left": 0.05, "Top": 0.1, "Width": 0.9, "Height": 0.85}},
    {"Polygon": [{"X": 0.2, "Y": 0.2}, {"X": 0.8, "Y": 0.2}, {"X": 0.5, "Y": 0.9}]}]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
           ) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("live")
    d = keyed_daemon(home, {ADMIN_ID: ADMIN_SECRET, READER_ID: READER_SECRET}, POLICIES,
                     **{"kafka.bootstrap": broker.bootstrap})
    d.start()
    yield d
    d.stop()


def admin(daemon: Daemon) -> Any:
    return keyed_client(daemon, ADMIN_ID, ADMIN_SECRET)


def fresh_collection(daemon: Daemon, name: str) -> None:
    rek = admin(daemon)
    try:
        rek.delete_collection(CollectionId=name)
    except rek.exceptions.ResourceNotFoundException:
        pass
    rek.create_collection(CollectionId=name)


def goto(p: RecordedPage, hash_: str, ready: str) -> None:
    """Go to a console page by its hash, as a link would, and wait until it is drawn."""
    p.page.evaluate("document.body.dataset.ready = ''")
    p.page.evaluate("(h) => { location.hash = h; }", hash_)
    p.page.wait_for_selector(f"body[data-ready='{ready}']", timeout=WAIT_MS)


def open_feeds(daemon: Daemon) -> float:
    return daemon.registry.get_sample_value("streamproc_console_feeds") or 0.0


def his_photos(tmp_path: Path) -> list[Path]:
    """Frames of man M's clip as photo files, each named man-M.jpg (one folder each)."""
    paths = []
    for i, jpeg in enumerate(clip_frames(MAN, 12)):
        folder = tmp_path / f"photo{i}"
        folder.mkdir()
        path = folder / f"{PERSON}.jpg"
        path.write_bytes(jpeg)
        paths.append(path)
    assert len(paths) >= 3
    return paths


def fill_form(p: RecordedPage, name: str, url: str, topic: str, collection: str,
              threshold: str = "80") -> None:
    p.page.get_by_label("Name", exact=True).fill(name)
    p.page.get_by_label("Input: video stream").fill(url)
    p.page.get_by_label("Output: data stream").fill(output_arn(topic))
    p.page.get_by_label("RoleArn").fill(ROLE)
    p.page.get_by_label("Collection").select_option(collection)
    p.page.get_by_label("FaceMatchThreshold").fill(threshold)


def test_enrol_create_start_and_see_his_match_live_with_the_crop(
        daemon: Daemon, page: RecordedPage, tmp_path: Path,  # noqa: F811
        live: Callable[[Path], LoopingStream], broker: EmbeddedBroker) -> None:
    rek = admin(daemon)
    fresh_collection(daemon, "console-live")
    stream = live(MAN)
    name = "console-live-door"
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    # Enrol him by upload on the Collections page (the existing enrol flow).
    open_collection(page, daemon, "console-live")
    photos = his_photos(tmp_path)
    page.page.get_by_label("Enrol photos").set_input_files(photos)
    expect(page.page.locator("#enrol-status")).to_have_text(
        re.compile(rf"{len(photos)} files: [1-9]\d* indexed"), timeout=WAIT_MS)
    faces = rek.list_faces(CollectionId="console-live")["Faces"]
    assert faces and {f["ExternalImageId"] for f in faces} == {PERSON}
    # Create the processor on the live stream with the form.
    goto(page, "#/processor-new", "processor-new")
    fill_form(page, name, stream.url, "console-live-records", "console-live")
    assert_controls_labelled(page)
    page.screenshot("processor-form")
    page.page.evaluate("document.body.dataset.ready = ''")
    page.page.get_by_role("button", name="Create").click()
    page.page.wait_for_selector("body[data-ready='processor']", timeout=WAIT_MS)
    try:
        described = rek.describe_stream_processor(Name=name)
        assert described["Input"]["KinesisVideoStream"]["Arn"] == stream.url
        assert described["Settings"]["FaceSearch"] == {"CollectionId": "console-live",
                                                       "FaceMatchThreshold": 80.0}
        assert described["Status"] == "STOPPED"
        assert described["DataSharingPreference"] == {"OptIn": False}
        rek.update_stream_processor(Name=name, RegionsOfInterestForUpdate=REGIONS)
        page.page.reload()
        page.page.wait_for_selector("body[data-ready='processor']", timeout=WAIT_MS)
        settings = page.page.locator("#settings")
        expect(settings.locator('dd[data-field="Status"]')).to_have_text("STOPPED")
        expect(settings.locator('dd[data-field="Input"]')).to_have_text(stream.url)
        expect(page.page.locator("#frame-placeholder")).to_contain_text("STOPPED")
        expect(page.page.locator("#feed-status")).to_have_attribute("data-state", "open",
                                                                   timeout=WAIT_MS)
        assert poll(lambda: open_feeds(daemon) == 1, 10), open_feeds(daemon)
        page.page.get_by_role("button", name="Start").click()
        running = wait_status(rek, name, {"RUNNING", "FAILED"}, 40)
        assert running["Status"] == "RUNNING", running
        at_running = time.monotonic()
        card = page.page.locator("#feed li.card.matched").first
        expect(card.locator(".ext")).to_have_text(PERSON, timeout=MATCH_WITHIN_S * 1000)
        assert time.monotonic() - at_running <= MATCH_WITHIN_S + 0.5
        crop = card.locator("img.detected")
        assert (crop.get_attribute("src") or "").startswith("data:image/jpeg;base64,")
        page.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                                    arg=crop.element_handle(), timeout=WAIT_MS)
        face_ids = {f["FaceId"] for f in faces}
        assert card.locator(".face-id").inner_text() in face_ids
        assert re.fullmatch(r"\d{2,3}\.\d %", card.locator(".similarity").inner_text())
        # The enrolled face's crop beside it (the daemon keeps crops: whoami.faceCrops).
        enrolled = card.locator("img.enrolled")
        assert enrolled.get_attribute("src") == (
            f"/console/crops/console-live/{card.locator('.face-id').inner_text()}")
        # The same match went to Kafka: the feed shows records as published.
        records = Records(broker.bootstrap, "console-live-records")
        try:
            got = records.wait_for(lambda items: any(
                m["Face"].get("ExternalImageId") == PERSON for r in items
                for f in r["FaceSearchResponse"] for m in f["MatchedFaces"]), 20)
            assert got
        finally:
            records.close()
        # The page shows RUNNING, then the current frame with the regions over it.
        expect(settings.locator('dd[data-field="Status"]')).to_have_text("RUNNING",
                                                                         timeout=WAIT_MS)
        page.page.get_by_role("button", name="Refresh frame").click()
        frame = page.page.locator("#frame-image")
        expect(page.page.locator("#frame")).to_have_attribute("data-loaded", "true",
                                                              timeout=WAIT_MS)
        assert frame.evaluate("img => img.naturalWidth") > 0
        image = frame.bounding_box()
        rect = page.page.locator("#roi-overlay rect").bounding_box()
        assert image and rect
        box = REGIONS[0]["BoundingBox"]
        assert rect["x"] - image["x"] == pytest.approx(box["Left"] * image["width"], abs=3)
        assert rect["y"] - image["y"] == pytest.approx(box["Top"] * image["height"], abs=3)
        assert rect["width"] == pytest.approx(box["Width"] * image["width"], abs=3)
        assert rect["height"] == pytest.approx(box["Height"] * image["height"], abs=3)
        assert page.page.locator("#roi-overlay polygon").count() == 1
        assert page.page.locator("#feed li").count() <= 50
        assert_controls_labelled(page)
        page.screenshot("processor-live")
        # Stop from the page: the page follows it to STOPPED.
        page.page.get_by_role("button", name="Stop").click()
        expect(settings.locator('dd[data-field="Status"]')).to_have_text("STOPPED",
                                                                         timeout=WAIT_MS)
        assert rek.describe_stream_processor(Name=name)["Status"] == "STOPPED"
        # A second visit, then leaving: one feed open at a time, none once the page is left.
        goto(page, f"#/processor?name={name}&again=1", "processor")
        assert poll(lambda: open_feeds(daemon) == 1, 10), open_feeds(daemon)
        goto(page, "#/overview", "overview")
        assert poll(lambda: open_feeds(daemon) == 0, 10), open_feeds(daemon)
    finally:
        remove_processor(rek, name)


def test_delete_from_the_page_after_confirming(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    rek = admin(daemon)
    fresh_collection(daemon, "console-live-del")
    rek.create_stream_processor(
        Name="console-live-gone", RoleArn=ROLE,
        Input={"KinesisVideoStream": {"Arn": "/nonexistent/gone.mp4"}},
        Output={"KinesisDataStream": {"Arn": output_arn("console-live-gone")}},
        Settings={"FaceSearch": {"CollectionId": "console-live-del"}})
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    goto(page, "#/processor?name=console-live-gone", "processor")
    page.page.get_by_role("button", name="Delete").click()
    page.page.get_by_role("button", name="Cancel").click()
    assert rek.describe_stream_processor(Name="console-live-gone")["Name"]
    page.page.get_by_role("button", name="Delete").click()
    page.page.locator("#confirm-yes").click()
    page.page.wait_for_selector("body[data-ready='processors']", timeout=WAIT_MS)
    assert page.page.evaluate("location.hash") == "#/processors"
    names = [p["Name"] for p in rek.list_stream_processors()["StreamProcessors"]]
    assert "console-live-gone" not in names


def test_a_read_only_key_sees_no_actions_and_no_form(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    rek = admin(daemon)
    fresh_collection(daemon, "console-live-ro")
    rek.create_stream_processor(
        Name="console-live-ro", RoleArn=ROLE,
        Input={"KinesisVideoStream": {"Arn": "/nonexistent/ro.mp4"}},
        Output={"KinesisDataStream": {"Arn": output_arn("console-live-ro")}},
        Settings={"FaceSearch": {"CollectionId": "console-live-ro"}})
    try:
        sign_in(page, daemon, READER_ID, READER_SECRET)
        goto(page, "#/processor?name=console-live-ro", "processor")
        expect(page.page.locator('#settings dd[data-field="Name"]')).to_have_text(
            "console-live-ro")
        for label in ("Start", "Stop", "Delete"):
            assert page.page.get_by_role("button", name=label, exact=True).count() == 0
        # Describe is allowed, so its feed is too.
        expect(page.page.locator("#feed-status")).to_have_attribute("data-state", "open",
                                                                   timeout=WAIT_MS)
        page.screenshot("processor-read-only")
        goto(page, "#/processor-new", "processor-new")
        expect(page.page.locator("#no-create")).to_contain_text("may not create")
        assert page.page.locator("form").count() == 0
    finally:
        rek.delete_stream_processor(Name="console-live-ro")


@pytest.mark.parametrize(("name", "threshold", "wanted"), [
    ("console-bad", "150", "FaceMatchThreshold"),
    ("has spaces", "80", "Name"),
])
def test_a_bad_form_entry_shows_the_api_error_and_keeps_the_form(
        daemon: Daemon, page: RecordedPage, name: str, threshold: str,  # noqa: F811
        wanted: str) -> None:
    fresh_collection(daemon, "console-live-bad")
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    goto(page, "#/processor-new", "processor-new")
    fill_form(page, name, "/nonexistent/bad.mp4", "console-live-bad", "console-live-bad",
              threshold)
    if wanted == "Name":  # by keyboard: Enter in a field submits the form
        page.page.get_by_label("RoleArn").press("Enter")
    else:
        page.page.get_by_role("button", name="Create").click()
    alert = page.page.get_by_role("alert")
    alert.wait_for(state="visible", timeout=WAIT_MS)
    text = alert.inner_text()
    # The API's own words: the same request from boto3 (its own checks off) gets them.
    raw = boto3.client("rekognition", endpoint_url=daemon.endpoint, region_name="us-east-1",
                       aws_access_key_id=ADMIN_ID, aws_secret_access_key=ADMIN_SECRET,
                       config=BotoConfig(parameter_validation=False,
                                         retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as refused:
        raw.create_stream_processor(
            Name=name, RoleArn=ROLE,
            Input={"KinesisVideoStream": {"Arn": "/nonexistent/bad.mp4"}},
            Output={"KinesisDataStream": {"Arn": output_arn("console-live-bad")}},
            Settings={"FaceSearch": {"CollectionId": "console-live-bad",
                                     "FaceMatchThreshold": json.loads(threshold)}},
            DataSharingPreference={"OptIn": False})
    error = refused.value.response["Error"]
    assert wanted in error["Message"], error
    assert text == f"{error['Code']}{error['Message']}", text
    assert page.page.evaluate("location.hash") == "#/processor-new"
    assert page.page.get_by_label("Name", exact=True).input_value() == name
    assert page.page.get_by_label("FaceMatchThreshold").input_value() == threshold
    names = [p["Name"] for p in admin(daemon).list_stream_processors()["StreamProcessors"]]
    assert name not in names
    page.screenshot(f"processor-form-error-{wanted.lower()}")


def _match_event(i: int, matched: bool, dropped: int) -> str:
    box = {"Left": 0.4, "Top": 0.2, "Width": 0.2, "Height": 0.3}
    face = {"FaceId": f"face-{i:03d}", "ExternalImageId": f"person-{i:03d}", "ImageId": "i",
            "BoundingBox": box, "Confidence": 99.9, "UserId": f"user-{i:03d}"}
    matches = [{"Similarity": 91.234, "Face": face}] if matched else []
    record = {"InputInformation": {"KinesisVideo": {"StreamArn": "s"}},
              "StreamProcessorInformation": {"Status": "RUNNING"},
              "FaceSearchResponse": [{"DetectedFace": {"BoundingBox": box, "Confidence": 99.0},
                                      "MatchedFaces": matches}]}
    crop = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4" \
           "2mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    data = {"at": 1_700_000_000_000 + i, "record": record, "crops": [crop], "dropped": dropped}
    return f"event: match\ndata: {json.dumps(data)}\n\n"


def test_the_feed_keeps_the_newest_fifty_and_shows_no_match_and_drops(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    rek = admin(daemon)
    fresh_collection(daemon, "console-live-many")
    rek.create_stream_processor(
        Name="console-live-many", RoleArn=ROLE,
        Input={"KinesisVideoStream": {"Arn": "/nonexistent/many.mp4"}},
        Output={"KinesisDataStream": {"Arn": output_arn("console-live-many")}},
        Settings={"FaceSearch": {"CollectionId": "console-live-many"}})
    try:
        # The feed as the server sends it: 60 events (the last unmatched), 3 dropped in all;
        # "retry" keeps the browser from reconnecting (and drawing them again) in the test.
        body = "retry: 600000\n\nevent: hello\ndata: {\"processor\": \"console-live-many\", " \
               "\"here\": true}\n\n" + "".join(
                   _match_event(i, i < 59, 1 if i in (10, 20, 30) else 0) for i in range(60))
        page.page.route("**/console/feed/console-live-many", lambda route: route.fulfill(
            status=200, content_type="text/event-stream", body=body))
        sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
        goto(page, "#/processor?name=console-live-many", "processor")
        cards = page.page.locator("#feed li.card")
        expect(page.page.locator("#feed-dropped")).to_have_text(re.compile(r"^3 events dropped"),
                                                                timeout=WAIT_MS)
        expect(cards).to_have_count(50)
        newest = cards.first
        expect(newest.locator(".no-match")).to_have_text("no match")
        assert newest.locator("img.detected").get_attribute("src").startswith("data:image/png")
        second = cards.nth(1)
        assert second.locator(".ext").inner_text() == "person-058"
        assert second.locator(".user-id").inner_text() == "user-058"
        assert second.locator(".similarity").inner_text() == "91.2 %"
        # No such face is enrolled: its crop 404s, and the card shows no broken image.
        expect(second.locator("img.enrolled")).to_have_count(0)
        assert cards.last.locator(".ext").inner_text() == "person-010"  # 0-9 dropped out
        feed = page.page.locator("#feed")
        assert feed.get_attribute("aria-live") == "polite" and feed.get_attribute("aria-label")
        page.screenshot("processor-feed-many")
    finally:
        rek.delete_stream_processor(Name="console-live-many")


def test_an_unknown_processor_shows_the_api_error_under_its_name(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    goto(page, "#/processor?name=no-such-door", "processor")
    expect(page.page.get_by_role("heading", level=1)).to_have_text("Stream processor no-such-door")
    alert = page.page.get_by_role("alert")
    expect(alert).to_contain_text("ResourceNotFoundException")
    assert page.page.locator("#feed").count() == 0  # no feed opened for it
