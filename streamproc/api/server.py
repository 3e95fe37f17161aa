"""uvicorn in its own thread, on a socket bound before the thread starts."""

from __future__ import annotations

import logging
import resource
import socket
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from prometheus_client import Counter
from starlette.applications import Starlette

from streamproc.api.peers import ConnectionLimits
from streamproc.api.protocol import guarded_h11
from streamproc.lifecycle import Service

logger = logging.getLogger(__name__)

# Files the daemon holds besides client connections: models, SQLite, Kafka, ffmpeg pipes.
FD_RESERVE = 256


@dataclass(frozen=True)
class ConnectionTimeouts:
    """How long a request's headers, and an unread body's rest, may take; idle time."""

    header_s: float
    drain_s: float
    keep_alive_s: int


def raise_fd_limit(needed: int) -> int:
    """Raise the open-files soft limit to the hard one if it is under ``needed``; the limit.

    Every connection is a file descriptor: under too low a limit accept() fails (EMFILE)
    for everyone before ``max_connections`` is reached. Logged when it cannot be raised.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    # An unlimited hard limit is still capped by the kernel (nr_open): ask for what is needed.
    target = needed if hard == resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("cannot raise the open-files limit from %d to %d (%s): "
                       "server.max_connections may not be reached", soft, target, exc)
        return soft
    if target < needed:
        logger.warning("server.max_connections needs about %d open files but the hard limit "
                       "is %d: lower server.max_connections or raise the limit (ulimit -Hn, "
                       "systemd LimitNOFILE=)", needed, target)
    return target


class HttpServer(Service):
    """Serves an ASGI app; binding happens in :meth:`start` so errors surface there."""

    def __init__(self, app: Starlette | None, host: str, port: int, shutdown_timeout: float,
                 timeouts: ConnectionTimeouts,
                 tls: tuple[Path | None, Path | None] = (None, None),
                 cuts: Counter | None = None,
                 limits: ConnectionLimits | None = None) -> None:
        super().__init__("http-server")
        self._app = app
        self._timeouts = timeouts
        self._limits = limits  # open connections, in all and per client; None: uncapped
        self._cuts = cuts  # connections closed on a client, by reason
        self._host = host
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._tls = tls
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None

    def serve(self, app: Starlette) -> None:
        """Start serving ``app`` on the bound (or now bound) port."""
        self._app = app
        self.start()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._socket is None:
            return self._port
        return self._socket.getsockname()[1]

    @property
    def address(self) -> str | None:
        """The bound address (None before :meth:`bind`)."""
        return None if self._socket is None else str(self._socket.getsockname()[0])

    def bind(self) -> None:
        """Bind the port now (a cluster node names itself by it before it serves)."""
        if self._socket is not None:
            return
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets of that protocol (accepted
        # ones inherit it); without it each response waited ~40 ms on the delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        self._socket = sock

    def _on_start(self) -> None:
        self.bind()
        if self._app is None:
            msg = "no application to serve"
            raise RuntimeError(msg)
        if self._limits is not None:
            raise_fd_limit(self._limits.total + FD_RESERVE)
        certfile, keyfile = self._tls
        config = uvicorn.Config(self._app, log_config=None, access_log=False, lifespan="off",
                                http=guarded_h11(self._timeouts.header_s,
                                                 self._timeouts.drain_s, self._cuts,
                                                 self._limits),
                                timeout_keep_alive=self._timeouts.keep_alive_s,
                                # The peer's address is the socket's: uvicorn would otherwise
                                # take X-Forwarded-For from loopback clients, and per-client
                                # limits (console sign-ins) would count what a client claims.
                                proxy_headers=False,
                                # uvicorn annotates an int but passes it to asyncio.timeout,
                                # which takes seconds as a float.
                                timeout_graceful_shutdown=self._shutdown_timeout,  # type: ignore[arg-type]
                                ssl_certfile=str(certfile) if certfile else None,
                                ssl_keyfile=str(keyfile) if keyfile else None)
        self._server = uvicorn.Server(config)

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        self._server.run(sockets=[self._socket])

    def _on_stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop serving; connections get ``shutdown_timeout`` to finish."""
        stopped = super().stop(timeout)
        if self._socket is not None:
            self._socket.close()
        return stopped
