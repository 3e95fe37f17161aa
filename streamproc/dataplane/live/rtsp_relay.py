"""A loopback relay for one RTSP session, so that FFmpeg never sees a redirect.

FFmpeg has no option to refuse RTSP redirects and follows them over a connection of its
own. So an ``rtsp://`` source is opened through :class:`RtspRelay`: the daemon connects to
the checked camera address itself (the connect's errors are the source's: refused, timed
out), listens on an ephemeral loopback port (127.0.0.1, or ::1 for an IPv6 camera), and
FFmpeg opens the same URL with that port as its authority (userinfo, path and query kept:
Basic and Digest authentication are computed over the URL FFmpeg sends, so they hold).
The relay takes exactly one connection, then copies bytes both ways; what the server sends
is read by :class:`~streamproc.dataplane.live.rtsp_framing.ServerFraming`, which holds back
every head line until it is judged. A ``3xx`` answer cuts both connections and fails the
source (fatal, as a refused HTTP redirect is); framing that FFmpeg could read otherwise
ends the session as a network error (retried). SETUP for absolute control URLs goes over
the same connection; RTP over UDP still flows between the camera and FFmpeg's ports.

``rtsps`` is not relayed (its framing is encrypted): a known limit.
"""

from __future__ import annotations

import selectors
import socket
import time
from typing import cast
from urllib.parse import urlsplit, urlunsplit

from streamproc.dataplane.guard.nested import OpenRefused
from streamproc.dataplane.guard.protocols import SourceError
from streamproc.dataplane.live.rtsp_framing import MalformedReply, ServerFraming, printable
from streamproc.lifecycle import Service
from streamproc.redaction import redact

CHUNK = 65536  # bytes read per turn in each direction (the relay holds no more)
LOCATION_WAIT_S = 1.0  # how long the rest of a redirect's head is awaited, for its Location
_TURN_S = 0.2  # selector period: how soon a stop is seen
DEFAULT_PORT = 554


def relayed(url: str) -> bool:
    """True for the URLs opened through a relay: ``rtsp://`` (``rtsps`` cannot be)."""
    return url[:7].lower() == "rtsp://"


class RtspRelay(Service):
    """One RTSP session between FFmpeg and a checked server; a context manager.

    ``start`` (``with``) connects to the server in the caller's thread and raises its
    ``OSError``; :meth:`url` is the URL FFmpeg opens. ``stop`` is bounded by its timeout;
    the sockets are closed by the thread, or by ``stop`` if the thread must be abandoned.
    After the session, :attr:`refused` holds a refused redirect, :attr:`failure` a
    malformed reply.
    """

    def __init__(self, url: str, url_shown: str, open_s: float, read_s: float) -> None:
        super().__init__("rtsp-relay")
        parts = urlsplit(url)
        self._target = (parts.hostname or "", parts.port or DEFAULT_PORT)
        self._shown = url_shown
        self._open_s, self._read_s = open_s, read_s
        self._upstream: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._local: tuple[str, int] = ("", 0)  # the loopback address FFmpeg connects to
        self.refused: OpenRefused | None = None
        self.failure: SourceError | None = None

    def __enter__(self) -> RtspRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(self._open_s + 1.0)

    def url(self, url: str) -> str:
        """``url`` with the relay's loopback address and port as its host and port."""
        host, port = self._local
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        literal = f"[{host}]" if ":" in host else host
        netloc = (f"{userinfo}@" if userinfo else "") + f"{literal}:{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _on_start(self) -> None:
        upstream = socket.create_connection(self._target, timeout=self._open_s)
        try:
            family = upstream.family
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
            listener.listen(1)
        except OSError:
            upstream.close()
            raise
        upstream.settimeout(self._read_s)
        listener.settimeout(_TURN_S)
        self._upstream, self._listener = upstream, listener
        self._local = listener.getsockname()[:2]

    def _on_stop(self) -> None:
        for sock in (self._client, self._upstream):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # unblocks a send or a select
                except OSError:
                    pass

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop within ``timeout``; the sockets are closed whatever the thread does."""
        done = super().stop(timeout)
        self._close()
        return done

    def _close(self) -> None:
        for sock in (self._client, self._upstream, self._listener):
            if sock is not None:
                sock.close()

    def _run(self) -> None:
        try:
            client = self._accept()
            if client is not None:
                self._pump(client)
        except OSError:
            pass  # a reset, a timed-out send, or stop(): FFmpeg sees the connection end
        finally:
            self._close()

    def _accept(self) -> socket.socket | None:
        """FFmpeg's connection (the first one; the port is closed after it)."""
        assert self._listener is not None
        deadline = time.monotonic() + self._open_s
        while not self.stopping and time.monotonic() < deadline:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._listener.close()
            client.settimeout(self._read_s)
            self._client = client
            return client
        return None

    def _pump(self, client: socket.socket) -> None:
        upstream = self._upstream
        assert upstream is not None
        framing = ServerFraming(upstream.getpeername()[0])
        # A selector, not select(): with the raised open-files limit a socket's number can
        # pass 1024, which select() cannot watch.
        with selectors.DefaultSelector() as watch:
            watch.register(client, selectors.EVENT_READ)
            watch.register(upstream, selectors.EVENT_READ)
            return self._relay(watch, client, upstream, framing)

    def _relay(self, watch: selectors.BaseSelector, client: socket.socket,
               upstream: socket.socket, framing: ServerFraming) -> None:
        cut_at = 0.0
        while not self.stopping:
            ready = [cast(socket.socket, key.fileobj) for key, _ in watch.select(_TURN_S)]
            if framing.redirect is not None and time.monotonic() > cut_at:
                break
            for sock in ready:
                data = sock.recv(CHUNK)
                if not data:
                    return self._refuse(framing)
                if sock is client:
                    upstream.sendall(data)
                    continue
                try:
                    out = framing.feed(data)
                except MalformedReply as exc:
                    self.failure = SourceError(f"{self._shown}: {exc}", fatal=False)
                    return None
                if framing.redirect is None:
                    client.sendall(out)
                elif framing.redirect.complete:
                    return self._refuse(framing)
                elif not cut_at:
                    cut_at = time.monotonic() + LOCATION_WAIT_S
        return self._refuse(framing)

    def _refuse(self, framing: ServerFraming) -> None:
        """Record a redirect seen (before the sockets close, so FFmpeg's error finds it)."""
        found = framing.redirect
        if found is None:
            return
        reason = f"{found.status} {found.reason}".strip()
        where = f" to {printable(redact(found.location))}" if found.location else ""
        self.refused = OpenRefused(f"Cannot open {self._shown}: redirected ({reason}){where}; "
                                   "redirects are not followed, name the final URL")
