"""Per-protocol open options and what a failure to read means.

Live-edge options (measured in ``benchmarks/bench_ingest.py``): a processor wants the newest
frame, not a faithful start, so probing stops as soon as it can: ``analyzeduration`` 1 us
(0 would mean FFmpeg's default of 5 s), ``fpsprobesize`` 0 (the frame rate is not estimated:
frames are timed by their timestamps) and ``probesize`` 32 KiB. The codec parameters come
with the first key frame, or from the SDP for RTSP. On a 15 fps MPEG-TS stream this opened
in 0.14 s instead of 1.5 s. ``fflags=nobuffer`` is not used: it throws away the packets read
while probing, so the first frame waits for the next key frame, and it did not lower the
steady latency.

RTSP carries the camera's clock in RTCP sender reports; a run's first connection waits up
to :data:`CAMERA_CLOCK_WAIT_S` for the first one before passing frames on (frames before it
are dropped), so records never start on arrival times that a slower camera clock could
not follow (see :mod:`streamproc.dataplane.live.timeline`); later connections use the offset
already measured until their own report comes.

RTSP transport is chosen per processor with the query option ``rtsp_transport`` on the
input URL (taken off before the URL reaches the camera): ``tcp`` (the default: RTP
interleaved in the RTSP connection, lossless, passes NAT and firewalls), ``udp`` (RTP over
UDP, lower overhead on a clean LAN, loses packets under load) or ``auto`` (FFmpeg's own
order: UDP first, TCP when the camera refuses UDP or no UDP packet arrives).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import av

CAMERA_CLOCK_WAIT_S = 5.0  # RTCP reports come every few seconds (GStreamer's: ~5 s apart)
RTSP_TRANSPORTS = {"tcp": "tcp", "udp": "udp", "auto": "udp+tcp"}
LIVE_EDGE = {"probesize": "32768", "analyzeduration": "1", "fpsprobesize": "0"}
_PER_SCHEME: dict[str, dict[str, str]] = {
    "rtsp": {"buffer_size": "4194304"},  # UDP socket buffer: a whole key frame fits
    "rtmp": {"rtmp_live": "live"},
    "udp": {"buffer_size": "4194304", "overrun_nonfatal": "1"},
    # HLS: start at the newest segment instead of three from the end. No keep-alive:
    # FFmpeg's keep-alive reuses its own connection, and every open here is ours (nested).
    "http": {"live_start_index": "-1", "http_persistent": "0"},
}
# What FFmpeg may open beneath each scheme (protocol_whitelist), so that a stream that
# probes as a playlist cannot make it open another protocol. File and HTTP(S) sources have
# every open judged as well (streamproc.dataplane.guard.nested); RTSP is left to FFmpeg (RTP,
# UDP and TCP to its own server; it names no playlist).
PROTOCOLS = {"file": "file", "http": "http,tcp", "https": "https,tls,tcp", "tcp": "tcp",
             "udp": "udp", "rtmp": "rtmp,tcp", "rtmps": "rtmps,rtmp,tls,tcp", "srt": "srt"}
# Sources whose every open (the first, and each segment or playlist it names) is judged.
GUARDED = ("file", "http")


class SourceError(Exception):
    """A source problem; ``fatal`` ones end the processor in FAILED, others are retried."""

    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True)
class SourcePlan:
    """How to open one input: the URL PyAV gets and its options."""

    url: str
    scheme: str
    options: dict[str, str] = field(default_factory=dict)
    live: bool = True
    camera_clock: bool = False  # the protocol can carry the camera's wall clock (RTCP)

    @property
    def guarded(self) -> bool:
        """Every URL FFmpeg opens for it goes through :mod:`streamproc.dataplane.guard.nested`."""
        return self.scheme in GUARDED


def plan_source(url: str) -> SourcePlan:
    """Open options for ``url``; raises a fatal :class:`SourceError` for a bad option value."""
    if url.startswith("/") or url.startswith("file:"):
        return SourcePlan(url, "file", {"protocol_whitelist": PROTOCOLS["file"]}, live=False)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    family = {"rtsps": "rtsp", "rtmps": "rtmp", "https": "http"}.get(scheme, scheme)
    options = {**LIVE_EDGE, **_PER_SCHEME.get(family, {})}
    if scheme in PROTOCOLS:
        options["protocol_whitelist"] = PROTOCOLS[scheme]
    if family == "rtsp":
        query = parse_qsl(parts.query, keep_blank_values=True)
        chosen = [v for k, v in query if k == "rtsp_transport"]
        transport = (chosen[-1] if chosen else "tcp").lower()
        if transport not in RTSP_TRANSPORTS:
            msg = f"rtsp_transport must be one of {', '.join(RTSP_TRANSPORTS)}"
            raise SourceError(msg, fatal=True)
        options["rtsp_transport"] = RTSP_TRANSPORTS[transport]
        rest = urlencode([(k, v) for k, v in query if k != "rtsp_transport"])
        url = urlunsplit(parts._replace(query=rest))
    return SourcePlan(url, family, options, camera_clock=family == "rtsp")


_HTTP_REASONS = (
    (av.error.HTTPUnauthorizedError, "authentication failed (401 Unauthorized)"),
    (av.error.HTTPForbiddenError, "access denied (403 Forbidden)"),
    (av.error.HTTPNotFoundError, "not found (404 Not Found)"),
)
_FATAL = (av.error.FileNotFoundError, av.error.InvalidDataError, av.error.DecoderNotFoundError,
          av.error.ProtocolNotFoundError, av.error.PermissionError,
          av.error.HTTPClientError, av.error.HTTPBadRequestError,
          # Python's own, from files opened for FFmpeg (streamproc.dataplane.guard.nested)
          FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
_TRANSIENT_ERRNOS = {errno.ECONNREFUSED: "connection refused",
                     errno.EHOSTUNREACH: "host unreachable",
                     errno.ENETUNREACH: "network unreachable",
                     errno.ETIMEDOUT: "timed out", errno.ECONNRESET: "connection reset"}


def classify(exc: BaseException, url_shown: str, plan: SourcePlan | None = None
             ) -> SourceError:
    """Map PyAV/OS errors to fatal (bad URL, credentials, codec) or retriable (network)."""
    for kind, reason in _HTTP_REASONS:
        if isinstance(exc, kind):
            return SourceError(f"Cannot open {url_shown}: {reason}", fatal=True)
    # strerror, never str(exc): PyAV puts the full URL (credentials too) in str().
    text = getattr(exc, "strerror", None) or type(exc).__name__
    code = getattr(exc, "errno", None) or 0
    if isinstance(exc, av.error.ProtocolNotFoundError):
        scheme = plan.scheme if plan is not None else url_shown.split("://", 1)[0]
        return SourceError(f"Cannot open {url_shown}: protocol {scheme} is not supported "
                           "by this build", fatal=True)
    if isinstance(exc, _FATAL):
        return SourceError(f"Cannot open {url_shown}: {text}", fatal=True)
    if plan is not None and plan.scheme == "rtsp" and code == errno.EPROTONOSUPPORT:
        transport = plan.options.get("rtsp_transport", "tcp")
        return SourceError(f"Cannot open {url_shown}: the server refused RTP over "
                           f"{transport} (461 Unsupported transport); choose another "
                           "rtsp_transport", fatal=True)
    if "resolve" in text.lower() or (code == errno.EIO and not _resolves(url_shown)):
        return SourceError(f"Cannot resolve host of {url_shown}", fatal=True)
    if isinstance(exc, TimeoutError | av.error.ExitError):
        return SourceError(f"{url_shown}: no data (timed out)", fatal=False)
    return SourceError(f"{url_shown}: {_TRANSIENT_ERRNOS.get(code, text)}", fatal=False)


def _resolves(url: str) -> bool:
    """False only when the URL names a host that DNS does not know."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return True
    if not host:
        return True
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    except OSError:
        return True
    return True
