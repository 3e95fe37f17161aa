"""The web console in a real browser (Debian's Chromium via Playwright) against a real daemon.

One daemon with auth on: an admin key (no policy: full access) and a read-only key (List*
and Describe* only). Screenshots of each page go to tests/artifacts/console/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import client_for, make_config
from console_browser import (  # noqa: F401 - browser, page: fixtures
    RecordedPage,
    browser,
    keyed_client,
    keyed_daemon,
    page,
)
from playwright.sync_api import expect

from streamproc import __version__
from streamproc.daemon import Daemon

pytestmark = pytest.mark.e2e

ADMIN_ID, ADMIN_SECRET = "AKIDCONSOLEADMIN0001", "admin/console+SECRET-1"
READER_ID, READER_SECRET = "AKIDCONSOLEREADER001", "reader/console+SECRET-2"
POLICIES = {READER_ID: {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["rekognition:List*", "rekognition:Describe*"],
     "Resource": "*"}]}}
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("console")
    d = keyed_daemon(home, {ADMIN_ID: ADMIN_SECRET, READER_ID: READER_SECRET}, POLICIES,
                     **{"outputs.clusters": ["127.0.0.1:9"]})  # processors' output (never reached)
    d.start()
    yield d
    d.stop()


def admin(daemon: Daemon) -> Any:
    return keyed_client(daemon, ADMIN_ID, ADMIN_SECRET)


def create_processor(daemon: Daemon, name: str) -> None:
    rek = admin(daemon)
    try:
        rek.create_collection(CollectionId="console-people")
    except rek.exceptions.ResourceAlreadyExistsException:
        pass
    rek.create_stream_processor(
        Name=name, RoleArn="arn:aws:iam::000000000000:role/console",
        Input={"KinesisVideoStream": {"Arn": f"/nonexistent/{name}.mp4"}},
        Output={"KinesisDataStream": {"Arn": f"kafka://127.0.0.1:9/{name}"}},
        Settings={"FaceSearch": {"CollectionId": "console-people"}})


def sign_in(p: RecordedPage, daemon: Daemon, key: str, secret: str, ready: str = "overview"
            ) -> None:
    p.page.goto(f"{daemon.endpoint}/console/")
    p.page.wait_for_selector("body[data-ready=login]", timeout=WAIT_MS)
    p.page.get_by_label("Access key ID").fill(key)
    p.page.get_by_label("Secret access key").fill(secret)
    p.page.get_by_role("button", name="Sign in").click()
    if ready:
        p.page.wait_for_selector(f"body[data-ready={ready}]", timeout=WAIT_MS)


def open_processors(p: RecordedPage) -> None:
    p.page.evaluate("document.body.dataset.ready = ''")
    p.page.get_by_role("link", name="Stream processors").click()
    p.page.wait_for_selector("body[data-ready=processors]", timeout=WAIT_MS)


def assert_controls_labelled(p: RecordedPage) -> None:
    """Every button, link and field has an accessible name (text, aria-label or a label)."""
    for role in ("button", "link", "textbox"):
        for control in p.page.get_by_role(role).all():
            if not control.is_visible():
                continue
            name = (control.get_attribute("aria-label") or control.inner_text().strip()
                    or control.evaluate("e => e.labels ? [...e.labels].map(l => l.textContent)"
                                        ".join('') : ''").strip())
            assert name, f"{role} without a label: {control}"


def assert_no_secret_in_page(p: RecordedPage, secret: str) -> None:
    assert secret not in p.page.content()
    stored = p.page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert secret not in stored and secret not in json.dumps(p.context.cookies())


def test_login_shows_health_version_and_sets_a_strict_cookie(
        signed: Daemon, page: RecordedPage) -> None:  # noqa: F811
    sign_in(page, signed, ADMIN_ID, ADMIN_SECRET)
    assert page.page.locator("#version").inner_text() == __version__
    health = signed.health()
    assert page.page.locator("#health-status").inner_text() == health["status"]
    shown = page.page.locator("#stages tbody th").all_inner_texts()
    assert sorted(shown) == sorted(health["stages"]) and shown
    for name, stage in health["stages"].items():
        row = page.page.locator("#stages tbody tr", has_text=name)
        assert row.locator("td").first.inner_text() == stage["state"]
    assert page.page.locator("#who").inner_text() == f"Key {ADMIN_ID}"
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["streamproc_console"]
    assert cookies[0]["httpOnly"] is True and cookies[0]["sameSite"] == "Strict"
    assert cookies[0]["secure"] is False and cookies[0]["path"] == "/console"  # no TLS here
    assert page.page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
    assert_no_secret_in_page(page, ADMIN_SECRET)
    assert_controls_labelled(page)
    page.screenshot("overview")
    # Every request the page made stayed on this host: no CDN, font or script elsewhere.
    assert page.hosts() == {"127.0.0.1"}, page.requests
    assert any(u.endswith("/console/static/app.js") for u in page.requests)
    assert any(u.endswith("/console/static/console.css") for u in page.requests)
    # Sign out: the login page again, the cookie gone, and the old session id worthless.
    old = cookies[0]["value"]
    page.page.get_by_role("button", name="Sign out").click()
    page.page.wait_for_selector("body[data-ready=login]", timeout=WAIT_MS)
    assert page.context.cookies() == []
    stale = requests.get(f"{signed.endpoint}/console/whoami", timeout=5,
                         cookies={"streamproc_console": old})
    assert stale.status_code == 403


def test_a_wrong_secret_shows_the_error_and_sets_no_cookie(
        signed: Daemon, page: RecordedPage, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    sign_in(page, signed, ADMIN_ID, "not-the-secret", ready="")
    assert_controls_labelled(page)
    alert = page.page.get_by_role("alert")
    alert.wait_for(state="visible", timeout=WAIT_MS)
    assert "AccessDeniedException" in alert.inner_text()
    assert "not valid" in alert.inner_text()
    assert page.context.cookies() == []
    assert page.page.get_by_label("Secret access key").input_value() == ""
    assert page.page.locator("#nav").is_hidden()
    assert ("console refused (login): POST '/console/session' "
            f"access key '{ADMIN_ID}'") in caplog.text
    assert "not-the-secret" not in caplog.text  # the key id is logged, never what was typed
    page.screenshot("login-refused")


def test_a_call_without_the_csrf_header_is_refused_and_not_run(
        signed: Daemon, page: RecordedPage) -> None:  # noqa: F811
    sign_in(page, signed, ADMIN_ID, ADMIN_SECRET)
    cookie = page.context.cookies()[0]["value"]
    url = f"{signed.endpoint}/console/api/CreateCollection"
    body = json.dumps({"CollectionId": "console-csrf"})
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = page.context.request.post(url, data=body, headers=headers)
        assert refused.status == 403
        assert refused.json()["__type"] == "AccessDeniedException"
    # A request from outside the browser with the stolen cookie but no token: refused too.
    outside = requests.post(url, data=body, cookies={"streamproc_console": cookie}, timeout=5)
    assert outside.status_code == 403
    assert "console-csrf" not in admin(signed).list_collections()["CollectionIds"]
    # The page's own call (with its token) goes through the same dispatch as boto3's.
    result = page.page.evaluate("""async () => {
        const api = await import('/console/static/api.js');
        const state = await api.get('/console/session');
        api.setCsrf(state.csrf);
        return api.call('CreateCollection', {CollectionId: 'console-csrf'});
    }""")
    assert result["CollectionArn"].endswith(":collection/console-csrf")
    admin(signed).delete_collection(CollectionId="console-csrf")


def test_the_list_shows_a_boto3_processor_and_runs_start_stop_delete(
        signed: Daemon, page: RecordedPage) -> None:  # noqa: F811
    create_processor(signed, "console-door")
    sign_in(page, signed, ADMIN_ID, ADMIN_SECRET)
    assert page.page.locator('#counts li[data-status="STOPPED"] .n').inner_text() != "0"
    open_processors(page)
    row = page.page.locator('#processors tr[data-name="console-door"]')
    assert row.locator("td").first.inner_text() == "STOPPED"
    assert_controls_labelled(page)
    page.screenshot("processors")
    row.get_by_role("button", name="Start console-door").click()
    # The list is drawn anew after the call (a string to evaluate would break the page's CSP).
    expect(page.page.locator('#processors tr[data-name="console-door"] td').first
           ).not_to_have_text("STOPPED", timeout=WAIT_MS)
    described = admin(signed).describe_stream_processor(Name="console-door")
    assert described["Status"] != "STOPPED"
    # Delete by keyboard: focus the button, Enter opens the dialog, Escape cancels it.
    delete = row.get_by_role("button", name="Delete console-door")
    delete.focus()
    page.page.keyboard.press("Enter")
    dialog = page.page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    page.screenshot("confirm-delete")
    page.page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert admin(signed).describe_stream_processor(Name="console-door")["Name"]
    delete.click()
    page.page.get_by_role("button", name="Delete", exact=True).click()
    page.page.wait_for_selector('#processors tr[data-name="console-door"]', state="detached",
                                timeout=WAIT_MS)
    names = [p["Name"] for p in admin(signed).list_stream_processors()["StreamProcessors"]]
    assert "console-door" not in names


def test_a_read_only_key_sees_no_delete_and_a_forced_delete_is_denied(
        signed: Daemon, page: RecordedPage) -> None:  # noqa: F811
    create_processor(signed, "console-lobby")
    try:
        sign_in(page, signed, READER_ID, READER_SECRET)
        open_processors(page)
        row = page.page.locator('#processors tr[data-name="console-lobby"]')
        assert row.locator("td").first.inner_text() == "STOPPED"
        assert row.get_by_role("button").count() == 0  # no start, stop or delete
        page.screenshot("processors-read-only")
        # The page is told (wrongly) that the key may delete: the server still refuses.
        page.page.route("**/console/whoami?*", lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps({
                "keyId": READER_ID, "version": __version__, "allowed": [],
                "processors": {"console-lobby": ["DeleteStreamProcessor"]}})))
        open_processors(page)
        row.get_by_role("button", name="Delete console-lobby").click()
        page.page.get_by_role("button", name="Delete", exact=True).click()
        alert = page.page.get_by_role("alert")
        alert.wait_for(state="visible", timeout=WAIT_MS)
        text = alert.inner_text()
        assert "AccessDeniedException" in text and "rekognition:DeleteStreamProcessor" in text
        assert f"User: {READER_ID} is not authorized" in text
        page.screenshot("access-denied")
        assert admin(signed).describe_stream_processor(Name="console-lobby")["Name"]
    finally:
        admin(signed).delete_stream_processor(Name="console-lobby")


def test_auth_off_needs_no_login_but_still_a_csrf_token(
        tmp_path: Any, browser: Any) -> None:  # noqa: F811
    d = Daemon(make_config(tmp_path / "data"))
    d.start()
    try:
        p = RecordedPage(browser)
        try:
            p.page.goto(f"{d.endpoint}/console/")
            p.page.wait_for_selector("body[data-ready=overview]", timeout=WAIT_MS)
            assert p.page.locator("#logout").is_hidden()
            p.screenshot("overview-auth-off")
            url = f"{d.endpoint}/console/api/ListCollections"
            assert p.context.request.post(url, data="{}").status == 403
            assert p.hosts() == {"127.0.0.1"}
        finally:
            p.close()
        assert client_for(d.endpoint).list_collections()["CollectionIds"] == []
    finally:
        d.stop()


def test_no_console_where_the_api_is_open_beyond_loopback(tmp_path: Any) -> None:
    d = Daemon(make_config(tmp_path / "data", **{
        "server.host": "0.0.0.0", "server.allow_unauthenticated": True}))
    d.start()
    try:
        base = f"http://127.0.0.1:{d.port}"
        assert requests.get(f"{base}/health", timeout=5).status_code in (200, 503)
        for path in ("/console/", "/console/session", "/console/static/app.js"):
            assert requests.get(f"{base}{path}", timeout=5).status_code == 404, path
        refused = requests.post(f"{base}/console/api/ListCollections", data="{}", timeout=5)
        assert refused.status_code == 404
    finally:
        d.stop()


def test_over_tls_the_cookie_is_secure(tmp_path: Any, browser: Any) -> None:  # noqa: F811
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    d = Daemon(make_config(tmp_path / "data", **{
        "server.tls_certfile": str(certfile), "server.tls_keyfile": str(keyfile),
        "auth.enabled": True, "auth.access_keys": {ADMIN_ID: ADMIN_SECRET}}))
    d.start()
    try:
        assert d.endpoint.startswith("https://")
        p = RecordedPage(browser, ignore_https_errors=True)  # the test CA is not the system's
        try:
            sign_in(p, d, ADMIN_ID, ADMIN_SECRET)
            (cookie,) = p.context.cookies()
            assert cookie["secure"] is True and cookie["httpOnly"] is True
            assert cookie["sameSite"] == "Strict"
            assert p.page.locator("#version").inner_text() == __version__
        finally:
            p.close()
    finally:
        d.stop()
