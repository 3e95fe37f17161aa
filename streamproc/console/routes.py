"""The console's routes on the API's port: its page, its session and its one call path.

``POST /console/api/<Operation>`` takes the JSON body boto3 would send and hands it to
:meth:`ControlApi.call`, the same dispatch as ``POST /`` (handler table, validation,
``AccessControl.authorize``, error bodies, body limits), once the session cookie and the
CSRF header check out. Nothing here decides what a key may do.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from streamproc.api.access import AccessControl
from streamproc.api.transport import ControlApi, error_response
from streamproc.console.sessions import Session, SessionsFull, SessionStore, csrf_matches
from streamproc.errors import (
    AccessDeniedException,
    LimitExceededException,
    SerializationException,
    StreamprocError,
)

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "streamproc_console"
CSRF_HEADER = "x-csrf-token"
# Login bodies are two short strings; anything longer is refused before it is parsed.
MAX_LOGIN_BYTES = 4096
# The operations the pages call: whoami says which of them the session's key may use.
PAGE_OPERATIONS = ("ListStreamProcessors", "DescribeStreamProcessor", "StartStreamProcessor",
                   "StopStreamProcessor", "DeleteStreamProcessor")
PROCESSOR_OPERATIONS = PAGE_OPERATIONS[1:]
MAX_WHOAMI_PROCESSORS = 100  # one page of the processors list
# The page loads only from this origin: no inline script, nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_BAD_LOGIN = "The access key id or secret access key is not valid"
# Compared against when the key id is unknown, so both failures take the same time.
_NO_SECRET = "-" * 40


class Console:
    """The console's server side: bound to one :class:`ControlApi` and its access control."""

    def __init__(self, api: ControlApi, access: AccessControl | None, store: SessionStore,
                 *, secure_cookie: bool, version: str) -> None:
        self._api = api
        self._access = access  # None: auth is off (loopback only), no login
        self._store = store
        self._secure = secure_cookie
        self._version = version

    def routes(self) -> list[BaseRoute]:
        """The routes to serve beside the API's."""
        return [
            Route("/console", self._redirect, methods=["GET"]),
            Route("/console/", self._page, methods=["GET"]),
            Mount("/console/static", StaticFiles(directory=STATIC), name="console-static"),
            Route("/console/session", self._session_state, methods=["GET"]),
            Route("/console/session", self._login, methods=["POST"]),
            Route("/console/session", self._logout, methods=["DELETE"]),
            Route("/console/whoami", self._whoami, methods=["GET"]),
            Route("/console/api/{operation:str}", self._call, methods=["POST"]),
        ]

    async def _redirect(self, request: Request) -> Response:
        return RedirectResponse("/console/", status_code=308)

    async def _page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    def _current(self, request: Request) -> Session | None:
        session = self._store.get(request.cookies.get(COOKIE))
        if session is None:
            return None
        if self._access is not None and (
                session.key_id is None or self._access.secret(session.key_id) is None):
            return None  # the key was removed (reload): its sessions end with it
        return session

    def _started(self, session_id: str, session: Session, body: dict[str, Any]) -> Response:
        response = JSONResponse(body, headers={"Cache-Control": "no-store"})
        response.set_cookie(COOKIE, session_id, max_age=int(self._store.ttl_s),
                            path="/console", secure=self._secure, httponly=True,
                            samesite="strict")
        return response

    def _state(self, session: Session | None) -> dict[str, Any]:
        signed_in = session is not None
        state: dict[str, Any] = {"auth": self._access is not None, "signedIn": signed_in}
        if session is not None:
            state.update(csrf=session.csrf, keyId=session.key_id)
        return state

    async def _session_state(self, request: Request) -> Response:
        """The session and its CSRF token; with auth off, one is started here (no login)."""
        session = self._current(request)
        if session is None and self._access is None:
            try:
                session_id, session = self._store.create(None)
            except SessionsFull as exc:
                return _error(LimitExceededException(str(exc)))
            return self._started(session_id, session, self._state(session))
        return JSONResponse(self._state(session), headers={"Cache-Control": "no-store"})

    async def _login(self, request: Request) -> Response:
        if self._access is None:
            return await self._session_state(request)
        try:
            key_id, secret = await _credentials(request)
        except StreamprocError as exc:
            return _error(exc)
        known = self._access.secret(key_id)
        matches = hmac.compare_digest((known or _NO_SECRET).encode(), secret.encode())
        if known is None or not matches:
            # %r, cut short: the id is the client's text until it matched (no forged lines).
            logger.warning("console login refused for access key %r", key_id[:64])
            return _refused(_BAD_LOGIN)
        try:
            session_id, session = self._store.create(key_id)
        except SessionsFull as exc:
            return _error(LimitExceededException(str(exc)))
        logger.info("console session started for access key %s", key_id)
        return self._started(session_id, session, self._state(session))

    async def _logout(self, request: Request) -> Response:
        session = self._current(request)
        if session is None or not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            return _refused(_CSRF)
        self._store.end(request.cookies.get(COOKIE))
        response = JSONResponse({"signedIn": False})
        response.delete_cookie(COOKIE, path="/console", secure=self._secure, httponly=True,
                               samesite="strict")
        return response

    async def _whoami(self, request: Request) -> Response:
        session = self._current(request)
        if session is None:
            return _refused(_NO_SESSION)
        names = request.query_params.getlist("processor")[:MAX_WHOAMI_PROCESSORS]
        return JSONResponse({
            "keyId": session.key_id, "version": self._version,
            "allowed": [op for op in PAGE_OPERATIONS if self._allows(session, op, {})],
            "processors": {n: [op for op in PROCESSOR_OPERATIONS
                               if self._allows(session, op, {"Name": n})] for n in names},
        }, headers={"Cache-Control": "no-store"})

    def _allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        if operation not in self._api.operations:
            return False
        if self._access is None or session.key_id is None:
            return True
        return self._access.allows(session.key_id, operation, params)

    async def _call(self, request: Request) -> Response:
        """One operation, dispatched as ``POST /`` dispatches it, for a session with its token."""
        session = self._current(request)
        if session is None:
            return _refused(_NO_SESSION)
        if not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            return _refused(_CSRF)
        return await self._api.call(request, request.path_params["operation"], session.key_id)


_NO_SESSION = "No console session: sign in at /console/"
_CSRF = "Missing or wrong X-CSRF-Token header for this console session"


def _error(error: StreamprocError) -> Response:
    return error_response(error, str(uuid.uuid4()))


def _refused(message: str) -> Response:
    """The console's own refusal (no session, wrong CSRF token, bad login), as HTTP 403.

    AWS's error body, but never an operation's answer: those come from the API alone.
    """
    response = _error(AccessDeniedException(message))
    response.status_code = 403
    return response


async def _credentials(request: Request) -> tuple[str, str]:
    """The access key id and secret of a login body, read within :data:`MAX_LOGIN_BYTES`."""
    # A JSON content type: a cross-site form cannot send one without a CORS preflight,
    # which this server never answers, so no other site can sign a browser in.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise SerializationException("Console login takes an application/json body")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BYTES:
            raise SerializationException("Console login body is too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise SerializationException("Console login body is not JSON") from None
    key_id = data.get("AccessKeyId") if isinstance(data, dict) else None
    secret = data.get("SecretAccessKey") if isinstance(data, dict) else None
    if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id or not secret:
        raise SerializationException("Console login takes AccessKeyId and SecretAccessKey")
    return key_id, secret
