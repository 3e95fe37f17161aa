"""The video upload route's bounds, without a daemon: busy, stopping, too large.

:class:`VideoEnrolment` behind Starlette's test client, with a fake console (one signed-in
session) and a fake API whose body reader is the real one's contract (the bytes, or
ImageTooLargeException). The work a full upload does is in test_console_enrol_video.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import anyio
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response

from streamproc.api.transport import ControlApi
from streamproc.console.enrol_video import DECODES, VideoEnrolment
from streamproc.console.routes import Refusals
from streamproc.console.sessions import Session
from streamproc.errors import ImageTooLargeException
from streamproc.metrics import ApiMetrics

SESSION = Session(key_id="AKIDUNIT", csrf="token-1", expires_at=1e12)


class FakeAccess:
    def __init__(self, allowed: bool = True) -> None:
        self.refusals = Refusals(ApiMetrics.create(CollectorRegistry()))
        self._allowed = allowed

    def session_of(self, request: Request) -> Session | None:
        return SESSION

    def allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        return self._allowed


class FakeApi:
    """Reads bodies as ControlApi.read_body does; any call would be a test failure."""

    def __init__(self) -> None:
        self.calls = 0

    async def read_body(self, request: Request, max_bytes: int) -> bytes:
        body = await request.body()
        if len(body) > max_bytes:
            raise ImageTooLargeException("too big")
        return body

    async def call(self, request: Request, operation: str, key_id: str | None) -> Any:
        self.calls += 1
        raise AssertionError(f"no operation should run here ({operation})")


Endpoint = Callable[[Request], Awaitable[Response]]


def client(tmp_path: Path, allowed: bool = True) -> tuple[Endpoint, VideoEnrolment, FakeApi]:
    api = FakeApi()
    route = VideoEnrolment(cast(ControlApi, api), tmp_path / "scratch", 1000)
    [extra] = route.routes(FakeAccess(allowed))
    return extra.endpoint, route, api


class Answer:
    def __init__(self, response: Response) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self._body = bytes(response.body)

    def json(self) -> Any:
        return json.loads(self._body)


def post(endpoint: Endpoint, body: bytes = b"x" * 10, csrf: str = "token-1") -> Answer:
    """The request the page sends, straight to the route's endpoint."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/console/enrol/staff",
             "query_string": b"id=jane&file=jane.mp4", "path_params": {"collection": "staff"},
             "headers": [(b"x-csrf-token", csrf.encode()),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000)}
    return Answer(anyio.run(endpoint, Request(scope, receive)))


def test_beyond_the_decodes_an_upload_is_refused_not_queued(tmp_path: Path) -> None:
    http, route, api = client(tmp_path)
    for _ in range(DECODES):
        assert route._slots.acquire(blocking=False)  # other uploads hold every place
    busy = post(http)
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
    assert busy.json()["__type"] == "LimitExceededException"
    assert api.calls == 0 and not any((tmp_path / "scratch").glob("*"))


def test_a_stopping_node_enrols_nothing(tmp_path: Path) -> None:
    http, route, api = client(tmp_path)
    route.close()
    stopped = post(http)
    assert stopped.status_code == 503 and api.calls == 0


def test_too_large_wrong_token_and_denied_are_refused_before_any_call(tmp_path: Path) -> None:
    http, _, api = client(tmp_path)
    big = post(http, b"x" * 1001)
    assert big.status_code == 400 and big.json()["__type"] == "VideoTooLargeException"
    assert post(http, csrf="wrong").status_code == 403
    denied_http, _, denied_api = client(tmp_path, allowed=False)
    denied = post(denied_http)
    assert denied.status_code == 403
    assert denied.json()["Message"] == (
        "User: AKIDUNIT is not authorized to perform: rekognition:IndexFaces")
    assert api.calls == denied_api.calls == 0
