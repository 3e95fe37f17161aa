"""The processor page's live match feed and current frame, from the data plane's tap.

``GET /console/feed/{name}`` is a Server-Sent Events stream of the face-search records the
processor publishes while the page watches, each with its faces' crops:

- first ``event: hello`` / ``data: {"processor": name, "here": bool}`` (``here``: the
  processor runs on this node now; false for one that does not, known or not, so nothing
  else about names is revealed);
- ``event: match`` / ``data: {"at": epoch ms, "record": <the record as published>,
  "crops": ["data:image/jpeg;base64,..." or null per FaceSearchResponse entry],
  "dropped": <events this watcher lost just before this one>}``;
- a ``: keepalive`` comment after :data:`KEEPALIVE_S` without an event;
- ``event: end`` / ``data: {"reason": "session"}`` once the session ended (signed out,
  expired, its key removed, or its key may no longer describe the processor or ListFaces on
  its collection, say after a policy reload: re-checked at least every :data:`RECHECK_S`),
  ``{"reason": "shutdown"}`` when the node stops; then the stream closes.

``GET /console/frame/{name}`` is the processor's next analysed frame as ``image/jpeg``
(longest side at most 960 px), waited for at most :data:`FRAME_WAIT_S`; 404 when it does
not run here or no frame came in time.

Both need a console session whose key may ``DescribeStreamProcessor`` the name and
``ListFaces`` on its collection (403 otherwise): the records name the collection's faces
(FaceId, ExternalImageId, UserId) and the crops and frame show the camera, more than
Describe alone returns. A processor the daemon does not know gets ResourceNotFoundException
once the key may describe it (so existence is told only to keys that may describe it).
Each feed has a bounded buffer (``console.feed_buffer``, drop_oldest, drops in
``streamproc_console_feed_dropped_total``), at most ``console.max_feeds`` are open on the
node (``streamproc_console_feeds``) and ``console.max_feeds_per_key`` of one key's (one
more gets LimitExceededException; with auth off every session is one key's, so that cap is
the node's), and the analyzer does no work for a processor no one watches.

Cluster mode: a feed shows what runs on *this* node (``here``). Records of a processor run
by another node are not forwarded; the page of the node that runs it shows them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from streamproc.config import Config
from streamproc.console.extension import ConsoleAccess, Extension, ExtraRoute
from streamproc.console.rights import match_refusal
from streamproc.console.sessions import Session
from streamproc.dataplane.output.tap import (
    NO_KEY,
    Delivery,
    FeedsFull,
    FeedTap,
    FramesBusy,
    Subscription,
)
from streamproc.dataplane.plane import DataPlane
from streamproc.errors import (
    InvalidParameterException,
    LimitExceededException,
    ResourceNotFoundException,
)

KEEPALIVE_S = 15.0  # a comment this often keeps proxies and the browser from timing out
RECHECK_S = 5.0  # the session and the key's permission are checked again this often
FRAME_WAIT_S = 3.0  # a frame request waits this long for the processor's next frame
# Stream processor names as CreateStreamProcessor takes them; anything else is refused
# before it reaches the policy check or a log line.
PROCESSOR_NAME = re.compile(r"[a-zA-Z0-9_.\-]{1,128}")
_NO_SESSION = "No console session: sign in at /console/"


class _EventStream(StreamingResponse):
    """A streaming response that always closes its generator and ends its subscription.

    Its ``finally`` runs whether the stream ended, the client went or the task was
    cancelled (a daemon stopping past its graceful shutdown), and also when the generator
    never started (a client gone before the first event), whose own ``finally`` would not run.
    """

    def __init__(self, events: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"X-Accel-Buffering": "no"})
        self._events = events
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()  # idempotent: the generator's finally may have run it already
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()


def _sse(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def _match(delivery: Delivery) -> bytes:
    """A match event's data: the record's bytes as published, not parsed again."""
    crops = [None if c is None else "data:image/jpeg;base64," + base64.b64encode(c).decode()
             for c in delivery.event.crops]
    return _sse("match", b'{"at":%d,"record":%s,"crops":%s,"dropped":%d}' % (
        delivery.event.at_ms, delivery.event.record,
        json.dumps(crops, separators=(",", ":")).encode(), delivery.dropped))


def _waker(event: asyncio.Event) -> Callable[[], None]:
    """A callback for the analyzer's thread that sets ``event`` on this event loop."""
    loop = asyncio.get_running_loop()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop has closed: no one is left to wake
            pass

    return wake


class LiveFeed:
    """The feed and frame routes over one data plane's tap."""

    def __init__(self, tap: FeedTap, runs_here: Callable[[str], bool],
                 collection_of: Callable[[str], str | None],
                 registry: CollectorRegistry) -> None:
        self._tap = tap
        self._runs_here = runs_here
        self._collection_of = collection_of  # a processor's CollectionId; None: no such one
        self._dropped = Counter("streamproc_console_feed_dropped",
                                "Live feed events dropped: a watcher's buffer was full "
                                "(console.feed_buffer, drop_oldest)", registry=registry)
        feeds = Gauge("streamproc_console_feeds", "Live feeds open on this node",
                      registry=registry)
        feeds.set_function(lambda: tap.open_feeds)

    def routes(self, access: ConsoleAccess) -> list[ExtraRoute]:
        """``/console/feed/{name}`` and ``/console/frame/{name}``, judged by ``access``."""
        async def feed(request: Request) -> Response:
            return await self._feed(access, request)

        async def frame(request: Request) -> Response:
            return await self._frame(access, request)

        return [ExtraRoute("/console/feed/{name:str}", feed),
                ExtraRoute("/console/frame/{name:str}", frame)]

    def close(self) -> None:
        """Nothing of its own to stop: the tap is the data plane's.

        The daemon's first stop step (the plane's ``close_tap``) ends the open feeds.
        """

    def _check(self, access: ConsoleAccess, request: Request
               ) -> tuple[Session, str] | Response:
        """The session and processor name of a request, or the refusal to send."""
        session = access.session_of(request)
        if session is None:
            return access.refusals.denied("no_session", request.scope, _NO_SESSION)
        name = request.path_params["name"]
        if not PROCESSOR_NAME.fullmatch(name):
            return access.refusals.refuse("bad_request", request.scope, InvalidParameterException(
                "A stream processor name is 1-128 of a-z A-Z 0-9 _ . -"))
        if request.method == "HEAD":  # Starlette adds HEAD: it would subscribe or wait
            return Response(status_code=405, headers={"Allow": "GET"})
        refused = match_refusal(access, session, name, self._collection_of)
        if refused is not None:
            reason, error = refused
            if isinstance(error, ResourceNotFoundException):
                return access.refusals.refuse(reason, request.scope, error)
            return access.refusals.denied(reason, request.scope, error.message,
                                          detail=f"processor {name!r}")
        return session, name

    async def _feed(self, access: ConsoleAccess, request: Request) -> Response:
        checked = self._check(access, request)
        if isinstance(checked, Response):
            return checked
        session, name = checked
        ready = asyncio.Event()
        try:
            subscription = self._tap.subscribe(name, _waker(ready), self._dropped.inc,
                                               owner=session.key_id or NO_KEY)
        except FeedsFull as exc:
            return access.refusals.refuse("feeds_full", request.scope,
                                          LimitExceededException(str(exc)))
        return _EventStream(self._events(access, request, name, subscription, ready),
                            lambda: self._tap.unsubscribe(subscription))

    def _still_allowed(self, access: ConsoleAccess, request: Request, name: str) -> bool:
        """The session stands and may still watch (the processor not deleted either)."""
        session = access.session_of(request)
        return session is not None and match_refusal(
            access, session, name, self._collection_of) is None

    async def _events(self, access: ConsoleAccess, request: Request, name: str,
                      subscription: Subscription, ready: asyncio.Event
                      ) -> AsyncIterator[bytes]:
        try:
            hello = {"processor": name, "here": self._runs_here(name)}
            yield _sse("hello", json.dumps(hello).encode())
            last_write = last_check = time.monotonic()
            while True:
                now = time.monotonic()
                wait = min(last_check + RECHECK_S, last_write + KEEPALIVE_S) - now
                if wait > 0:
                    try:
                        await asyncio.wait_for(ready.wait(), wait)
                    except TimeoutError:
                        pass
                ready.clear()  # before take(): an offer after it sets it again
                if subscription.ended is not None:
                    yield _sse("end", json.dumps({"reason": subscription.ended}).encode())
                    return
                now = time.monotonic()
                if now - last_check >= RECHECK_S:
                    if not self._still_allowed(access, request, name):
                        yield _sse("end", b'{"reason":"session"}')
                        return
                    last_check = now
                deliveries = subscription.take()
                for delivery in deliveries:
                    yield _match(delivery)
                if deliveries:
                    last_write = now
                elif now - last_write >= KEEPALIVE_S:
                    yield b": keepalive\n\n"
                    last_write = now
        finally:
            self._tap.unsubscribe(subscription)

    async def _frame(self, access: ConsoleAccess, request: Request) -> Response:
        checked = self._check(access, request)
        if isinstance(checked, Response):
            return checked
        _, name = checked
        if not self._runs_here(name):
            return Response(status_code=404)
        ready = asyncio.Event()
        try:
            wanted = self._tap.want_frame(name, _waker(ready))
        except FramesBusy as exc:
            return access.refusals.refuse("frames_busy", request.scope,
                                          LimitExceededException(str(exc)))
        try:
            await asyncio.wait_for(ready.wait(), FRAME_WAIT_S)
        except TimeoutError:
            pass
        finally:
            self._tap.forget_frame(wanted)
        if wanted.jpeg is None:
            return Response(status_code=404)
        return Response(wanted.jpeg, media_type="image/jpeg")


def live_feed(config: Config, plane: DataPlane, collection_of: Callable[[str], str | None],
              registry: CollectorRegistry) -> Extension | None:
    """The live feed's extension over ``plane``'s tap; None with the console off.

    ``collection_of``: a stream processor's CollectionId (None: no such processor).
    """
    if not config.console.enabled:
        return None
    return LiveFeed(plane.tap, plane.runs_here, collection_of, registry)
