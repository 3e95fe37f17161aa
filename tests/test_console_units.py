"""The console's session store, CSRF check and switch, and its routes over a served ControlApi."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
from prometheus_client import CollectorRegistry
from starlette.requests import Request

from streamproc.api.access import AccessControl
from streamproc.api.context import RequestContext
from streamproc.api.exposure import console_allowed
from streamproc.api.intake import BodyLimits
from streamproc.api.server import ConnectionTimeouts, HttpServer
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.validate import ServiceSpec
from streamproc.config import ConsoleConfig, load_config
from streamproc.console import console_routes
from streamproc.console.routes import (
    COOKIE,
    LOOPBACK_HOSTS,
    SECURITY_HEADERS,
    STATIC,
    Console,
    console_hosts,
    host_name,
)
from streamproc.console.sessions import (
    Session,
    SessionsFull,
    SessionStore,
    WhenFull,
    csrf_matches,
)
from streamproc.console.throttle import LoginThrottle
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import Arns


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_after_their_ttl() -> None:
    clock = Clock()
    store = SessionStore(4, 60.0, clock=clock)
    session_id, session = store.create("AK1")
    assert store.get(session_id) == session and session.key_id == "AK1"
    clock.now += 59.9
    assert store.get(session_id) == session  # use does not extend it: the TTL is absolute
    clock.now += 0.1
    assert store.get(session_id) is None and len(store) == 0
    assert store.get("") is None and store.get(None) is None


def test_a_full_store_ends_the_same_keys_least_recently_used_session() -> None:
    store = SessionStore(3, 60.0, WhenFull.EVICT_LEAST_RECENT, clock=Clock())
    first, _ = store.create("AK1")
    second, _ = store.create("AK1")
    other, _ = store.create("AK2")
    assert store.get(first) is not None  # first is now the more recently used
    third, _ = store.create("AK1")
    assert len(store) == 3 and store.evicted == 1
    assert store.get(second) is None and store.get(other) is not None
    assert store.get(first) is not None and store.get(third) is not None


def test_a_full_store_can_refuse_and_expired_sessions_make_room_first() -> None:
    clock = Clock()
    store = SessionStore(1, 60.0, WhenFull.REFUSE, clock=clock)
    only, _ = store.create("AK1")
    with pytest.raises(SessionsFull, match="all 1 console sessions"):
        store.create("AK2")
    assert store.get(only) is not None
    clock.now += 60.0
    fresh, _ = store.create("AK2")  # the expired one is purged before the store counts
    assert store.get(fresh) is not None and store.evicted == 0


def test_ids_and_tokens_are_random_and_only_digests_are_kept() -> None:
    store = SessionStore(10, 60.0, clock=Clock())
    made = [store.create(None) for _ in range(5)]
    ids = {i for i, _ in made}
    tokens = {s.csrf for _, s in made}
    assert len(ids) == 5 and len(tokens) == 5 and all(len(i) >= 43 for i in ids)
    assert not ids & set(store._sessions)  # the cookie values are not the keys held
    session_id, _ = made[0]
    assert store.end(session_id) and not store.end(session_id) and store.get(session_id) is None
    with pytest.raises(ValueError):
        SessionStore(0, 60.0)


def test_csrf_matches_only_the_sessions_own_token() -> None:
    session = Session("AK1", "token-abc", 0.0)
    assert csrf_matches(session, "token-abc")
    for wrong in (None, "", "token-abd", "token-ab", "TOKEN-ABC", "token-abc "):
        assert not csrf_matches(session, wrong)


@pytest.mark.parametrize("overrides, address, allowed", [
    ({}, "127.0.0.1", True),
    ({}, "::1", True),
    ({"server.allow_unauthenticated": True}, "0.0.0.0", False),
    ({"server.allow_unauthenticated": True}, "192.168.1.5", False),
    ({"server.allow_unauthenticated": True}, "127.0.0.1", True),
    ({"auth.enabled": True, "auth.access_keys": {"AK": "s"}}, "0.0.0.0", True),
    ({}, "", False),
])
def test_the_console_is_off_where_the_api_is_open_beyond_loopback(
        overrides: dict[str, Any], address: str, allowed: bool) -> None:
    assert console_allowed(load_config(None, overrides), address) is allowed


KEY, SECRET = "AKIDCONSOLEUNIT00001", "unit/secret+1"


class Served:
    """A ControlApi with one handler and the console, served on loopback."""

    def __init__(self, auth: bool, secure_cookie: bool = False, keys_file: Path | None = None,
                 hosts: frozenset[str] = LOOPBACK_HOSTS, store: SessionStore | None = None,
                 throttle: LoginThrottle | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        overrides: dict[str, Any] = {"auth.enabled": True, "auth.access_keys": {KEY: SECRET}}
        if keys_file is not None:
            overrides = {"auth.enabled": True, "auth.access_keys_file": str(keys_file)}
        config = load_config(None, overrides if auth else {})
        registry = CollectorRegistry()
        self.registry = registry
        metrics = ApiMetrics.create(registry)
        server = config.server
        limits = ApiLimits(BodyLimits.of(server), 4, 2)

        def create(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
            self.calls.append(params)
            return {"StatusCode": 200, "CollectionArn": context.arns.collection(
                params["CollectionId"]), "FaceModelVersion": "6.0"}

        access = None
        if auth:
            access = AccessControl(config.auth, Arns("us-east-1", "000000000000"), metrics)
            access.load()
        api = ControlApi(ServiceSpec(), {"CreateCollection": create}, metrics, registry,
                         limits, lambda: {"status": "ok"}, Arns("us-east-1", "000000000000"),
                         None, access)
        self.api = api
        self.access = access
        self.store = store if store is not None else SessionStore(8, 60.0)
        console = Console(api, access, self.store, secure_cookie=secure_cookie,
                          version="test", hosts=hosts, throttle=throttle)
        self.http = HttpServer(None, "127.0.0.1", 0, 1.0, ConnectionTimeouts(5.0, 5.0, 5))
        self.http.serve(api.app(console.routes()))
        self.url = f"http://127.0.0.1:{self.http.port}"


@pytest.fixture(params=[False, True], ids=["auth-off", "auth-on"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    s = Served(request.param)
    yield s
    s.http.stop(2.0)


def _signed_in(served: Served) -> tuple[requests.Session, str]:
    client = requests.Session()
    if served_auth(served):
        state = client.post(f"{served.url}/console/session", timeout=5,
                            json={"AccessKeyId": KEY, "SecretAccessKey": SECRET}).json()
    else:
        state = client.post(f"{served.url}/console/session", json={}, timeout=5).json()
    return client, state["csrf"]


def served_auth(served: Served) -> bool:
    return requests.get(f"{served.url}/console/session", timeout=5).json()["auth"]


def test_a_call_needs_the_session_and_its_csrf_token_before_it_is_dispatched(
        served: Served) -> None:
    client, csrf = _signed_in(served)
    url = f"{served.url}/console/api/CreateCollection"
    body = {"CollectionId": "c1"}
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": csrf + "x"}):
        refused = client.post(url, json=body, headers=headers, timeout=5)
        assert refused.status_code == 403
        assert refused.json()["__type"] == "AccessDeniedException"
        assert "CSRF" in refused.json()["Message"]
    no_cookie = requests.post(url, json=body, headers={"X-CSRF-Token": csrf}, timeout=5)
    assert no_cookie.status_code == 403 and "session" in no_cookie.json()["Message"]
    assert served.calls == []  # none of them reached the handler
    done = client.post(url, json=body, headers={"X-CSRF-Token": csrf}, timeout=5)
    assert done.status_code == 200, done.text
    assert done.json()["CollectionArn"].endswith(":collection/c1")
    assert served.calls == [{"CollectionId": "c1"}]
    # The same validation and error bodies as POST /: a bad id, an unknown operation.
    bad = client.post(url, json={"CollectionId": "no spaces"}, timeout=5,
                      headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400 and bad.json()["__type"] == "InvalidParameterException"
    huge = b'{"CollectionId": "' + b"x" * (9 << 20) + b'"}'  # over server.max_request_bytes
    too_big = client.post(url, data=huge, timeout=5, headers={"X-CSRF-Token": csrf})
    if not served_auth(served):  # POST / unsigned gets the same answer from the same limits
        direct = requests.post(f"{served.url}/", data=huge, timeout=5, headers={
            "X-Amz-Target": "RekognitionService.CreateCollection",
            "Content-Type": "application/x-amz-json-1.1"})
        assert (direct.status_code, direct.json()["__type"]) == (
            too_big.status_code, too_big.json()["__type"])
    assert (too_big.status_code, too_big.json()["__type"]) == (400, "ImageTooLargeException")
    assert len(served.calls) == 1
    unknown = client.post(f"{served.url}/console/api/NoSuchThing", json={}, timeout=5,
                          headers={"X-CSRF-Token": csrf})
    assert unknown.json()["__type"] == "UnknownOperationException"
    # Logout needs the token too, and ends the session.
    assert client.delete(f"{served.url}/console/session", timeout=5).status_code == 403
    assert client.delete(f"{served.url}/console/session", timeout=5,
                         headers={"X-CSRF-Token": csrf}).status_code == 200
    after = requests.post(url, json=body, headers={"X-CSRF-Token": csrf}, timeout=5,
                          cookies={COOKIE: client.cookies.get(COOKIE) or "gone"})
    assert after.status_code == 403 and len(served.calls) == 1


def test_login_checks_the_secret_and_sets_a_strict_http_only_cookie() -> None:
    s = Served(auth=True)
    try:
        url = f"{s.url}/console/session"
        for key, secret in ((KEY, "not-it"), ("AKIDUNKNOWN000000000", SECRET), (KEY, "")):
            refused = requests.post(url, json={"AccessKeyId": key, "SecretAccessKey": secret},
                                    timeout=5)
            assert refused.status_code in (400, 403) and "set-cookie" not in refused.headers
        form = requests.post(url, data={"AccessKeyId": KEY, "SecretAccessKey": SECRET},
                             timeout=5)
        assert form.status_code == 400 and "set-cookie" not in form.headers
        assert requests.get(url, timeout=5).json() == {"auth": True, "signedIn": False}
        ok = requests.post(url, json={"AccessKeyId": KEY, "SecretAccessKey": SECRET}, timeout=5)
        assert ok.status_code == 200 and SECRET not in ok.text
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert "Path=/console" in cookie and "Secure" not in cookie
    finally:
        s.http.stop(2.0)


def test_the_cookie_is_secure_when_the_api_serves_tls() -> None:
    s = Served(auth=True, secure_cookie=True)
    try:
        ok = requests.post(f"{s.url}/console/session", timeout=5,
                           json={"AccessKeyId": KEY, "SecretAccessKey": SECRET})
        assert "Secure" in ok.headers["set-cookie"]
    finally:
        s.http.stop(2.0)


def test_the_static_assets_are_whole_and_load_nothing_from_elsewhere() -> None:
    files = {p.name: p.read_text(encoding="utf-8") for p in STATIC.iterdir()}
    assert "index.html" in files and "app.js" in files
    html = files["index.html"]
    for ref in re.findall(r'(?:src|href)="/console/static/([^"]+)"', html):
        assert ref in files, ref
    for name, text in files.items():
        # Every module a script imports is shipped beside it.
        for module in re.findall(r'from "\./([^"]+)"', text):
            assert module in files, (name, module)
        # No CDN, font or script elsewhere; SVG's namespace name is a name, never fetched.
        fetched = text.replace('"http://www.w3.org/2000/svg"', '""')
        assert not re.search(r"https?://", fetched), name
        assert "innerHTML" not in text, name  # data goes in as text, never as markup
    assert "<script>" not in html  # no inline script: the page's CSP allows none


def test_the_page_is_served_with_a_self_only_policy() -> None:
    s = Served(auth=False)
    try:
        page = requests.get(f"{s.url}/console/", timeout=5)
        assert page.status_code == 200 and "app.js" in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert requests.get(f"{s.url}/console/static/app.js", timeout=5).status_code == 200
        # The raw path (as curl --path-as-is sends it): requests would normalise the "..".
        for raw in ("/console/static/../routes.py", "/console/static/%2e%2e/routes.py",
                    "/console/static/..%2froutes.py", "/console/static/%2e%2e%2f__init__.py"):
            status, body = _raw_get(s.http.port, raw)
            assert status == 404 and b"Console" not in body, raw
            # It reached the static mount (whose guard answers a foreign Host), not the
            # router's 404 for a path that lost its "..".
            assert _raw_get(s.http.port, raw, {"Host": "evil.example"})[0] == 403, raw
        moved = requests.get(f"{s.url}/console", timeout=5, allow_redirects=False)
        assert moved.status_code == 308 and moved.headers["location"] == "/console/"
    finally:
        s.http.stop(2.0)


def test_the_config_turns_the_console_off_and_names_the_store_policy() -> None:
    api = Served(auth=False)
    try:
        on = console_routes(load_config(None, {}), api.api, None, "127.0.0.1")
        assert any(getattr(r, "path", "") == "/console/api/{operation:str}" for r in on)
        off = load_config(None, {"console.enabled": False})
        assert console_routes(off, api.api, None, "127.0.0.1") == []
        opened = load_config(None, {"server.allow_unauthenticated": True})
        assert console_routes(opened, api.api, None, "0.0.0.0") == []
    finally:
        api.http.stop(2.0)
    choices = typing.get_args(ConsoleConfig.model_fields["when_full"].annotation)
    assert set(choices) == {w.value for w in WhenFull}
    with pytest.raises(ValueError):
        load_config(None, {"console.when_full": "drop_newest"})


def _raw_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET ``path`` exactly as given (no normalisation of ``..`` or escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _refused(served: Served, reason: str) -> float:
    return served.registry.get_sample_value(
        "streamproc_console_refused_total", {"reason": reason}) or 0.0


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_an_operation_name_from_the_url_is_checked_before_it_is_called(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    """S1: a decoded newline in the URL never reaches the error body or any log line."""
    client, csrf = _signed_in(served)
    caplog.set_level(logging.INFO)
    forged = "Foo%0a2026-12-07%20FORGED%20console%20session%20started%20for%20access%20key%20ROOT"
    for name in (forged, "Foo%20Bar", "Create%3BCollection", "NoSuchThing"):
        got = client.post(f"{served.url}/console/api/{name}", data="{}", timeout=5,
                          headers={"X-CSRF-Token": csrf})
        assert got.status_code == 400, name
        assert got.json()["__type"] == "UnknownOperationException"
        assert "\n" not in got.json()["Message"] and "FORGED" not in got.json()["Message"]
    assert served.calls == [] and _refused(served, "operation") == 4
    assert not [line for line in _lines(caplog) if "\n" in line]
    # A letters-only name gets the very body POST / gives (bar the request id).
    unknown = client.post(f"{served.url}/console/api/NoSuchThing", data="{}", timeout=5,
                          headers={"X-CSRF-Token": csrf}).json()
    if not served_auth(served):
        direct = requests.post(f"{served.url}/", data="{}", timeout=5, headers={
            "X-Amz-Target": "RekognitionService.NoSuchThing",
            "Content-Type": "application/x-amz-json-1.1"}).json()
        assert {k: v for k, v in direct.items() if k != "Logref"} == {
            k: v for k, v in unknown.items() if k != "Logref"}


def test_a_key_rotated_or_removed_on_reload_ends_its_sessions(tmp_path: Path) -> None:
    """S2: sessions remember a mark of the secret; a reload that changes it ends them."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({KEY: SECRET}))
    s = Served(auth=True, keys_file=keys)
    assert s.access is not None
    try:
        def signed() -> tuple[requests.Session, str]:
            client = requests.Session()
            csrf = client.post(f"{s.url}/console/session", timeout=5, json={
                "AccessKeyId": KEY, "SecretAccessKey": json.loads(keys.read_text())[KEY]}
            ).json()["csrf"]
            return client, csrf

        def call(client: requests.Session, csrf: str) -> int:
            return client.post(f"{s.url}/console/api/CreateCollection", timeout=5,
                               json={"CollectionId": "c"}, headers={"X-CSRF-Token": csrf}
                               ).status_code

        old = signed()
        assert call(*old) == 200 and len(s.store) == 1
        keys.write_text(json.dumps({KEY: "rotated-secret"}))  # rotated, same key id
        assert s.access.reload()
        assert call(*old) == 403 and len(s.store) == 0  # ended, not just hidden
        new = signed()
        assert call(*new) == 200
        keys.write_text(json.dumps({}))  # removed
        assert s.access.reload()
        assert call(*new) == 403 and len(s.store) == 0
        keys.write_text(json.dumps({KEY: "rotated-secret"}))  # the same key put back
        assert s.access.reload()
        assert call(*new) == 403  # the ended session stays ended
    finally:
        s.http.stop(2.0)


def test_a_get_starts_no_session_and_a_login_needs_a_same_origin_json_post() -> None:
    """S3: with auth off the page POSTs for its session; cross-site and form posts fail."""
    s = Served(auth=False)
    try:
        url = f"{s.url}/console/session"
        got = requests.get(url, timeout=5)
        assert got.json() == {"auth": False, "signedIn": False}
        assert "set-cookie" not in got.headers and len(s.store) == 0
        for kind in ("text/plain", "application/x-www-form-urlencoded"):
            form = requests.post(url, data="{}", headers={"Content-Type": kind}, timeout=5)
            assert form.status_code == 400 and "set-cookie" not in form.headers
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
            cross = requests.post(url, json={}, headers=headers, timeout=5)
            assert cross.status_code == 403, headers
            assert "set-cookie" not in cross.headers
        assert len(s.store) == 0 and _refused(s, "origin") == 4
        assert _refused(s, "bad_request") == 2
        same = requests.post(url, json={}, timeout=5, headers={
            "Origin": f"http://127.0.0.1:{s.http.port}", "Sec-Fetch-Site": "same-origin"})
        assert same.status_code == 200 and same.json()["signedIn"] and len(s.store) == 1
    finally:
        s.http.stop(2.0)


def test_a_new_login_ends_the_session_its_cookie_named() -> None:
    """S3: signing in again with a cookie does not leave the old session live."""
    s = Served(auth=True)
    try:
        client, csrf = _signed_in(s)
        old = client.cookies.get(COOKIE)
        again, csrf2 = _signed_in_with(s, client)
        assert again != old and len(s.store) == 1
        stale = requests.post(f"{s.url}/console/api/CreateCollection", timeout=5,
                              json={"CollectionId": "c"}, cookies={COOKIE: old or ""},
                              headers={"X-CSRF-Token": csrf})
        assert stale.status_code == 403
    finally:
        s.http.stop(2.0)


def _signed_in_with(served: Served, client: requests.Session) -> tuple[str | None, str]:
    state = client.post(f"{served.url}/console/session", timeout=5,
                        json={"AccessKeyId": KEY, "SecretAccessKey": SECRET}).json()
    return client.cookies.get(COOKIE), state["csrf"]


def test_a_key_holds_a_few_sessions_and_never_ends_another_keys() -> None:
    """S3: the per-key cap, and a full store evicting only the same key's oldest."""
    store = SessionStore(10, 60.0, WhenFull.EVICT_LEAST_RECENT, clock=Clock(), max_per_key=2)
    a1, _ = store.create("A")
    b1, _ = store.create("B")
    a2, _ = store.create("A")
    a3, _ = store.create("A")  # A's third: A's least recently used (a1) ends
    assert store.get(a1) is None and store.get(b1) is not None
    assert store.get(a2) is not None and store.get(a3) is not None and store.evicted == 1
    # A full store ends the oldest session of the key holding the most: a reader signing in
    # again and again ends its own sessions, never the one admin session (N1).
    full = SessionStore(3, 60.0, WhenFull.EVICT_LEAST_RECENT, clock=Clock(), max_per_key=10)
    admin, _ = full.create("ADMIN")
    r1, _ = full.create("READER")
    r2, _ = full.create("READER")
    for _ in range(5):
        full.create("READER")
    assert full.get(admin) is not None and full.get(r1) is None and full.get(r2) is None
    assert len(full) == 3
    c1, _ = full.create("C")  # C holds none: the reader (most held) gives one up
    assert full.get(admin) is not None and full.get(c1) is not None
    tie = SessionStore(2, 60.0, WhenFull.EVICT_LEAST_RECENT, clock=Clock())
    x, _ = tie.create("A")
    y, _ = tie.create("B")
    tie.create("C")  # one each: the oldest (A's) ends
    assert tie.get(x) is None and tie.get(y) is not None
    strict = SessionStore(10, 60.0, WhenFull.REFUSE, clock=Clock(), max_per_key=1)
    kept, _ = strict.create("A")
    with pytest.raises(SessionsFull, match="this access key's 1"):
        strict.create("A")
    assert strict.get(kept) is not None
    with pytest.raises(ValueError):
        SessionStore(4, 60.0, max_per_key=0)
    config = load_config(None, {})
    assert config.console.max_sessions_per_key == 10 and config.console.allowed_hosts == []


def test_the_login_body_is_read_within_the_apis_deadline_and_a_small_limit(
        caplog: pytest.LogCaptureFixture) -> None:
    """S4: a slow login body is cut (408), a big one refused, a dropped one not a traceback."""
    s = Served(auth=True)
    caplog.set_level(logging.INFO)
    try:
        big = requests.post(f"{s.url}/console/session", timeout=5, data=b"{" + b" " * 5000,
                            headers={"Content-Type": "application/json"})
        assert (big.status_code, big.json()["__type"]) == (400, "ImageTooLargeException")
        head = (f"POST /console/session HTTP/1.1\r\nHost: 127.0.0.1:{s.http.port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n").encode()
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", s.http.port), timeout=10) as slow:
            slow.sendall(head + b"{")
            answer = slow.recv(4096)
        assert b" 408 " in answer.split(b"\r\n")[0] and b"RequestTimeoutException" in answer
        assert time.monotonic() - started < 8  # the minimum rate's grace, not forever
        with socket.create_connection(("127.0.0.1", s.http.port), timeout=10) as dropped:
            dropped.sendall(head + b'{"AccessKeyId"')
        time.sleep(0.5)
        assert requests.get(f"{s.url}/health", timeout=5).status_code == 200
        assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in
                    r.getMessage()]
    finally:
        s.http.stop(2.0)


def test_fail_closed_without_access_control_when_auth_is_on() -> None:
    """S5: no open console by a missing AccessControl, no unauthorized call() by None."""
    s = Served(auth=True)
    try:
        config = load_config(None, {"auth.enabled": True, "auth.access_keys": {KEY: SECRET}})
        with pytest.raises(ValueError, match="AccessControl"):
            console_routes(config, s.api, None, "0.0.0.0")
        scope = {"type": "http", "method": "POST", "path": "/console/api/CreateCollection",
                 "headers": [], "query_string": b""}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b'{"CollectionId": "c"}'}

        with pytest.raises(ValueError, match="access key id"):
            anyio.run(s.api.call, Request(scope, receive), "CreateCollection", None)
        assert s.calls == []
    finally:
        s.http.stop(2.0)


def test_only_the_hosts_the_console_answers_get_through() -> None:
    """S6: a rebound name in Host gets 403 on every console path; allowed_hosts adds names."""
    assert host_name("LocalHost:8080") == "localhost" and host_name("[::1]:80") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("a.example.:1") == "a.example"
    hosts = console_hosts("10.0.0.5", "[::1]", ["Console.Example"])
    assert hosts == LOOPBACK_HOSTS | {"10.0.0.5", "console.example"}
    s = Served(auth=False, hosts=console_hosts("127.0.0.1", "127.0.0.1", ["console.example"]))
    try:
        port = s.http.port
        for path in ("/console", "/console/", "/console/session", "/console/static/app.js",
                     "/console/whoami"):
            status, _ = _raw_get(port, path, {"Host": f"rebind.evil.example:{port}"})
            assert status == 403, path
        refused = requests.post(f"{s.url}/console/session", json={}, timeout=5,
                                headers={"Host": "rebind.evil.example"})
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        assert _refused(s, "host") == 6 and len(s.store) == 0
        for host in (f"localhost:{port}", f"[::1]:{port}", f"console.example:{port}"):
            assert _raw_get(port, "/console/", {"Host": host})[0] == 200, host
        assert requests.get(f"{s.url}/health", timeout=5, headers={"Host": "any.example"}
                            ).status_code == 200  # the API's own paths are not the console's
    finally:
        s.http.stop(2.0)


def test_every_console_response_carries_the_security_headers(served: Served) -> None:
    """S8: nosniff and no framing everywhere; no-store on sessions, calls and whoami."""
    assert isinstance(SECURITY_HEADERS, tuple)
    client, csrf = _signed_in(served)
    token = {"X-CSRF-Token": csrf}
    responses = {
        "page": client.get(f"{served.url}/console/", timeout=5),
        "static": client.get(f"{served.url}/console/static/app.js", timeout=5),
        "session": client.get(f"{served.url}/console/session", timeout=5),
        "whoami": client.get(f"{served.url}/console/whoami", timeout=5),
        "call": client.post(f"{served.url}/console/api/CreateCollection", timeout=5,
                            json={"CollectionId": "h1"}, headers=token),
        "error": client.post(f"{served.url}/console/api/CreateCollection", timeout=5,
                             json={"CollectionId": "no spaces"}, headers=token),
        "refused": requests.get(f"{served.url}/console/whoami", timeout=5),
        "logout": client.delete(f"{served.url}/console/session", headers=token, timeout=5),
        "unknown": client.get(f"{served.url}/console/nothing-here", timeout=5),
        "method": client.put(f"{served.url}/console/whoami", timeout=5),
    }
    assert responses["unknown"].status_code == 404 and responses["method"].status_code == 404
    for what, response in responses.items():
        headers = response.headers
        assert headers["x-frame-options"] == "DENY", what
        assert "frame-ancestors 'none'" in headers["content-security-policy"], what
        assert headers["x-content-type-options"] == "nosniff", what
        if what != "static":
            assert headers["cache-control"] == "no-store", what


def test_the_consoles_refusals_are_counted_and_logged_without_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    """S9: no session, a wrong token and a bad login: one counted, logged line each."""
    s = Served(auth=True)
    caplog.set_level(logging.INFO)
    try:
        url = f"{s.url}/console/api/CreateCollection"
        requests.post(url, json={"CollectionId": "c"}, timeout=5)
        client, _ = _signed_in(s)
        client.post(url, json={"CollectionId": "c"}, headers={"X-CSRF-Token": "x"}, timeout=5)
        requests.post(f"{s.url}/console/session", timeout=5,
                      json={"AccessKeyId": KEY, "SecretAccessKey": "wrong-secret-XYZ"})
        assert [_refused(s, r) for r in ("no_session", "csrf", "login")] == [1, 1, 1]
        refusals = [line for line in _lines(caplog) if line.startswith("console refused")]
        assert len(refusals) == 3
        assert not [line for line in _lines(caplog) if SECRET in line or "XYZ" in line]
    finally:
        s.http.stop(2.0)


def test_the_transport_logs_an_unserved_operation_name_as_repr(
        caplog: pytest.LogCaptureFixture) -> None:
    """S1: whatever name reaches ControlApi.call, its access-log line stays one line."""
    s = Served(auth=False)
    caplog.set_level(logging.INFO, logger="streamproc.api.transport")
    try:
        scope = {"type": "http", "method": "POST", "path": "/console/api/x", "headers": [],
                 "query_string": b""}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}"}

        response = anyio.run(s.api.call, Request(scope, receive), "Foo\nFORGED line", None)
        assert response.status_code == 400
        lines = [r.getMessage() for r in caplog.records if r.name == "streamproc.api.transport"]
        assert lines and all("\n" not in line for line in lines)
        assert "'Foo\\nFORGED line'" in lines[-1]
    finally:
        s.http.stop(2.0)


def test_a_sign_in_first_drops_the_sessions_of_keys_no_longer_standing() -> None:
    """N2: sessions of a removed or rotated key hold no room once anyone signs in."""
    store = SessionStore(2, 60.0, WhenFull.REFUSE, clock=Clock(), max_per_key=2)
    old1, _ = store.create("OLD", "mark-1")
    old2, _ = store.create("OLD", "mark-1")
    with pytest.raises(SessionsFull):
        store.create("OLD", "mark-2")  # without the check: the rotated key is locked out
    fresh, _ = store.create("OLD", "mark-2", lambda s: s.key_mark == "mark-2")
    assert store.get(old1) is None and store.get(old2) is None
    assert store.get(fresh) is not None and len(store) == 1 and store.evicted == 0


def test_request_threads_hammering_the_store_keep_both_caps() -> None:
    """Sign-ins, reads and sign-outs from 8 threads at once: the caps and the LRU hold."""
    import threading

    store = SessionStore(20, 60.0, WhenFull.EVICT_LEAST_RECENT, clock=Clock(), max_per_key=3)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(400):
                session_id, _ = store.create(f"K{(n + i) % 12}")
                store.get(session_id)
                if i % 5 == 0:
                    store.end(session_id)
                assert len(store) <= 20
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and not any(t.is_alive() for t in threads)
    held: dict[str | None, int] = {}
    for session in store._sessions.values():
        held[session.key_id] = held.get(session.key_id, 0) + 1
    assert len(store) <= 20 and max(held.values()) <= 3
