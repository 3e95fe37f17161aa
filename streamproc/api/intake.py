"""Reading a request at the edge: its headers once, its body within a budget and a deadline.

The headers are read once from the list the server received, so the dispatcher and the
signature verifier act on the same value of each. Bodies have their own budget: a client
that sends part of a body and goes quiet holds a body slot until ``body_timeout_s``, never
one of the ``max_concurrent_requests`` slots that operations run in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import anyio
from starlette.requests import Request

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
    """How large a body may be, how many may arrive at once, and how long one may take."""

    max_bytes: int
    max_reads: int
    timeout_s: float


class BodyReader:
    """Reads request bodies; refuses them past the budget and cuts them at the deadline."""

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits
        self._reading = 0  # the event loop is single-threaded: no lock needed

    @property
    def reading(self) -> int:
        """Bodies being read now."""
        return self._reading

    async def read(self, request: Request) -> bytes:
        """The whole body, or ImageTooLarge-, LimitExceeded- or RequestTimeoutException."""
        limits = self._limits
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise ImageTooLargeException(
                f"Request body of {declared} bytes exceeds the limit of {limits.max_bytes} bytes")
        if self._reading >= limits.max_reads:
            raise LimitExceededException(
                f"Too many request bodies arriving at once (limit {limits.max_reads})")
        self._reading += 1
        try:
            with anyio.fail_after(limits.timeout_s):
                return await self._collect(request)
        except TimeoutError:
            raise RequestTimeoutException(
                f"The request body did not arrive within {limits.timeout_s:g} s") from None
        finally:
            self._reading -= 1

    async def _collect(self, request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._limits.max_bytes:
                raise ImageTooLargeException(
                    f"Request body exceeds the limit of {self._limits.max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
