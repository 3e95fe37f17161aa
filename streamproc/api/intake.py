"""Reading a request at the edge: its headers once, its body within a budget and a deadline.

The headers are read once from the list the server received, so the dispatcher and the
signature verifier act on the same value of each. Bodies have their own budget: a client
that sends part of a body and goes quiet holds a body place, never one of the
``max_concurrent_requests`` slots that operations run in. A body that came with its headers
is taken at once and holds no place; one still arriving takes a place in all, one of its
client's and one of the access key's its headers claim (not yet verified: anyone who knows
a key id can claim it, so the key's share bounds what a forged header can hold). It must
keep up ``min_rate`` after ``grace_s`` and be whole within ``timeout_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request

from streamproc.api.peers import Tally, client_of
from streamproc.config import ServerConfig
from streamproc.errors import (
    ImageTooLargeException,
    LimitExceededException,
    RequestTimeoutException,
)


@dataclass(frozen=True)
class RequestHeaders:
    """Each (lower-case) header's first value, and the names sent more than once."""

    values: dict[str, str]
    repeated: frozenset[str]


def read_headers(raw: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
    """The headers of an ASGI scope (latin-1, as HTTP/1.1 carries them)."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key in values:
            repeated.add(key)
        else:
            values[key] = value.decode("latin-1")
    return RequestHeaders(values, frozenset(repeated))


@dataclass(frozen=True)
class BodyLimits:
    """A body's size, places, deadline and minimum rate.

    How large a body may be, how many may arrive at once (in all, from one client, under one
    claimed key), how long one may take and how slowly it may come (``min_rate`` 0: no
    minimum).
    """

    max_bytes: int
    max_reads: int
    timeout_s: float
    max_reads_per_client: int
    max_reads_per_key: int
    min_rate: float
    grace_s: float

    @classmethod
    def of(cls, server: ServerConfig) -> BodyLimits:
        """The limits ``server`` configures (a key's share: an eighth, unless set)."""
        per_key = server.max_body_reads_per_key or max(1, server.max_body_reads // 8)
        return cls(server.max_request_bytes, server.max_body_reads, server.body_timeout_s,
                   server.max_body_reads_per_client, per_key, server.min_body_rate_bytes_s,
                   server.body_rate_grace_s)


class BodyReader:
    """Reads request bodies; refuses them past the budgets, cuts them when late or slow."""

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits
        self._reading = 0  # the event loop is single-threaded: no lock needed
        self._by_client = Tally()
        self._by_key = Tally()

    @property
    def reading(self) -> int:
        """Bodies holding a place now (arriving after their headers)."""
        return self._reading

    async def read(self, request: Request, key_id: str | None = None,
                   max_bytes: int | None = None) -> bytes:
        """The whole body, or ImageTooLarge-, LimitExceeded- or RequestTimeoutException.

        ``key_id`` is the access key the headers claim (auth on), not yet verified;
        ``max_bytes`` a smaller size limit for this body (the console's login).
        """
        limits = self._limits
        if max_bytes is not None and max_bytes < limits.max_bytes:
            limits = replace(limits, max_bytes=max_bytes)
        self._check_declared(request, limits)
        body = _Arrival(limits, anyio.current_time())
        with anyio.CancelScope(deadline=body.deadline()) as scope:
            more = body.add(await _receive(request))
            if more:
                client = client_of(request.client.host if request.client else None)
                with self._place(client, key_id):
                    while more:
                        scope.deadline = body.deadline()
                        more = body.add(await _receive(request))
        if scope.cancelled_caught:
            raise body.late()
        return body.data()

    def _check_declared(self, request: Request, limits: BodyLimits) -> None:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise ImageTooLargeException(f"Request body of {declared} bytes exceeds the limit "
                                         f"of {limits.max_bytes} bytes")

    @contextmanager
    def _place(self, client: str, key_id: str | None) -> Iterator[None]:
        """Hold one body place for ``client`` (and ``key_id``) while the body arrives."""
        self._check_room(client, key_id)
        self._reading += 1
        self._by_client.add(client)
        if key_id is not None:
            self._by_key.add(key_id)
        try:
            yield
        finally:
            self._reading -= 1
            self._by_client.remove(client)
            if key_id is not None:
                self._by_key.remove(key_id)

    def _check_room(self, client: str, key_id: str | None) -> None:
        limits = self._limits
        if self._reading >= limits.max_reads:
            whose, limit = "", limits.max_reads
        elif self._by_client[client] >= limits.max_reads_per_client:
            whose, limit = " from this client", limits.max_reads_per_client
        elif key_id is not None and self._by_key[key_id] >= limits.max_reads_per_key:
            whose, limit = " for this access key", limits.max_reads_per_key
        else:
            return
        raise LimitExceededException(
            f"Too many request bodies arriving at once{whose} (limit {limit})")


class _Arrival:
    """A body as it arrives: its chunks so far, and by when more of it is due."""

    def __init__(self, limits: BodyLimits, started: float) -> None:
        self._limits = limits
        self._started = started
        self._chunks: list[bytes] = []
        self._size = 0
        self._paced = False  # the last deadline was the minimum rate's, not the whole's

    def add(self, message: dict[str, Any]) -> bool:
        """Take one ``http.request`` message; whether more of the body is to come."""
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > self._limits.max_bytes:
            raise ImageTooLargeException(
                f"Request body exceeds the limit of {self._limits.max_bytes} bytes")
        self._chunks.append(chunk)
        return bool(message.get("more_body", False))

    def deadline(self) -> float:
        """When the body must be whole, or have grown, whichever comes first."""
        limits = self._limits
        whole = self._started + limits.timeout_s
        if limits.min_rate <= 0:
            return whole
        paced = self._started + limits.grace_s + self._size / limits.min_rate
        self._paced = paced < whole
        return min(whole, paced)

    def late(self) -> RequestTimeoutException:
        """The error for a body that missed its deadline."""
        if self._paced:
            return RequestTimeoutException(
                f"The request body arrived slower than {self._limits.min_rate:g} bytes/s")
        return RequestTimeoutException(
            f"The request body did not arrive within {self._limits.timeout_s:g} s")

    def data(self) -> bytes:
        """The body, once whole."""
        return b"".join(self._chunks)


async def _receive(request: Request) -> dict[str, Any]:
    message = await request.receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect
    return dict(message)
