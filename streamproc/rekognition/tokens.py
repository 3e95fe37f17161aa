"""Opaque pagination tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

from streamproc.errors import InvalidPaginationTokenException


def encode_token(kind: str, key: Any) -> str:
    """Token that resumes a listing of ``kind`` after ``key``."""
    raw = json.dumps({"k": kind, "a": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(kind: str, token: str | None, key_type: type) -> Any:
    """The ``after`` key inside a token of ``kind``; None for no token."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["k"] == kind and isinstance(data["a"], key_type):
            return data["a"]
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidPaginationTokenException()
