"""HTTP(S) GETs made for FFmpeg, so that every URL an HTTP source opens is judged first.

FFmpeg's own HTTP client opens whatever a playlist names and follows redirects of nested
opens; here :mod:`streamproc.dataplane.guard.nested` judges each URL and this module fetches it:
it connects to the checked address only (the name is never resolved again), sends the
name as ``Host`` (and as TLS SNI), never follows a redirect, and times out as FFmpeg does,
``open_s`` for the connect and the response head, ``read_s`` for each read of the body.
TLS certificates are not verified, as FFmpeg's ``tls_verify`` defaults to off: cameras
mostly carry self-signed certificates. A response with a length and ``Accept-Ranges:
bytes`` is seekable (a Range request per seek), as FFmpeg decides it.
"""

from __future__ import annotations

import base64
import errno
import http.client
import io
import ipaddress
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import av

_STATUS_ERRORS: dict[int, type[av.error.FFmpegError]] = {
    400: av.error.HTTPBadRequestError, 401: av.error.HTTPUnauthorizedError,
    403: av.error.HTTPForbiddenError, 404: av.error.HTTPNotFoundError,
    429: av.error.HTTPTooManyRequestsError}
USER_AGENT = "streamproc"


class HttpRedirect(Exception):
    """The server answered with a redirect (never followed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status


@dataclass(frozen=True)
class HttpTarget:
    """Where to GET: ``url`` names the checked address; ``host`` is the name it stands for."""

    url: str
    host: str

    def sni(self) -> str | None:
        """The name for TLS SNI (none for an address literal)."""
        name = urlsplit(f"//{self.host}").hostname or ""
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return name or None
        return None


def status_error(status: int, reason: str) -> av.error.FFmpegError:
    """The PyAV error FFmpeg's own client raises for this status (4xx, 5xx)."""
    kind = _STATUS_ERRORS.get(status)
    if kind is None:
        kind = av.error.HTTPOtherClientError if status < 500 else av.error.HTTPServerError
    return kind(status, f"Server returned {status} {reason}")


def _broken(exc: Exception) -> OSError:
    """An OSError (a network failure: retried) for what http.client raises otherwise."""
    if isinstance(exc, OSError):
        return exc
    return OSError(errno.EPROTO, f"bad HTTP exchange ({type(exc).__name__})")


class _TlsConnection(http.client.HTTPConnection):
    """HTTPS to an address, with the name the address stands for as SNI."""

    default_port = 443

    def __init__(self, address: str, port: int | None, sni: str | None,
                 timeout: float) -> None:
        super().__init__(address, port, timeout=timeout)
        self._sni = sni

    def connect(self) -> None:
        super().connect()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # as FFmpeg's tls_verify=0 (see the docstring)
        self.sock = context.wrap_socket(self.sock, server_hostname=self._sni)


class HttpBody:
    """One response body as a file object for PyAV (read, and seek where ranges work)."""

    def __init__(self, target: HttpTarget, open_s: float, read_s: float) -> None:
        self._target, self._open_s, self._read_s = target, open_s, read_s
        self._conn: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._pos = 0
        self.length: int | None = None
        self.ranges = False
        self.content_type = ""
        self._request(0)

    def _connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self._target.url)
        if parts.scheme == "https":
            return _TlsConnection(parts.hostname or "", parts.port, self._target.sni(),
                                  self._open_s)
        return http.client.HTTPConnection(parts.hostname or "", parts.port,
                                          timeout=self._open_s)

    def _request(self, start: int) -> None:
        parts = urlsplit(self._target.url)
        conn = self._connection()
        try:
            conn.putrequest("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query
                                                          else ""),
                            skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self._target.host)
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Accept", "*/*")
            if parts.username is not None:
                pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                conn.putheader("Authorization",
                               "Basic " + base64.b64encode(pair.encode()).decode())
            if start:
                conn.putheader("Range", f"bytes={start}-")
            conn.endheaders()
            response = conn.getresponse()
        except (http.client.HTTPException, ValueError) as exc:
            conn.close()
            raise _broken(exc) from None
        except BaseException:
            conn.close()
            raise
        self._close_connection()
        self._conn, self._response, self._pos = conn, response, start
        self._check(response, start)
        if conn.sock is not None:
            conn.sock.settimeout(self._read_s)

    def _check(self, response: http.client.HTTPResponse, start: int) -> None:
        status = response.status
        if 300 <= status < 400:
            self.close()
            raise HttpRedirect(status, response.reason)
        if status >= 400 or (start and status != 206):
            self.close()
            if status < 400:
                raise OSError(errno.ESPIPE, "the server cannot seek")
            raise status_error(status, response.reason)
        if not start:
            length = response.getheader("Content-Length")
            self.length = int(length) if length and length.isdigit() else None
            self.ranges = (response.getheader("Accept-Ranges") or "").lower() == "bytes"
            self.content_type = (response.getheader("Content-Type") or "").split(";")[0]

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes as they arrive (``b""`` at the end)."""
        if self._response is None:
            return b""
        try:
            data = self._response.read1(size if size > 0 else 65536)
        except http.client.HTTPException as exc:  # cut short, bad chunking
            raise _broken(exc) from None
        self._pos += len(data)
        return data

    def seekable(self) -> bool:
        """True where the server said it serves ranges of a known length."""
        return self.ranges and self.length is not None

    def tell(self) -> int:
        """The position in the body."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` with a Range request (only where :meth:`seekable`)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length or 0}[whence]
        target = base + offset
        if target != self._pos:
            if not self.seekable() or target < 0:
                raise OSError(errno.ESPIPE, "not seekable")
            self._request(target)
        return self._pos

    def _close_connection(self) -> None:
        if self._response is not None:
            self._response.close()
        if self._conn is not None:
            self._conn.close()
        self._conn, self._response = None, None

    def close(self) -> None:
        """End the connection."""
        self._close_connection()
