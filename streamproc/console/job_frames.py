"""The Jobs page's frames: ``GET /console/jobs/{api}/{job_id}/frame?ms=N`` as a small JPEG.

The timeline on the Jobs page shows, for a result at a timestamp, the video's frame there:
the first frame at or after ``ms`` (results carry the time of the frame they were found
in, rounded to the millisecond as the job runner rounds it), its longest side at most
:data:`MAX_SIDE` px. ``ms`` past the end gives the video's last frame (a result is never
past the end, so this only answers a hand-made URL, with something rather than nothing).

The video is found as the job runner finds it: the job's ``Video.S3Object`` through the
:class:`~streamproc.storage.objects.ObjectStore` (a local object root is read in place; an
S3 object is copied whole into scratch for the one frame and removed, as the runner does:
the store offers no ranged read, so an object over ``console.frame_max_copy_bytes`` is
refused before any copy) and opened and timed by the runner's own
:meth:`StoredVideo.frame_at <streamproc.dataplane.stored.video.StoredVideo.frame_at>`
(the same guard, the same clock). Decoding is CPU work off the event loop, at most
``console.frame_decoders`` at once on the node, each place held by the worker thread until
its decode is over (a request cancelled meanwhile does not free it); beyond that a request
is refused (LimitExceededException) rather than queued, so a page clicking along a timeline
cannot pile work up. :meth:`JobFrameRoute.close` stops copies and decodes under way. Frames
made are kept in a small LRU (:data:`CACHE_FRAMES`), so going back to a mark decodes nothing.

Answers: 200 image/jpeg; 403 AccessDeniedException without a session, or for a key that may
not call the Get operation for that JobId (judged as the API judges the Get request); 404
for another path's operation, an unknown JobId (or one of another kind) and a video no
longer in the object store; 400 InvalidParameterException for a
missing or bad ``ms``; 400 VideoTooLargeException for an S3 video over
``console.frame_max_copy_bytes``; 405 for HEAD (Starlette would answer it by decoding a
frame to send no body); 422 for a video that cannot be decoded (its message says why, no
local path); 429 LimitExceededException (Retry-After: 1) beyond ``console.frame_decoders``;
503 once closed. Each is counted in ``streamproc_console_job_frames_total{result}``
(refusals also in the console's ``streamproc_console_refused_total{reason="frames_..."}``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from prometheus_client import CollectorRegistry, Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from streamproc.config import Config
from streamproc.console.extension import ConsoleAccess, Extension, ExtraRoute
from streamproc.console.job_kinds import VIDEO_JOB_GETS
from streamproc.console.scratch import process_scratch
from streamproc.dataplane.stored.video import StoredVideo, VideoRejected
from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    InvalidS3ObjectException,
    LimitExceededException,
    ResourceNotFoundException,
    StreamprocError,
    VideoTooLargeException,
)
from streamproc.jobs.service import JobService
from streamproc.storage.objects import ObjectStore

logger = logging.getLogger(__name__)

# The stored-video Get operations a frame may be asked through, and their job kinds.
FRAME_APIS = VIDEO_JOB_GETS
MAX_SIDE = 640  # px: the longest side of a frame sent (the page shows it at about that size)
MAX_MS = 24 * 3600 * 1000  # no stored video is longer than a day (jobs.max_duration_s is less)
CACHE_FRAMES = 32  # JPEGs of ~30-60 KB: about 2 MB at most
JPEG_QUALITY = 85
_SCRATCH = "console-frames"  # under storage.data_dir/scratch: S3 copies, removed after use
RESULTS = ("ok", "cached", "no_session", "denied", "bad_request", "not_found", "busy",
           "undecodable", "too_large", "method", "stopped")


class FrameUnavailable(Exception):
    """The video cannot give a frame (unreadable, no video stream, refused by the guard)."""


class _TooLarge(Exception):
    """An S3 object larger than ``console.frame_max_copy_bytes``: not copied for a frame."""


class _Stopped(Exception):
    """:meth:`JobFrameRoute.close` was called: the copy or decode ended early."""


class _Slot:
    """One decode's place among ``console.frame_decoders``, given back exactly once.

    The worker thread gives it back when its decode is really over; the request gives it
    back only if the worker never started (cancelled while queued for a thread), so a
    request cancelled mid-decode never frees a place a decode still holds.
    """

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots = slots
        self._lock = threading.Lock()
        self._state = "queued"  # -> "running" -> "done", or "queued" -> "abandoned"

    def start(self) -> bool:
        """In the worker: False if the request already gave up (then nothing is decoded)."""
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "running"
            return True

    def finish(self) -> None:
        """In the worker, after the decode (whatever its outcome)."""
        with self._lock:
            self._state = "done"
        self._slots.release()

    def abandon(self) -> None:
        """In the request, after the await (whatever its outcome): frees a never-run slot."""
        with self._lock:
            if self._state != "queued":
                return
            self._state = "abandoned"
        self._slots.release()


def jpeg_of(image: np.ndarray, max_side: int = MAX_SIDE) -> bytes:
    """``image`` as a JPEG, scaled down (never up) so its longest side is ``max_side``."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise FrameUnavailable("the frame could not be encoded as JPEG")
    return bytes(encoded.tobytes())


class _FrameCache:
    """The last :data:`CACHE_FRAMES` frames sent, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int]) -> bytes | None:
        with self._lock:
            jpeg = self._items.get(key)
            if jpeg is not None:
                self._items.move_to_end(key)
            return jpeg

    def put(self, key: tuple[str, str, int], jpeg: bytes) -> None:
        with self._lock:
            self._items[key] = jpeg
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)  # policy: drop the least recently used


class JobFrameRoute:
    """The frame route's extension: session, policy, job, object, decode (bounded).

    ``copies``: the object store is S3, so a frame needs a copy of the whole object (at
    most ``max_copy_bytes``; larger objects are refused before copying). :meth:`close`
    stops copies and decodes under way (checked between 1 MiB chunks and between frames)
    and refuses new ones: the daemon calls it when it stops, before the object store goes.
    """

    def __init__(self, jobs: JobService, objects: ObjectStore, decoders: int,
                 scratch: Path, max_copy_bytes: int, registry: CollectorRegistry, *,
                 copies: bool = False, max_duration_s: float = MAX_MS / 1000) -> None:
        self._jobs = jobs
        self._objects = objects
        self._scratch = scratch
        self._max_copy = max_copy_bytes
        self._copies = copies
        self._max_s = max_duration_s
        self._stop = threading.Event()
        # Non-blocking acquire: a request beyond the limit is refused, never queued.
        self._slots = threading.BoundedSemaphore(decoders)
        self._decoders = decoders
        self._cache = _FrameCache(CACHE_FRAMES)
        self._served = Counter("streamproc_console_job_frames", "Job frame requests to the "
                               "console, by result", ["result"], registry=registry)
        for result in RESULTS:
            self._served.labels(result)

    def close(self) -> None:
        """Stop copies and decodes under way, refuse new ones (idempotent, never blocks)."""
        self._stop.set()

    def routes(self, access: ConsoleAccess) -> list[ExtraRoute]:
        """The frame route, judged with ``access``."""

        async def frame(request: Request) -> Response:
            return await self._frame(access, request)

        return [ExtraRoute("/console/jobs/{api:str}/{job_id:str}/frame", frame, ("GET",))]

    def _refused(self, access: ConsoleAccess, request: Request, result: str,
                 error: StreamprocError, status: int) -> Response:
        self._served.labels(result).inc()
        return access.refusals.refuse(f"frames_{result}", request.scope, error, status=status)

    async def _frame(self, access: ConsoleAccess, request: Request) -> Response:
        if request.method != "GET":
            # Starlette answers HEAD on GET routes: it would decode a frame to send nothing.
            refused = self._refused(access, request, "method", InvalidParameterException(
                "Frames are sent for GET only"), 405)
            refused.headers["Allow"] = "GET"
            return refused
        session = access.session_of(request)
        if session is None:
            self._served.labels("no_session").inc()
            return access.refusals.denied("no_session", request.scope,
                                          "No console session: sign in at /console/")
        api, job_id = request.path_params["api"], request.path_params["job_id"]
        kind = FRAME_APIS.get(api)
        if kind is None:
            return self._refused(access, request, "not_found", ResourceNotFoundException(
                f"Frames are served for {', '.join(FRAME_APIS)} jobs only"), 404)
        # The request the API judges for this job's Get (its JobId, so the same resources):
        # a frame shows what the Get's results describe, to the same keys.
        if not access.allows(session, api, {"JobId": job_id}):
            who = session.key_id or "-"
            return self._refused(access, request, "denied", AccessDeniedException(
                f"User: {who} is not authorized to perform: rekognition:{api}"), 403)
        ms = _milliseconds(request.query_params.get("ms"))
        if isinstance(ms, str):
            return self._refused(access, request, "bad_request",
                                 InvalidParameterException(ms), 400)
        try:
            # Before the cache: a job purged since (jobs.retention_s) has no frames either.
            job = self._jobs.job(job_id, kind)
        except ResourceNotFoundException as exc:
            return self._refused(access, request, "not_found", exc, 404)
        key = (api, job_id, ms)
        cached = self._cache.get(key)
        if cached is not None:
            self._served.labels("cached").inc()
            return Response(cached, media_type="image/jpeg")
        if self._stop.is_set():
            return self._stopped(access, request)
        if not self._slots.acquire(blocking=False):
            busy = self._refused(access, request, "busy", LimitExceededException(
                f"{self._decoders} frames are being decoded on this node already "
                "(console.frame_decoders): try again in a moment"), 429)
            busy.headers["Retry-After"] = "1"
            return busy
        slot = _Slot(self._slots)
        try:
            jpeg = await run_in_threadpool(self._work, slot, job.request.source, ms)
        except InvalidS3ObjectException as exc:  # removed since the job ran, S3 down
            return self._refused(access, request, "not_found", exc, 404)
        except _TooLarge as exc:
            return self._refused(access, request, "too_large",
                                 VideoTooLargeException(str(exc)), 400)
        except FrameUnavailable as exc:
            return self._refused(access, request, "undecodable",
                                 InvalidParameterException(f"No frame: {exc}"), 422)
        except _Stopped:
            return self._stopped(access, request)
        finally:
            slot.abandon()  # only if the worker never ran: a running decode frees its own
        self._cache.put(key, jpeg)
        self._served.labels("ok").inc()
        return Response(jpeg, media_type="image/jpeg")

    def _stopped(self, access: ConsoleAccess, request: Request) -> Response:
        return self._refused(access, request, "stopped", LimitExceededException(
            "This node is stopping: no frames are decoded"), 503)

    def _work(self, slot: _Slot, source: Any, ms: int) -> bytes:
        """In a worker thread: the decode, holding ``slot`` until it is really over."""
        if not slot.start():
            raise _Stopped  # the request was cancelled before this thread started
        try:
            return self._decode(source, ms)
        finally:
            slot.finish()

    def _decode(self, source: Any, ms: int) -> bytes:
        if self._copies:
            # The store has no ranged read: refuse before copying rather than copy 10 GiB.
            size = self._objects.size(source)
            if size > self._max_copy:
                raise _TooLarge(
                    f"s3://{source.shown} holds {size} bytes; the Jobs page copies at most "
                    f"{self._max_copy} bytes for a frame (console.frame_max_copy_bytes)")
        # max_copy_bytes again: an object that grows during the copy is cut off there.
        with self._objects.local_file(source, self._scratch, self._max_copy,
                                      self._stop) as path:
            if path is None:
                raise _Stopped
            try:
                # As the job runner opens and times it (one clock: StoredVideo's).
                with StoredVideo(path, source.shown, 1.0, self._max_s) as video:
                    image = video.frame_at(ms, self._stop)
            except VideoRejected as exc:
                raise FrameUnavailable(str(exc)) from None
            if image is None:
                raise _Stopped
            return jpeg_of(image)


def _milliseconds(given: str | None) -> int | str:
    """``ms`` as an int in [0, MAX_MS], or the message saying what is wrong with it."""
    if given is None or given == "":
        return "ms (the time in the video, in milliseconds) is required"
    if not (given.isascii() and given.isdigit()) or len(given) > 9:
        return f"ms must be a whole number of milliseconds from 0 to {MAX_MS}"
    value = int(given)
    if value > MAX_MS:
        return f"ms must be a whole number of milliseconds from 0 to {MAX_MS}"
    return value


def job_frames(config: Config, jobs: JobService, objects: ObjectStore,
               registry: CollectorRegistry) -> Extension | None:
    """The job frames' extension; None where the console is off."""
    if not config.console.enabled:
        return None
    # This process's own folder: another daemon sharing the data dir keeps its copies.
    scratch = process_scratch(Path(config.storage.data_dir), _SCRATCH)
    return JobFrameRoute(jobs, objects, config.console.frame_decoders, scratch,
                         config.console.frame_max_copy_bytes, registry,
                         copies=config.objects.s3_endpoint is not None,
                         max_duration_s=config.jobs.max_duration_s)
