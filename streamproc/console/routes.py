"""The console's routes on the API's port: its page, its session and its one call path.

``POST /console/api/<Operation>`` takes the JSON body boto3 would send and hands it to
:meth:`ControlApi.call`, the same dispatch as ``POST /`` (handler table, validation,
``AccessControl.authorize``, error bodies, body limits), once the session cookie and the
CSRF header check out. Nothing here decides what a key may do.

Every ``/console`` request passes :class:`_Guard` first: a Host the console answers (DNS
rebinding), and for a POST or DELETE no cross-site ``Origin`` / ``Sec-Fetch-Site``; every
response gets the page's security headers. Each refusal is counted
(``streamproc_console_refused_total{reason}``) and logged, one line, no secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamproc.api.access import AccessControl
from streamproc.api.transport import TARGET_PREFIX, ControlApi, error_response, unknown_operation
from streamproc.console.extension import Extension
from streamproc.console.job_kinds import MEDIA_JOB_OPERATIONS, VIDEO_JOB_GETS
from streamproc.console.sessions import Session, SessionsFull, SessionStore, csrf_matches
from streamproc.console.throttle import LoginThrottle
from streamproc.errors import (
    AccessDeniedException,
    LimitExceededException,
    RequestTimeoutException,
    SerializationException,
    StreamprocError,
    ThrottlingException,
)
from streamproc.metrics import ApiMetrics
from streamproc.storage.crops import Crops

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "streamproc_console"
CSRF_HEADER = "x-csrf-token"
# Login bodies are two short strings; anything longer is refused before it is parsed.
MAX_LOGIN_BYTES = 4096
# The operations the pages call: whoami says which of them the session's key may use.
PROCESSOR_OPERATIONS = ("DescribeStreamProcessor", "StartStreamProcessor",
                        "StopStreamProcessor", "DeleteStreamProcessor")
COLLECTION_OPERATIONS = ("ListFaces", "ListUsers", "IndexFaces", "SearchFacesByImage",
                         "DeleteFaces", "DeleteUser")
# The stored-video and media-analysis jobs the Jobs page reads.
JOB_OPERATIONS = (*VIDEO_JOB_GETS, *MEDIA_JOB_OPERATIONS)
PAGE_OPERATIONS = ("ListStreamProcessors", "CreateStreamProcessor", *PROCESSOR_OPERATIONS,
                   "ListCollections", *COLLECTION_OPERATIONS, *JOB_OPERATIONS)
# Operations a key may be allowed on some resources only (a policy naming processors by a
# pattern): whoami lists them apart, and the page shows their form with that said.
SCOPED_OPERATIONS = ("CreateStreamProcessor",)
MAX_WHOAMI_PROCESSORS = 100  # one page of the processors list
MAX_WHOAMI_COLLECTIONS = 100  # one page of the collections list
# An operation name from the URL (decoded): Rekognition's names are letters only.
OPERATION_NAME = re.compile(r"[A-Za-z]+")
# Names a loopback console is reached by; the bound address and allowed_hosts add to them.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# On every /console response: the page loads only from this origin (no inline script,
# nothing from elsewhere) and is never framed. Pairs, so nothing can change them.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
NO_STORE = ("Cache-Control", "no-store")  # all but /console/static/: sessions, calls, whoami
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values let through
_BAD_LOGIN = "The access key id or secret access key is not valid"
_NO_SESSION = "No console session: sign in at /console/"
_CSRF = "Missing or wrong X-CSRF-Token header for this console session"
# Compared against when the key id is unknown, so both failures take the same time.
_NO_SECRET = "-" * 40


def host_name(host: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return (host.rpartition(":")[0] if host.count(":") == 1 else host).rstrip(".")


def console_hosts(bound: str, configured: str, extra: Iterable[str]) -> frozenset[str]:
    """The Host names the console answers: loopback, the bound address, server.host, extra."""
    names = {host_name(n) if n.startswith("[") else n.strip().lower().rstrip(".")
             for n in (bound, configured, *extra)}
    return frozenset(LOOPBACK_HOSTS | {n for n in names if n})


class Refusals:
    """The console's own refusals: each counted by reason and logged, one line, no secret."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics

    def refuse(self, reason: str, scope: Scope, error: StreamprocError, *, status: int = 0,
               detail: str = "", close: bool = False) -> Response:
        """The response for a refusal (``status`` 0: the error's own), counted and logged.

        ``detail``: what was refused ("access key 'AK...'"), its client text already repr'd.
        """
        self._metrics.console_refused.labels(reason).inc()
        path = str(scope.get("path", ""))[:100]
        # %r: the path and the detail are the client's text, so no line can be forged.
        logger.warning("console refused (%s): %s %r%s", reason, scope.get("method", "-"),
                       path, f" {detail}" if detail else "")
        response = error_response(error, str(uuid.uuid4()), close=close)
        if status:
            response.status_code = status
        return response

    def denied(self, reason: str, scope: Scope, message: str, detail: str = "") -> Response:
        """An AccessDeniedException as HTTP 403: the console's refusal, not an operation's."""
        return self.refuse(reason, scope, AccessDeniedException(message), status=403,
                           detail=detail)


class _Guard:
    """Host allowlist and cross-site check before, security headers after, any /console app."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str], refusals: Refusals,
                 scheme: str) -> None:
        self._app = app
        self._hosts = hosts
        self._refusals = refusals
        self._scheme = scheme

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        static = str(scope.get("path", "")).startswith("/console/static/")
        extra = [(k.lower().encode(), v.encode()) for k, v in
                 (*SECURITY_HEADERS, *(() if static else (NO_STORE,)))]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self._app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if host_name(host) not in self._hosts:
            return self._refusals.denied(
                "host", scope, "This Host is not one the console answers: add the name to "
                "console.allowed_hosts", detail=f"host {host[:100]!r}")
        if scope.get("method") in _SAFE_METHODS:
            return None
        fetch_site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if (fetch_site is not None and fetch_site.lower() not in _SAME_ORIGIN_FETCH) or (
                origin is not None and origin.lower() != f"{self._scheme}://{host.lower()}"):
            return self._refusals.denied(
                "origin", scope, "Cross-site requests to the console are refused",
                detail=f"origin {origin!r} sec-fetch-site {fetch_site!r}"[:200])
        return None


_ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


async def _not_found(request: Request) -> Response:
    return Response(status_code=404)


class Console:
    """The console's server side: bound to one :class:`ControlApi` and its access control."""

    def __init__(self, api: ControlApi, access: AccessControl | None, store: SessionStore,
                 *, secure_cookie: bool, version: str,
                 hosts: frozenset[str] = LOOPBACK_HOSTS, crops: Crops | None = None,
                 extensions: tuple[Extension, ...] = (),
                 throttle: LoginThrottle | None = None) -> None:
        self._api = api
        # Failed sign-ins per client address (console.login_max_failures in the window).
        self._throttle = throttle if throttle is not None else LoginThrottle(10, 300.0)
        self._extensions = extensions
        self._crops = crops  # None: console.face_crops is off
        self._access = access  # None: auth is off (loopback only), no login
        self._store = store
        self._secure = secure_cookie
        self._version = version
        self._hosts = hosts
        self._refusals = Refusals(api.metrics)
        # Keys the marks of secrets that sessions remember: a digest no one can precompute.
        self._pepper = secrets.token_bytes(32)

    def routes(self) -> list[BaseRoute]:
        """The routes to serve beside the API's, each behind the guard."""
        scheme = "https" if self._secure else "http"
        guard = [Middleware(_Guard, hosts=self._hosts, refusals=self._refusals, scheme=scheme)]
        return [
            Route("/console", RedirectResponse("/console/", status_code=308), methods=["GET"],
                  middleware=guard),
            Route("/console/", self._page, methods=["GET"], middleware=guard),
            Mount("/console/static", StaticFiles(directory=STATIC), name="console-static",
                  middleware=guard),
            Route("/console/session", self._session_state, methods=["GET"], middleware=guard),
            Route("/console/session", self._login, methods=["POST"], middleware=guard),
            Route("/console/session", self._logout, methods=["DELETE"], middleware=guard),
            Route("/console/whoami", self._whoami, methods=["GET"], middleware=guard),
            Route("/console/api/{operation:str}", self._call, methods=["POST"],
                  middleware=guard),
            Route("/console/crops/{collection:str}/{face_id:str}", self._crop, methods=["GET"],
                  middleware=guard),
            *(Route(extra.path, extra.endpoint, methods=list(extra.methods), middleware=guard)
              for extension in self._extensions for extra in extension.routes(self)),
            # Last: any other /console path or method is a 404 that carries the guard's
            # checks and headers too (the API's own 404/405 would carry neither).
            Route("/console/{rest:path}", _not_found, methods=list(_ANY_METHOD),
                  middleware=guard),
        ]

    async def _page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    # ---- ConsoleAccess, for extensions -----------------------------------------------------
    @property
    def refusals(self) -> Refusals:
        """The console's refusals (counted by reason, logged, no secret)."""
        return self._refusals

    def session_of(self, request: Request) -> Session | None:
        """The request's signed-in session, or None."""
        return self._current(request)

    def allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        """Whether the session's key may call ``operation`` with ``params`` here."""
        return self._allows(session, operation, params)

    def _mark(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def _key_stands(self, session: Session) -> bool:
        """Whether the session's key is still configured with the secret it signed in with."""
        if self._access is None:
            return True
        secret = self._access.secret(session.key_id) if session.key_id is not None else None
        return secret is not None and hmac.compare_digest(self._mark(secret), session.key_mark)

    def _current(self, request: Request) -> Session | None:
        cookie = request.cookies.get(COOKIE)
        session = self._store.get(cookie)
        if session is None or self._access is None:
            return session
        if not self._key_stands(session):
            # The key was removed or its secret rotated (reload): its sessions end with it.
            self._store.end(cookie)
            logger.info("console session ended: access key %s was removed or rotated",
                        session.key_id)
            return None
        return session

    def _started(self, session_id: str, session: Session, body: dict[str, Any]) -> Response:
        response = JSONResponse(body)
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
        """The session and its CSRF token, if there is one; starts nothing (a GET)."""
        return JSONResponse(self._state(self._current(request)))

    async def _login(self, request: Request) -> Response:
        """Start a session: with auth on from a key id and secret, with auth off from ``{}``.

        A JSON body only (a cross-site form cannot send one without a CORS preflight, which
        this server never answers), read as ``POST /`` reads one within
        :data:`MAX_LOGIN_BYTES`. A sign-in ends the session its cookie named, if any.
        """
        try:
            body = await self._login_body(request)
            key_id, secret = _credentials(body) if self._access is not None else (None, "")
        except ClientDisconnect:
            return Response(status_code=400)
        except StreamprocError as exc:
            return self._refusals.refuse("bad_request", request.scope, exc,
                                         close=isinstance(exc, RequestTimeoutException))
        mark = ""
        if self._access is not None and key_id is not None:
            client = request.client.host if request.client is not None else "-"
            wait = self._throttle.wait_s(client)
            if wait > 0:
                return self._throttled(request, key_id, wait)
            known = self._access.secret(key_id)
            matches = hmac.compare_digest((known or _NO_SECRET).encode(), secret.encode())
            if known is None or not matches:
                self._throttle.failed(client)
                return self._refusals.denied("login", request.scope, _BAD_LOGIN,
                                             detail=f"access key {key_id[:64]!r}")
            mark = self._mark(known)
        self._store.end(request.cookies.get(COOKIE))
        try:
            session_id, session = self._store.create(key_id, mark, self._key_stands)
        except SessionsFull as exc:
            return self._refusals.refuse("sessions_full", request.scope,
                                         LimitExceededException(str(exc)))
        logger.info("console session started for access key %s", key_id or "- (auth off)")
        return self._started(session_id, session, self._state(session))

    def _throttled(self, request: Request, key_id: str, wait: float) -> Response:
        """429: too many failed sign-ins from this address, lately."""
        seconds = math.ceil(wait)
        response = self._refusals.refuse(
            "login_throttled", request.scope, ThrottlingException(
                f"Too many failed sign-ins from this address: try again in {seconds} s"),
            status=429, detail=f"access key {key_id[:64]!r}")
        response.headers["Retry-After"] = str(seconds)
        return response

    async def _login_body(self, request: Request) -> bytes:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise SerializationException("Console sign-in takes an application/json body")
        return await self._api.read_body(request, MAX_LOGIN_BYTES)

    async def _logout(self, request: Request) -> Response:
        session = self._current(request)
        if session is None:
            return self._refusals.denied("no_session", request.scope, _NO_SESSION)
        if not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            return self._refusals.denied("csrf", request.scope, _CSRF)
        self._store.end(request.cookies.get(COOKIE))
        response = JSONResponse({"signedIn": False})
        response.delete_cookie(COOKIE, path="/console", secure=self._secure, httponly=True,
                               samesite="strict")
        return response

    async def _whoami(self, request: Request) -> Response:
        session = self._current(request)
        if session is None:
            return self._refusals.denied("no_session", request.scope, _NO_SESSION)
        names = request.query_params.getlist("processor")[:MAX_WHOAMI_PROCESSORS]
        collections = request.query_params.getlist("collection")[:MAX_WHOAMI_COLLECTIONS]
        allowed = [op for op in PAGE_OPERATIONS if self._allows(session, op, {})]
        return JSONResponse({
            "keyId": session.key_id, "version": self._version,
            "allowed": allowed,
            # Allowed on some resources, not on "*": the API judges each request's own.
            "allowedSomewhere": [op for op in SCOPED_OPERATIONS if op not in allowed
                                 and self._allows_somewhere(session, op)],
            "processors": {n: [op for op in PROCESSOR_OPERATIONS
                               if self._allows(session, op, {"Name": n})] for n in names},
            "collections": {c: [op for op in COLLECTION_OPERATIONS
                                if self._allows(session, op, {"CollectionId": c})]
                            for c in collections},
            "faceCrops": self._crops is not None,
        })

    async def _crop(self, request: Request) -> Response:
        """A face's crop (image/jpeg) for a session whose key may list the collection's faces.

        404 when crops are off, none is kept for the face, or the key may not ListFaces
        there (so a crop's existence tells such a key nothing).
        """
        session = self._current(request)
        if session is None:
            return self._refusals.denied("no_session", request.scope, _NO_SESSION)
        collection = request.path_params["collection"]
        jpeg = None
        if self._crops is not None and self._allows(session, "ListFaces",
                                                    {"CollectionId": collection}):
            # A file or object read (it may wait on the store's lock or on S3): off the event
            # loop, which serves the API.
            jpeg = await run_in_threadpool(self._crops.get, collection,
                                           request.path_params["face_id"])
        if jpeg is None:
            return Response(status_code=404)
        return Response(jpeg, media_type="image/jpeg")

    def _allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        if operation not in self._api.operations:
            return False
        if self._access is None or session.key_id is None:
            return True
        return self._access.allows(session.key_id, operation, params)

    def _allows_somewhere(self, session: Session, operation: str) -> bool:
        if operation not in self._api.operations:
            return False
        if self._access is None or session.key_id is None:
            return True
        return self._access.allows_somewhere(session.key_id, operation)

    async def _call(self, request: Request) -> Response:
        """One operation, dispatched as ``POST /`` dispatches it, for a session with its token."""
        session = self._current(request)
        if session is None:
            return self._refusals.denied("no_session", request.scope, _NO_SESSION)
        if not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            return self._refusals.denied("csrf", request.scope, _CSRF)
        operation = request.path_params["operation"]
        if not OPERATION_NAME.fullmatch(operation) or operation not in self._api.operations:
            # Before call(): the name is the URL's (decoded) text, so it is shown only
            # once it is letters alone, and never reaches the API's log unchecked.
            shown = operation if OPERATION_NAME.fullmatch(operation) else "(not [A-Za-z]+)"
            return self._refusals.refuse("operation", request.scope,
                                         unknown_operation(TARGET_PREFIX, shown))
        return await self._api.call(request, operation, session.key_id)


def _credentials(body: bytes) -> tuple[str, str]:
    """The access key id and secret of a login body."""
    try:
        data = json.loads(body)
    except ValueError:
        raise SerializationException("Console login body is not JSON") from None
    key_id = data.get("AccessKeyId") if isinstance(data, dict) else None
    secret = data.get("SecretAccessKey") if isinstance(data, dict) else None
    if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id or not secret:
        raise SerializationException("Console login takes AccessKeyId and SecretAccessKey")
    return key_id, secret
