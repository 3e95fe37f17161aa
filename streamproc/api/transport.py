"""The AWS JSON 1.1 transport: parse, dispatch on X-Amz-Target, serialise.

Thin on purpose: rules live in the services, error identities in ``streamproc.errors``,
and :func:`error_response` is the only place an error becomes bytes on the wire.

A request passes, in order: exactly one X-Amz-Target; (auth on) headers that can verify;
its body, read within its own budgets (in all, per client, per claimed key), deadline and
minimum rate (``api.intake``); the signature over that body; then one of
``max_concurrent_requests`` slots, so a slow or unsigned client never holds one. The
operation dispatched is the X-Amz-Target value the signature covered.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from streamproc.api.access import AccessControl
from streamproc.api.auth import SigV4Verifier
from streamproc.api.context import RequestContext, request_context
from streamproc.api.intake import BodyLimits, BodyReader, RequestHeaders, read_headers
from streamproc.api.nesting import nests_deeper_than
from streamproc.api.validate import ServiceSpec
from streamproc.errors import (
    InternalServerError,
    LimitExceededException,
    RequestTimeoutException,
    SerializationException,
    StreamprocError,
    UnknownOperationException,
)
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import Arns

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService"
# Rekognition's deepest input nests 6 levels; deeper JSON is refused from its bytes, before
# json.loads and validation recurse into it (``api.nesting``).
MAX_JSON_DEPTH = 32
Handler = Callable[[dict[str, Any], RequestContext], dict[str, Any]]


@dataclass(frozen=True)
class ApiLimits:
    """Request bodies (size, how many at once, deadline), concurrency and worker threads."""

    body: BodyLimits
    max_concurrent: int
    worker_threads: int


def _json(status: int, body: dict[str, Any], request_id: str,
          extra: dict[str, str] | None = None) -> Response:
    headers = {"x-amzn-RequestId": request_id, **(extra or {})}
    data = json.dumps(body, separators=(",", ":")).encode()
    return Response(data, status_code=status, headers=headers, media_type=CONTENT_TYPE)


def error_body(error: StreamprocError, request_id: str) -> dict[str, str]:
    """Rekognition's error body: ``__type`` and ``Code`` name it, ``Logref`` is the request id."""
    return {"__type": error.code, "Code": error.code, "Logref": request_id,
            "Message": error.message}


def unknown_operation(prefix: str, operation: str) -> UnknownOperationException:
    """The error for an operation the handler table does not serve (``POST /`` and console)."""
    return UnknownOperationException(
        f"Unknown operation: X-Amz-Target {prefix}.{operation} is not supported")


def error_response(error: StreamprocError, request_id: str, *, close: bool = False) -> Response:
    """The one error serialiser: :func:`error_body` plus the ErrorType header.

    ``close`` ends the connection after the response: the body was not read to its end.
    """
    extra = {"X-Amzn-ErrorType": error.code, **({"Connection": "close"} if close else {})}
    return _json(error.status_code, error_body(error, request_id), request_id, extra)


class ControlApi:
    """Routes ``POST /`` to operation handlers; serves ``/health`` and ``/metrics``."""

    def __init__(self, spec: ServiceSpec, handlers: dict[str, Handler], metrics: ApiMetrics,
                 registry: CollectorRegistry, limits: ApiLimits,
                 health: Callable[[], dict[str, Any]], arns: Arns,
                 verifier: SigV4Verifier | None = None,
                 access: AccessControl | None = None,
                 cluster: Callable[[], dict[str, Any]] | None = None,
                 bodies: BodyReader | None = None) -> None:
        self._cluster = cluster
        self._spec = spec
        self._handlers = handlers
        self._metrics = metrics
        self._registry = registry
        self._limits = limits
        # Made here unless given: a caller that passes its own can watch it (``reading``).
        self._bodies = bodies if bodies is not None else BodyReader(limits.body)
        self._limiter: anyio.CapacityLimiter | None = None
        self._health = health
        self._verifier = verifier
        self._arns = arns
        self._access = access
        self._in_flight = 0

    def app(self, extra: Sequence[BaseRoute] = ()) -> Starlette:
        """The ASGI application; ``extra`` routes (the console) are served beside the API."""
        return Starlette(routes=[
            Route("/", self._rekognition, methods=["POST"]),
            Route("/health", self._health_route, methods=["GET"]),
            Route("/metrics", self._metrics_route, methods=["GET"]),
            Route("/cluster", self._cluster_route, methods=["GET"]),
            *extra,
        ], exception_handlers={HTTPException: self._http_error, Exception: self._crash})

    @property
    def operations(self) -> frozenset[str]:
        """The operations the handler table serves."""
        return frozenset(self._handlers)

    @property
    def metrics(self) -> ApiMetrics:
        """The control-plane metrics this API counts into (the console counts its refusals)."""
        return self._metrics

    async def read_body(self, request: Request, max_bytes: int) -> bytes:
        """A body read as ``POST /`` reads one, within at most ``max_bytes`` (a console login).

        The same budgets, deadline and minimum rate; raises as :meth:`BodyReader.read` does.
        """
        return await self._bodies.read(request, None, max_bytes)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        """An unknown path or method (404, 405), in AWS's shape and counted."""
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        error = UnknownOperationException(
            f"{request.method} {request.scope['path']} is not an operation (POST / with an "
            "X-Amz-Target header is)")
        response = error_response(error, str(uuid.uuid4()))
        response.status_code = status
        self._metrics.requests.labels("unknown", error.code).inc()
        return response

    async def _crash(self, request: Request, exc: Exception) -> Response:
        """Last resort for a route that raised: logged with its traceback, never shown."""
        logger.error("unhandled error serving %s %s", request.method, request.scope["path"],
                     exc_info=exc)
        self._metrics.requests.labels("unknown", InternalServerError.code).inc()
        return error_response(InternalServerError(), str(uuid.uuid4()), close=True)

    async def _health_route(self, request: Request) -> Response:
        state = self._health()
        return JSONResponse(state, status_code=200 if state.get("status") == "ok" else 503)

    async def _cluster_route(self, request: Request) -> Response:
        if self._cluster is None:
            return JSONResponse({"cluster": None, "message": "this daemon runs as a single "
                                 "node (streamproc serve --cluster BOOTSTRAP for a cluster)"})
        report = await anyio.to_thread.run_sync(self._cluster)
        return JSONResponse(report)

    async def _metrics_route(self, request: Request) -> Response:
        return Response(generate_latest(self._registry), media_type=CONTENT_TYPE_LATEST)

    async def _rekognition(self, request: Request) -> Response:
        headers = read_headers(request.scope["headers"])
        target = headers.values.get("x-amz-target", "")

        async def exchange(request_id: str) -> tuple[Response, str]:
            return await self._exchange(request, headers, target, request_id)

        return await self._serve(target.partition(".")[2], exchange)

    async def call(self, request: Request, operation: str, key_id: str | None) -> Response:
        """Run one operation for a caller the console already authenticated (``key_id``).

        The same path as ``POST /`` once its signature has verified: the body read within
        the same budgets, then :meth:`_run` (concurrency slot, handler table, validation,
        ``AccessControl.authorize``), the same error bodies and the same metrics. None as
        ``key_id`` only with auth off (no access control), as for an unsigned ``POST /``:
        with access control set, a missing key raises ``ValueError`` (fail closed).
        """
        if self._access is not None and key_id is None:
            msg = "ControlApi.call needs the caller's access key id when access control is on"
            raise ValueError(msg)

        async def exchange(request_id: str) -> tuple[Response, str]:
            try:
                body = await self._bodies.read(request, key_id)
                context = request_context({}, self._arns)
                result = await self._run(TARGET_PREFIX, operation, body, context, key_id)
            except StreamprocError as exc:
                close = isinstance(exc, RequestTimeoutException)
                return error_response(exc, request_id, close=close), exc.code
            return _json(200, result, request_id), "OK"

        return await self._serve(operation, exchange)

    async def _serve(self, operation: str,
                     exchange: Callable[[str], Awaitable[tuple[Response, str]]]) -> Response:
        """Request id, timing, the last-resort error, metrics and the access log line."""
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        # Logged as served, else as repr (cut short): a client's text never forges a line.
        shown = operation if operation in self._handlers else repr(operation[:64])
        try:
            response, code = await exchange(request_id)
        except ClientDisconnect:
            response, code = Response(status_code=400), "ClientDisconnect"
        except Exception:  # the transport's own bug: still an AWS error, logged, counted
            logger.exception("unhandled error in the transport (%s)", shown)
            error = InternalServerError()
            response, code = error_response(error, request_id, close=True), error.code
        self._observe(operation if operation in self._handlers else "unknown", code, started)
        logger.info("%s %s %d %.1fms", request_id, shown, response.status_code,
                    (time.perf_counter() - started) * 1000)
        return response

    async def _exchange(self, request: Request, headers: RequestHeaders, target: str,
                        request_id: str) -> tuple[Response, str]:
        """Read, verify, then run in a concurrency slot: a slow body never holds one."""
        try:
            if "x-amz-target" in headers.repeated:
                raise UnknownOperationException(
                    "X-Amz-Target appears more than once: the operation is ambiguous")
            claimed = None  # the key the headers name, verified only once the body is read
            if self._verifier is not None:
                claimed = self._verifier.screen(headers.values, headers.repeated)
            body = await self._bodies.read(request, claimed)
        except StreamprocError as exc:
            # A body too slow is cut; any other unread body is drained (api.protocol), so
            # a client still sending it reads this error rather than a reset.
            close = isinstance(exc, RequestTimeoutException)
            return error_response(exc, request_id, close=close), exc.code
        try:
            key_id = None
            if self._verifier is not None:
                query = request.scope["query_string"].decode("latin-1")
                key_id = self._verifier.verify("POST", request.scope["path"], query,
                                               headers.values, body, headers.repeated)
            context = request_context(headers.values, self._arns)
            prefix, _, operation = target.partition(".")
            result = await self._run(prefix, operation, body, context, key_id)
        except StreamprocError as exc:
            return error_response(exc, request_id), exc.code
        return _json(200, result, request_id), "OK"

    async def _run(self, prefix: str, operation: str, body: bytes, context: RequestContext,
                   key_id: str | None) -> dict[str, Any]:
        self._in_flight += 1  # the event loop is single-threaded: no lock needed
        try:
            if self._in_flight > self._limits.max_concurrent:
                raise LimitExceededException(
                    f"Too many concurrent requests (limit {self._limits.max_concurrent})")
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(self._limits.worker_threads)
            # Inference and SQLite are blocking: never on the event loop.
            return await anyio.to_thread.run_sync(
                self._dispatch, prefix, operation, body, context, key_id,
                limiter=self._limiter)
        finally:
            self._in_flight -= 1

    def _observe(self, operation: str, code: str, started: float) -> None:
        self._metrics.requests.labels(operation, code).inc()
        self._metrics.latency.labels(operation).observe(time.perf_counter() - started)

    def _dispatch(self, prefix: str, operation: str, body: bytes,
                  context: RequestContext, key_id: str | None) -> dict[str, Any]:
        handler = self._handlers.get(operation)
        if prefix != TARGET_PREFIX or handler is None:
            raise unknown_operation(prefix, operation)
        try:
            params = self._spec.validate(operation, _parse(body))
            if self._access is not None and key_id is not None:
                # After validation: the resources come from well-formed parameters.
                self._access.authorize(key_id, operation, params)
            return handler(params, context)
        except StreamprocError:
            raise
        except Exception:
            logger.exception("unhandled error in %s", operation)
            raise InternalServerError() from None


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    # AWS JSON is UTF-8; json.loads would also take UTF-16/32, whose escapes the depth scan
    # below does not read, so such a body could nest past the limit unseen. UTF-16/32 of
    # ASCII is valid UTF-8 but holds NUL bytes, which UTF-8 JSON never does (a NUL in a
    # string must be escaped).
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise SerializationException("Request body must be UTF-8 JSON") from None
    if b"\x00" in body:
        raise SerializationException("Request body must be UTF-8 JSON")
    if nests_deeper_than(body, MAX_JSON_DEPTH):
        raise SerializationException(
            f"Request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SerializationException() from None
    if not isinstance(params, dict):
        raise SerializationException("Request body must be a JSON object")
    return params
