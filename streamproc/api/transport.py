"""The AWS JSON 1.1 transport: parse, dispatch on X-Amz-Target, serialise.

Thin on purpose: rules live in the services, error identities in ``streamproc.errors``,
and :func:`error_response` is the only place an error becomes bytes on the wire.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from streamproc.api.access import AccessControl
from streamproc.api.auth import SigV4Verifier
from streamproc.api.context import RequestContext, request_context
from streamproc.api.validate import ServiceSpec
from streamproc.errors import (
    ImageTooLargeException,
    InternalServerError,
    LimitExceededException,
    SerializationException,
    StreamprocError,
    UnknownOperationException,
)
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import Arns

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService"
Handler = Callable[[dict[str, Any], RequestContext], dict[str, Any]]


@dataclass(frozen=True)
class ApiLimits:
    """Request size, concurrency and worker threads."""

    max_body: int
    max_concurrent: int
    worker_threads: int


def _json(status: int, body: dict[str, Any], request_id: str,
          extra: dict[str, str] | None = None) -> Response:
    headers = {"x-amzn-RequestId": request_id, **(extra or {})}
    data = json.dumps(body, separators=(",", ":")).encode()
    return Response(data, status_code=status, headers=headers, media_type=CONTENT_TYPE)


def error_response(error: StreamprocError, request_id: str) -> Response:
    """The one error serialiser: ``{"__type", "Message"}`` plus the ErrorType header."""
    body = {"__type": error.code, "Message": error.message}
    return _json(error.status_code, body, request_id, {"X-Amzn-ErrorType": error.code})


class ControlApi:
    """Routes ``POST /`` to operation handlers; serves ``/health`` and ``/metrics``."""

    def __init__(self, spec: ServiceSpec, handlers: dict[str, Handler], metrics: ApiMetrics,
                 registry: CollectorRegistry, limits: ApiLimits,
                 health: Callable[[], dict[str, Any]], arns: Arns,
                 verifier: SigV4Verifier | None = None,
                 access: AccessControl | None = None,
                 cluster: Callable[[], dict[str, Any]] | None = None) -> None:
        self._cluster = cluster
        self._spec = spec
        self._handlers = handlers
        self._metrics = metrics
        self._registry = registry
        self._limits = limits
        self._limiter: anyio.CapacityLimiter | None = None
        self._health = health
        self._verifier = verifier
        self._arns = arns
        self._access = access
        self._in_flight = 0

    def app(self) -> Starlette:
        """The ASGI application."""
        return Starlette(routes=[
            Route("/", self._rekognition, methods=["POST"]),
            Route("/health", self._health_route, methods=["GET"]),
            Route("/metrics", self._metrics_route, methods=["GET"]),
            Route("/cluster", self._cluster_route, methods=["GET"]),
        ])

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

    async def _read_body(self, request: Request) -> bytes:
        limit = self._limits.max_body
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ImageTooLargeException(
                f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ImageTooLargeException(
                    f"Request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _rekognition(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        target = request.headers.get("x-amz-target", "")
        prefix, _, operation = target.partition(".")
        started = time.perf_counter()
        self._in_flight += 1  # the event loop is single-threaded: no lock needed
        try:
            if self._in_flight > self._limits.max_concurrent:
                raise LimitExceededException(
                    f"Too many concurrent requests (limit {self._limits.max_concurrent})")
            body = await self._read_body(request)
            headers = {k.lower(): v for k, v in request.headers.items()}
            key_id = None
            if self._verifier is not None:
                key_id = self._verifier.verify("POST", request.url.path, request.url.query,
                                               headers, body)
            context = request_context(headers, self._arns)
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(self._limits.worker_threads)
            # Inference and SQLite are blocking: never on the event loop.
            result = await anyio.to_thread.run_sync(
                self._dispatch, prefix, operation, body, context, key_id,
                limiter=self._limiter)
            response, code = _json(200, result, request_id), "OK"
        except StreamprocError as exc:
            response, code = error_response(exc, request_id), exc.code
        except ClientDisconnect:
            return Response(status_code=400)
        finally:
            self._in_flight -= 1
        self._observe(operation if operation in self._handlers else "unknown", code, started)
        logger.info("%s %s %d %.1fms", request_id, operation or "-", response.status_code,
                    (time.perf_counter() - started) * 1000)
        return response

    def _observe(self, operation: str, code: str, started: float) -> None:
        self._metrics.requests.labels(operation, code).inc()
        self._metrics.latency.labels(operation).observe(time.perf_counter() - started)

    def _dispatch(self, prefix: str, operation: str, body: bytes,
                  context: RequestContext, key_id: str | None) -> dict[str, Any]:
        handler = self._handlers.get(operation)
        if prefix != TARGET_PREFIX or handler is None:
            raise UnknownOperationException(
                f"Unknown operation: X-Amz-Target {prefix}.{operation} is not supported")
        params = self._parse(body)
        try:
            params = self._spec.validate(operation, params)
            if self._access is not None and key_id is not None:
                # After validation: the resources come from well-formed parameters.
                self._access.authorize(key_id, operation, params)
            return handler(params, context)
        except StreamprocError:
            raise
        except Exception:
            logger.exception("unhandled error in %s", operation)
            raise InternalServerError() from None

    @staticmethod
    def _parse(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            params = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise SerializationException() from None
        if not isinstance(params, dict):
            raise SerializationException("Request body must be a JSON object")
        return params
