"""Operations run for a console session from a worker thread, as ``/console/api`` runs them.

:class:`SessionCalls` is the :class:`~streamproc.console.enrolment.FaceCalls` of the video
upload: each call is handed back to the event loop and to :meth:`ControlApi.call` with the
session's key (the body boto3 would send, Image bytes as base64), so the handler table,
validation, ``AccessControl.authorize``, errors and metrics are those of ``POST /``. A
refused call raises :class:`CallRefused` with the API's ``"Code: Message"``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

import anyio.from_thread
from starlette.requests import Request
from starlette.responses import Response

from streamproc.api.transport import ControlApi
from streamproc.console.enrolment import CallRefused

MAX_LIST_PAGES = 50  # ListFaces pages read to tell new faces from present ones


class CallsStopped(Exception):
    """The daemon is stopping: no more calls are made for the upload."""


class CallsAbandoned(CallsStopped):
    """The client went away or its session ended: the upload's work stops."""


class SessionCalls:
    """:class:`FaceCalls` from a worker thread: each call run on the event loop by the API."""

    def __init__(self, api: ControlApi, request: Request, key_id: str | None,
                 collection: str, stop: threading.Event,
                 alive: Callable[[], bool] = lambda: True) -> None:
        self._api, self._request, self._key = api, request, key_id
        self.collection = collection
        self._stop = stop
        self._alive = alive  # False once the session is signed out or expired

    def detect_faces(self, jpeg: bytes) -> list[dict[str, Any]]:
        """DetectFaces' FaceDetails for ``jpeg``."""
        faces: list[dict[str, Any]] = self.call("DetectFaces", {"Image": {"Bytes": jpeg}})[
            "FaceDetails"]
        return faces

    def index_faces(self, jpeg: bytes, person: str) -> dict[str, Any]:
        """IndexFaces of ``jpeg`` into the collection as ``person`` (MaxFaces 1)."""
        return self.call("IndexFaces", {"CollectionId": self.collection, "MaxFaces": 1,
                                        "ExternalImageId": person, "Image": {"Bytes": jpeg}})

    def known_faces(self) -> set[str]:
        """The collection's FaceIds, so a face indexed before is reported as present.

        A key that may not ListFaces knows none: its faces are all reported as indexed. A
        collection that does not exist raises :class:`CallRefused` (nothing is decoded).
        """
        known: set[str] = set()
        token: str | None = None
        for _ in range(MAX_LIST_PAGES):
            params: dict[str, Any] = {"CollectionId": self.collection, "MaxResults": 4096}
            if token:
                params["NextToken"] = token
            try:
                page = self.call("ListFaces", params)
            except CallRefused as exc:
                if str(exc).startswith("ResourceNotFoundException"):
                    raise  # no such collection: IndexFaces would say so after the decode
                return known
            known.update(face["FaceId"] for face in page.get("Faces", []))
            token = page.get("NextToken")
            if not token:
                break
        return known

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One operation as ``POST /console/api/<operation>`` would run it; raises CallRefused."""
        if self._stop.is_set():
            raise CallsStopped
        if not self._alive() or anyio.from_thread.run(self._request.is_disconnected):
            raise CallsAbandoned  # nobody is waiting for the report any more
        if "Image" in params:  # the wire's blob: base64, as boto3 sends it
            params = {**params, "Image": {"Bytes": _b64(params["Image"]["Bytes"])}}
        body = json.dumps(params).encode()
        response: Response = anyio.from_thread.run(self._send, operation, body)
        try:
            out: dict[str, Any] = json.loads(bytes(response.body))
        except ValueError:  # the transport's bare 400 (ClientDisconnect) has no body
            raise CallRefused(f"{operation} answered HTTP {response.status_code}") from None
        if response.status_code != 200:
            raise CallRefused(f"{out.get('__type')}: {out.get('Message')}")
        return out

    async def _send(self, operation: str, body: bytes) -> Response:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {**self._request.scope, "path": f"/console/api/{operation}",
                 "headers": [(b"content-type", b"application/x-amz-json-1.1"),
                             (b"content-length", str(len(body)).encode())]}
        return await self._api.call(Request(scope, receive), operation, self._key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
