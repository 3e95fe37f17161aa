"""The RTSP test server survives a port taken between choosing it and listening on it.

CI once failed when one of four servers built side by side lost its port that way.
"""

from __future__ import annotations

import socket

import pytest
from streams import BOTH

from streamproc.tools.mediaservers import Feed
from streamproc.tools.sharedservers import RtspServer


def _taken() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_chosen_port_taken_meanwhile_is_replaced() -> None:
    holder = _taken()
    taken = holder.getsockname()[1]
    server = RtspServer(Feed(BOTH))
    server.port = taken  # as if another process took the port it chose
    try:
        server.start()
        assert server.port != taken
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    finally:
        server.stop()
        holder.close()


def test_a_port_the_caller_named_is_never_replaced() -> None:
    holder = _taken()
    taken = holder.getsockname()[1]
    server = RtspServer(Feed(BOTH), port=taken)
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            server.start()
        assert server.port == taken
    finally:
        server.stop()
        holder.close()
