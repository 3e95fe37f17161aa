"""Enrol by a short video from the Collections page: ``POST /console/enrol/{collection}``.

The body is the video itself (``?id=`` its ExternalImageId, ``?file=`` its name for the
report). It is read as ``POST /`` reads a body (the API's budgets, deadline and minimum
rate) within ``console.enrol_video_max_bytes``, written to a private scratch folder and
sampled, off the event loop, by :mod:`.enrolment`, whose rule ``streamproc enrol`` follows
too: DetectFaces on each sampled frame, the best frames to IndexFaces. Every call goes
through :meth:`ControlApi.call` with the session's key (:mod:`.session_calls`), so the
policy, validation and errors are exactly boto3's; a refused call ends the file with its
code and message.

Answers: 200 with the file's report (FaceIds indexed and already present, faces not
indexed by reason, and ``Problem``: why nothing was indexed, e.g. not a video, no face);
403 AccessDeniedException without a session or the CSRF header, or for a key that may not
IndexFaces into the collection (judged before any decode); 400 VideoTooLargeException over
the size limit; 429 LimitExceededException beyond :data:`DECODES` uploads decoding at once
on the node (refused, never queued); 503 once the daemon is stopping.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from streamproc.api.transport import ControlApi
from streamproc.config import Config
from streamproc.console.enrolment import (
    CallRefused,
    Outcome,
    best_frames,
    enrol_file,
    video_frames,
)
from streamproc.console.extension import ConsoleAccess, Extension, ExtraRoute
from streamproc.console.routes import CSRF_HEADER
from streamproc.console.scratch import process_scratch
from streamproc.console.session_calls import CallsAbandoned, CallsStopped, SessionCalls
from streamproc.console.sessions import Session, csrf_matches
from streamproc.errors import (
    ImageTooLargeException,
    InvalidParameterException,
    LimitExceededException,
    StreamprocError,
    VideoTooLargeException,
)

DECODES = 2  # uploads sampled at once on the node: each is a decode plus ~24 DetectFaces
FRAMES = 3  # frames indexed per video, as streamproc enrol's default --frames
CANDIDATES = 24  # frames sampled, as streamproc enrol samples
_SCRATCH = "console-enrol"  # under storage.data_dir/scratch: one folder per upload
_EXTERNAL_ID = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")  # IndexFaces' ExternalImageId


class _Busy(Exception):
    """:data:`DECODES` uploads are being enrolled on the node already."""


def _report(name: str, person: str, outcome: Outcome) -> dict[str, Any]:
    return {"File": name, "ExternalImageId": person, "Indexed": outcome.indexed,
            "Present": outcome.present, "Unindexed": dict(outcome.unindexed),
            "Problem": outcome.problem}


class VideoEnrolment:
    """The upload route's extension: session, CSRF, policy, size, decode (bounded)."""

    def __init__(self, api: ControlApi, scratch: Path, max_bytes: int) -> None:
        self._api = api
        self._scratch = scratch
        self._max = max_bytes
        self._stop = threading.Event()
        # Non-blocking acquire: an upload beyond the limit is refused, never queued.
        self._slots = threading.BoundedSemaphore(DECODES)

    def close(self) -> None:
        """Stop uploads being sampled (between frames and calls), refuse new ones."""
        self._stop.set()

    def routes(self, access: ConsoleAccess) -> list[ExtraRoute]:
        """The upload route, judged with ``access``."""

        async def enrol(request: Request) -> Response:
            return await self._enrol(access, request)

        return [ExtraRoute("/console/enrol/{collection:str}", enrol, ("POST",))]

    async def _enrol(self, access: ConsoleAccess, request: Request) -> Response:
        session = access.session_of(request)
        if session is None:
            return access.refusals.denied("no_session", request.scope,
                                          "No console session: sign in at /console/")
        if not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            return access.refusals.denied(
                "csrf", request.scope,
                "Missing or wrong X-CSRF-Token header for this console session")
        collection = request.path_params["collection"]
        person = request.query_params.get("id", "")
        name = request.query_params.get("file", "video")[:255]
        refusal = self._refusal(access, request, session, collection, person)
        if refusal is not None:
            return refusal
        return await self._upload(access, request, session, collection, person, name)

    def _refusal(self, access: ConsoleAccess, request: Request, session: Session,
                 collection: str, person: str) -> Response | None:
        if self._stop.is_set():
            return access.refusals.refuse("enrol_stopped", request.scope, LimitExceededException(
                "This node is stopping: no video is enrolled"), status=503)
        # Before reading and decoding: the API would refuse every IndexFaces anyway.
        if not access.allows(session, "IndexFaces", {"CollectionId": collection}):
            return access.refusals.denied(
                "enrol_denied", request.scope, f"User: {session.key_id or '-'} is not "
                "authorized to perform: rekognition:IndexFaces")
        if not _EXTERNAL_ID.fullmatch(person):  # IndexFaces' own rule, before the body
            return access.refusals.refuse("enrol_id", request.scope, InvalidParameterException(
                f"1 validation error detected: Value {person[:64]!r} at 'ExternalImageId' "
                "failed to satisfy constraint: Member must satisfy regular expression "
                r"pattern: [a-zA-Z0-9_.\-:]+"))
        return None

    async def _upload(self, access: ConsoleAccess, request: Request, session: Session,
                      collection: str, person: str, name: str) -> Response:
        try:
            data = await self._api.read_body(request, self._max)
        except ClientDisconnect:
            return Response(status_code=400)
        except ImageTooLargeException:
            return access.refusals.refuse("enrol_too_large", request.scope,
                                          VideoTooLargeException(
                f"{name} is larger than the {self._max} bytes a video upload may be "
                "(console.enrol_video_max_bytes, at most server.max_request_bytes)"))
        except StreamprocError as exc:  # too slow, too many bodies at once
            return access.refusals.refuse("enrol_body", request.scope, exc)
        calls = SessionCalls(self._api, request, session.key_id, collection, self._stop,
                             lambda: access.session_of(request) is not None)
        try:
            outcome = await run_in_threadpool(self._work, calls, data, person)
        except _Busy:
            busy = access.refusals.refuse("enrol_busy", request.scope, LimitExceededException(
                f"{DECODES} videos are being enrolled on this node already: try again in a "
                "moment"), status=429)
            busy.headers["Retry-After"] = "1"
            return busy
        except CallsAbandoned:
            return Response(status_code=400)  # the client left or signed out: no report
        except CallsStopped:
            return access.refusals.refuse("enrol_stopped", request.scope, LimitExceededException(
                "This node is stopping: the video was not enrolled"), status=503)
        return JSONResponse(_report(name, person, outcome))

    def _work(self, calls: SessionCalls, data: bytes, person: str) -> Outcome:
        """In a worker thread: the upload on disk (a private folder), sampled, indexed.

        The place among :data:`DECODES` is taken and given back here, in the thread that
        decodes: a request cancelled meanwhile frees nothing a decode still uses.
        """
        if not self._slots.acquire(blocking=False):
            raise _Busy
        try:
            try:
                self._scratch.mkdir(parents=True, exist_ok=True)
                folder = Path(tempfile.mkdtemp(dir=self._scratch))
            except OSError as exc:  # a full or read-only disk: the file's reason, not a 500
                return Outcome(problem=f"cannot store the upload: {exc.strerror}")
            try:
                path = folder / "upload"  # never the client's name: no suffix or path trick
                path.write_bytes(data)
                return self._enrol_file(calls, path, person)
            except OSError as exc:
                return Outcome(problem=f"cannot store the upload: {exc.strerror}")
            except CallRefused as exc:  # ListFaces: no such collection
                return Outcome(problem=str(exc))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        finally:
            self._slots.release()

    def _enrol_file(self, calls: SessionCalls, path: Path, person: str) -> Outcome:
        known = calls.known_faces()

        def images() -> list[bytes]:
            frames = video_frames(path, CANDIDATES, self._stop, confined=True)
            chosen = best_frames(calls, frames, FRAMES)
            if self._stop.is_set():
                raise CallsStopped
            return chosen

        return enrol_file(calls, images, person, known)


def video_enrolment(config: Config, api: ControlApi) -> Extension:
    """The video upload's extension (the console is on: its routes are being built)."""
    # This process's own folder: another daemon sharing the data dir keeps its uploads.
    scratch = process_scratch(Path(config.storage.data_dir), _SCRATCH)
    # The body is read by the API's reader, which never takes more than its own limit.
    limit = min(config.console.enrol_video_max_bytes, config.server.max_request_bytes)
    return VideoEnrolment(api, scratch, limit)
