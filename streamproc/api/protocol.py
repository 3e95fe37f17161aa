"""uvicorn's h11 protocol with deadlines on request headers and unread bodies.

uvicorn bounds the size of request headers (h11's 16 KiB) and idle keep-alive time, but not
how long headers may take to arrive: a client could hold a connection forever by sending a
request line and then a byte a minute. Here a request's line and headers must arrive within
``header_timeout_s`` of the connection opening, or of the request's first byte on a
kept-alive connection (idle time between requests is uvicorn's ``timeout_keep_alive``).

A response sent before the request's body was read (ImageTooLarge from Content-Length, a
full body budget) leaves the rest of the body to arrive and be discarded, so that a client
still sending reads the error instead of a reset; that rest must arrive within
``drain_timeout_s``. A request h11 cannot parse gets Rekognition's error body instead of
uvicorn's plain text (or, once a response was sent, the connection is simply closed).

Each connection is a file descriptor, and uvicorn caps none: past ``max_connections`` in
all, or ``max_connections_per_client`` from one client (:mod:`api.peers`), a new connection
is closed as it arrives. Every close here is counted by reason (``cuts``).

The hooks overridden are uvicorn's ``H11Protocol`` internals (0.55; pinned in pyproject,
checked by tests/test_api_edge.py), so an upgrade that moves them fails a test, not a client.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import h11
from prometheus_client import Counter
from uvicorn.protocols.http.h11_impl import H11Protocol

from streamproc.api.peers import ConnectionLimits, OpenConnections, client_of
from streamproc.api.transport import CONTENT_TYPE, error_body
from streamproc.errors import SerializationException


class GuardedH11Protocol(H11Protocol):
    """H11Protocol plus the deadlines; subclassed per server by :func:`guarded_h11`."""

    header_timeout_s = 20.0
    drain_timeout_s = 60.0
    cuts: Counter | None = None  # streamproc_http_connections_cut, by reason
    open_connections: OpenConnections | None = None  # this server's, shared by its connections
    _deadline: asyncio.TimerHandle | None = None
    _admitted: str | None = None  # the client this connection is counted for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection (or close it, past the limits); start the headers' clock."""
        super().connection_made(transport)
        if self._admit():
            self._arm(self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        """Feed h11, then start or stop the clock for what is still to arrive."""
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        """The body may still be arriving, or a pipelined request be partly buffered."""
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock; the connection no longer counts."""
        self._disarm()
        if self._admitted is not None and self.open_connections is not None:
            self.open_connections.release(self._admitted)
            self._admitted = None
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A request h11 refused (malformed, headers over 16 KiB), in AWS's error shape.

        Once a response is under way or sent (garbage in a body being drained), h11 can send
        no other: the connection is closed, still counted.
        """
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            self._cut("malformed")
            return
        request_id = str(uuid.uuid4())
        body = json.dumps(error_body(SerializationException(msg), request_id)).encode()
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"connection", b"close"),
                   (b"content-length", str(len(body)).encode()),
                   (b"x-amzn-requestid", request_id.encode()),
                   (b"x-amzn-errortype", SerializationException.code.encode())]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self._cut("malformed")

    def _admit(self) -> bool:
        if self.open_connections is None:
            return True
        client = client_of(self.client[0] if self.client else None)
        refused = self.open_connections.admit(client)
        if refused is not None:
            self._cut(refused)
            return False
        self._admitted = client
        return True

    def _headers_due(self) -> bool:
        return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])

    def _drain_due(self) -> bool:
        return (self.conn.their_state is h11.SEND_BODY
                and self.conn.our_state in (h11.DONE, h11.MUST_CLOSE))

    def _follow(self) -> None:
        if self._headers_due():
            timeout = self.header_timeout_s
        elif self._drain_due():
            timeout = self.drain_timeout_s
        else:
            self._disarm()
            return
        if self._deadline is None:
            self._arm(timeout)

    def _arm(self, timeout: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._drain_due():
            self._cut("drain_timeout")
        elif self.conn.their_state is h11.IDLE:
            self._cut("header_timeout")

    def _cut(self, reason: str) -> None:
        if self.cuts is not None:
            self.cuts.labels(reason).inc()
        self.transport.close()


def guarded_h11(header_timeout_s: float, drain_timeout_s: float,
                cuts: Counter | None = None,
                limits: ConnectionLimits | None = None) -> type[GuardedH11Protocol]:
    """The protocol class for one server (uvicorn builds it from ``Config.http``).

    Its connections share one count, so each server gets its own class.
    """
    connections = OpenConnections(limits) if limits is not None else None
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout_s": header_timeout_s, "drain_timeout_s": drain_timeout_s,
                 "cuts": cuts, "open_connections": connections})
