"""How URLs are shown safely: the one redaction rule for logs, records and API responses.

At the bottom of the layering so that every package (the data plane's crash reports too)
uses the same rule. Secrets are the userinfo, every query value except those of a short list
of options known to be harmless (a camera's ``authtoken``, a presigned URL's
``X-Amz-Signature`` and names no list foresees are hidden, not guessed at), and an RTMP URL's
stream key (the last element of its path, ``rtmp://host/app/KEY``), which is the password of
a publishing point.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

# Query options shown as they are: transport and stream selection, never credentials.
_SHOWN_PARAMS = frozenset({
    "rtsp_transport", "rtsp_flags", "transport", "channel", "subtype", "stream", "profile",
    "resolution", "fps", "latency", "rcvlatency", "peerlatency", "mode", "timeout",
    "rw_timeout", "pkt_size", "buffer_size", "fifo_size", "overrun_nonfatal", "width",
    "height", "codec", "video", "audio", "format", "camera", "unicast", "multicast", "ttl",
    "maxbw", "tcp", "udp"})
HIDDEN = "***"
_SHORT = 4  # secrets this short are scrubbed only where they stand alone


def _secret_param(name: str) -> bool:
    return name.lower() not in _SHOWN_PARAMS


def _stream_key(parts: SplitResult) -> str | None:
    """An RTMP URL's stream key: the last of two or more path elements (app/.../KEY)."""
    if not parts.scheme.lower().startswith("rtmp"):
        return None
    elements = [e for e in parts.path.split("/") if e]
    return elements[-1] if len(elements) >= 2 else None


def _hide_key(path: str, key: str) -> str:
    at = path.rindex(key)
    return path[:at] + HIDDEN + path[at + len(key):]


def redact(value: str) -> str:
    """Hide credentials: user:password, query values (but known options), RTMP stream keys."""
    if value.startswith("/") or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            netloc = ("***:***@" if ":" in userinfo else "***@") + host
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, HIDDEN if _secret_param(k) else v)
                               for k, v in pairs], safe="*")
        key = _stream_key(parts)
        path = _hide_key(parts.path, key) if key else parts.path
        return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))
    except ValueError:
        return "<unparseable url>"


def _secrets(url: str) -> set[str]:
    """Every secret piece of ``url``, as written and percent-decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    found = {v for k, v in parse_qsl(parts.query) if _secret_param(k)}
    found |= {v for pair in parts.query.split("&") for k, _, v in [pair.partition("=")]
              if _secret_param(unquote(k))}
    found |= {piece for piece in (parts.password, _stream_key(parts)) if piece}
    found |= {unquote(s) for s in found}
    return {s for s in found if s}


def scrub(text: str, url: str) -> str:
    """``text`` with every copy of ``url`` and of each of its secrets hidden.

    For messages that quote a URL they were not built from (PyAV's exceptions, tracebacks),
    in whatever form they quote it (re-encoded, decoded, only in part). A short secret (up
    to 4 characters) is hidden only where it stands alone, not inside a longer word or
    number (a stream key ``1`` leaves ``port 1935`` as it is); a longer one wherever it is,
    so a percent-encoded quote (``%3Ds3cretPW``) hides it too.
    """
    shown = redact(url)
    if shown == url:
        return text
    text = text.replace(url, shown)
    for secret in sorted(_secrets(url), key=len, reverse=True):
        if len(secret) > _SHORT:
            text = text.replace(secret, HIDDEN)
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", HIDDEN, text)
    return text
