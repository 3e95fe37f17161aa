"""Enrol by a short video on the Collections page, against a real daemon.

``POST /console/enrol/<collection>``: the server side with plain HTTP (reports, refusals),
then the page in a real browser (Debian's Chromium): a clip dropped on the drop zone, a
file that is no video, and a key the policy refuses IndexFaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from console_browser import (  # noqa: F401 - browser, page: fixtures
    RecordedPage,
    browser,
    keyed_client,
    keyed_daemon,
    page,
)
from playwright.sync_api import expect
from streams import WOMAN
from test_console import sign_in
from test_console_collections import drop, open_collection

from streamproc.daemon import Daemon

pytestmark = pytest.mark.e2e

ADMIN_ID, ADMIN_SECRET = "AKIDENROLVIDEOADMIN1", "admin/enrol-video+SECRET-1"
# May do everything but IndexFaces: the page cannot know, the API refuses.
NOINDEX_ID, NOINDEX_SECRET = "AKIDENROLVIDEONOIDX1", "noindex/enrol-video+SECRET-2"
POLICIES: dict[str, object] = {NOINDEX_ID: {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "rekognition:IndexFaces", "Resource": "*"}]}}
MAX_BYTES = 200_000  # the clip is ~96 KB
WAIT_MS = 60_000  # 24 DetectFaces on the CPU


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("enrol-video")
    d = keyed_daemon(home, {ADMIN_ID: ADMIN_SECRET, NOINDEX_ID: NOINDEX_SECRET}, POLICIES,
                     **{"console.enrol_video_max_bytes": MAX_BYTES})
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


def console_session(daemon: Daemon, key: str, secret: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    state = http.post(f"{daemon.endpoint}/console/session", timeout=10,
                      json={"AccessKeyId": key, "SecretAccessKey": secret}).json()
    return http, state["csrf"]


def upload(http: requests.Session, daemon: Daemon, collection: str, data: bytes,
           csrf: str | None, person: str = "jane") -> requests.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return http.post(f"{daemon.endpoint}/console/enrol/{collection}", data=data,
                     params={"id": person, "file": f"{person}.mp4"}, headers=headers,
                     timeout=120)


def test_a_clip_is_enrolled_once_then_reported_present(daemon: Daemon) -> None:
    fresh_collection(daemon, "video-staff")
    http, csrf = console_session(daemon, ADMIN_ID, ADMIN_SECRET)
    first = upload(http, daemon, "video-staff", WOMAN.read_bytes(), csrf)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["Problem"] is None and report["Present"] == []
    assert 1 <= len(report["Indexed"]) <= 3  # the best frames, as streamproc enrol keeps
    faces = admin(daemon).list_faces(CollectionId="video-staff")["Faces"]
    assert sorted(f["FaceId"] for f in faces) == sorted(report["Indexed"])
    assert {f["ExternalImageId"] for f in faces} == {"jane"}
    again = upload(http, daemon, "video-staff", WOMAN.read_bytes(), csrf).json()
    assert again["Indexed"] == [] and sorted(again["Present"]) == sorted(report["Indexed"])
    assert len(admin(daemon).list_faces(CollectionId="video-staff")["Faces"]) == len(faces)


def test_bad_uploads_get_a_reason_never_a_500(daemon: Daemon) -> None:
    fresh_collection(daemon, "video-bad")
    http, csrf = console_session(daemon, ADMIN_ID, ADMIN_SECRET)
    junk = upload(http, daemon, "video-bad", b"this is a text file\n" * 100, csrf)
    assert junk.status_code == 200
    assert junk.json()["Problem"].startswith("cannot decode video: ")
    big = upload(http, daemon, "video-bad", b"\0" * (MAX_BYTES + 1), csrf)
    assert big.status_code == 400
    assert big.json()["__type"] == "VideoTooLargeException"
    assert "console.enrol_video_max_bytes" in big.json()["Message"]
    bad_id = upload(http, daemon, "video-bad", WOMAN.read_bytes(), csrf, person="no spaces")
    assert bad_id.status_code == 400  # IndexFaces' own pattern, judged before the body
    assert bad_id.json()["__type"] == "InvalidParameterException"
    assert "ExternalImageId" in bad_id.json()["Message"]
    missing = upload(http, daemon, "no-such-collection", WOMAN.read_bytes(), csrf).json()
    assert missing["Problem"].startswith("ResourceNotFoundException: ")
    assert admin(daemon).list_faces(CollectionId="video-bad")["Faces"] == []


def test_the_route_needs_a_session_its_token_and_index_faces(daemon: Daemon) -> None:
    fresh_collection(daemon, "video-guarded")
    anonymous = upload(requests.Session(), daemon, "video-guarded", WOMAN.read_bytes(), None)
    assert anonymous.status_code == 403
    http, csrf = console_session(daemon, ADMIN_ID, ADMIN_SECRET)
    no_token = upload(http, daemon, "video-guarded", WOMAN.read_bytes(), None)
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["Message"]
    denied_http, denied_csrf = console_session(daemon, NOINDEX_ID, NOINDEX_SECRET)
    denied = upload(denied_http, daemon, "video-guarded", WOMAN.read_bytes(), denied_csrf)
    assert denied.status_code == 403
    assert denied.json()["__type"] == "AccessDeniedException"
    assert admin(daemon).list_faces(CollectionId="video-guarded")["Faces"] == []


def test_a_dropped_clip_is_enrolled_and_reported_on_the_page(
        daemon: Daemon, page: RecordedPage, tmp_path: Path) -> None:  # noqa: F811
    fresh_collection(daemon, "video-page")
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    open_collection(page, daemon, "video-page")
    drop(page, "#enrol-drop", WOMAN, "video/mp4")
    row = page.page.locator(f'#enrol-report tr[data-file="{WOMAN.name}"]')
    expect(row.locator("td").nth(1)).to_have_text("indexed", timeout=WAIT_MS)
    faces = admin(daemon).list_faces(CollectionId="video-page")["Faces"]
    assert faces and {f["ExternalImageId"] for f in faces} == {WOMAN.stem}
    why = row.locator(".why").inner_text()
    assert why.startswith("indexed ")
    assert set(why.removeprefix("indexed ").split(", ")) == {f["FaceId"] for f in faces}
    expect(page.page.locator("#enrol-status")).to_have_text("1 file: 1 indexed, 0 refused")
    # Not a video, though its name says so: refused with the decoder's reason.
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video\n" * 100)
    drop(page, "#enrol-drop", fake, "video/mp4")
    refused = page.page.locator('#enrol-report tr[data-file="holiday.mp4"]')
    expect(refused.locator("td").nth(1)).to_have_text("refused", timeout=WAIT_MS)
    assert refused.locator(".why").inner_text().startswith("cannot decode video: ")
    page.screenshot("collection-enrol-video")
    # The same clip again: every face is there already, and the row says so (not "indexed").
    drop(page, "#enrol-drop", WOMAN, "video/mp4")
    again = page.page.locator(f'#enrol-report tr[data-file="{WOMAN.name}"]').nth(1)
    expect(again.locator("td").nth(1)).to_have_text("already there", timeout=WAIT_MS)
    assert again.locator(".why").inner_text().startswith("already there ")
    expect(page.page.locator("#enrol-status")).to_have_text(
        "1 file: 0 indexed, 1 already there, 0 refused")


def test_a_key_refused_index_faces_sees_the_access_denied(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "video-denied")
    sign_in(page, daemon, NOINDEX_ID, NOINDEX_SECRET)
    open_collection(page, daemon, "video-denied")
    # whoami says IndexFaces is not allowed, so the page shows no drop zone: put the enrol
    # section there as it is for a key that may, and let the server refuse.
    page.page.evaluate("""async () => {
        const m = await import('/console/static/upload.js');
        document.querySelector('main').append(m.enrolSection('video-denied', async () => {}));
    }""")
    drop(page, "#enrol-drop", WOMAN, "video/mp4")
    row = page.page.locator(f'#enrol-report tr[data-file="{WOMAN.name}"]')
    expect(row.locator(".why")).to_have_text(
        f"AccessDeniedException: User: {NOINDEX_ID} is not authorized to perform: "
        "rekognition:IndexFaces", timeout=WAIT_MS)
    expect(row.locator("td").nth(1)).to_have_text("refused")
    assert admin(daemon).list_faces(CollectionId="video-denied")["Faces"] == []
