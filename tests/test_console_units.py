"""The console's session store, CSRF check and switch, and its routes over a served ControlApi."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry

from streamproc.api.access import AccessControl
from streamproc.api.context import RequestContext
from streamproc.api.exposure import console_allowed
from streamproc.api.intake import BodyLimits
from streamproc.api.server import ConnectionTimeouts, HttpServer
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.validate import ServiceSpec
from streamproc.config import ConsoleConfig, load_config
from streamproc.console import console_routes
from streamproc.console.routes import COOKIE, STATIC, Console
from streamproc.console.sessions import (
    Session,
    SessionsFull,
    SessionStore,
    WhenFull,
    csrf_matches,
)
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


def test_a_full_store_ends_the_least_recently_used_session() -> None:
    store = SessionStore(2, 60.0, WhenFull.EVICT_LEAST_RECENT, clock=Clock())
    first, _ = store.create("AK1")
    second, _ = store.create("AK2")
    assert store.get(first) is not None  # first is now the more recently used
    third, _ = store.create("AK3")
    assert len(store) == 2 and store.evicted == 1
    assert store.get(second) is None
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

    def __init__(self, auth: bool, secure_cookie: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        config = load_config(None, {"auth.enabled": auth, "auth.access_keys": {KEY: SECRET}}
                             if auth else {})
        registry = CollectorRegistry()
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
        console = Console(api, access, SessionStore(8, 60.0), secure_cookie=secure_cookie,
                          version="test")
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
        state = client.get(f"{served.url}/console/session", timeout=5).json()
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
    assert too_big.status_code >= 400 and len(served.calls) == 1
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
        assert not re.search(r"https?://", text), name  # no CDN, font or script elsewhere
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
        assert requests.get(f"{s.url}/console/static/../routes.py", timeout=5
                            ).status_code == 404
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
