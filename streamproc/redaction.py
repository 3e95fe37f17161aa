"""How URLs are shown safely: the one redaction rule for logs, records and API responses.

At the bottom of the layering so that every package (the data plane's crash reports too)
uses the same rule. Secrets are the userinfo, secret-looking query values, and an RTMP URL's
stream key (the last element of its path, ``rtmp://host/app/KEY``), which is the password of
a publishing point.
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = {"password", "pass", "pwd", "passwd", "token", "access_token", "key",
                  "secret", "signature", "sig", "auth", "apikey", "api_key", "passphrase"}
HIDDEN = "***"


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
    """Hide credentials: user:password, secret-looking query values, RTMP stream keys."""
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
            query = urlencode([(k, HIDDEN if k.lower() in _SECRET_PARAMS else v)
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
    found = {v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS}
    found |= {v for pair in parts.query.split("&") for k, _, v in [pair.partition("=")]
              if unquote(k).lower() in _SECRET_PARAMS}
    found |= {piece for piece in (parts.password, _stream_key(parts)) if piece}
    found |= {unquote(s) for s in found}
    return {s for s in found if s}


def scrub(text: str, url: str) -> str:
    """``text`` with every copy of ``url`` and of each of its secrets hidden.

    For messages that quote a URL they were not built from (PyAV's exceptions, tracebacks),
    in whatever form they quote it (re-encoded, decoded, only in part).
    """
    shown = redact(url)
    if shown == url:
        return text
    text = text.replace(url, shown)
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
