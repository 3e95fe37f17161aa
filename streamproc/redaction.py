"""How URLs are shown safely: the one redaction rule for logs, records and API responses.

At the bottom of the layering so that every package (the data plane's crash reports too)
uses the same rule.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = {"password", "pass", "pwd", "passwd", "token", "access_token", "key",
                  "secret", "signature", "sig", "auth", "apikey", "api_key", "passphrase"}


def redact(value: str) -> str:
    """Hide credentials: user:password in the authority and secret-looking query values."""
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
            query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs],
                              safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable url>"


def scrub(text: str, url: str) -> str:
    """``text`` with every copy of ``url`` (and its password) replaced by the redacted form.

    For messages that quote a URL they were not built from (PyAV's exceptions, tracebacks).
    """
    shown = redact(url)
    if shown == url:
        return text
    text = text.replace(url, shown)
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text
