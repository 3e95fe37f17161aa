"""Opaque, stateless pagination tokens that always fit botocore's 255-character limit.

A token names the listing it belongs to (a short digest of the listing's kind, e.g.
``faces:<collection>``, so a token of one listing is refused by another) and the last key
of the page it ends. An integer key is carried whole. A string key is carried whole when
it fits; a longer one (collection ids reach 255 characters) as its first
:data:`KEY_PREFIX_BYTES` bytes plus a digest of the whole key, resolved against the
listing's sorted keys when the next page is asked for. Nothing is kept on the server, so
any daemon reading the same data accepts the token.

If the key a truncated token ends at was deleted before the next page, the listing
resumes after the key's prefix: items sharing that prefix may be listed again, but none
is ever skipped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar, overload

from streamproc.errors import InvalidPaginationTokenException

# PaginationToken's max length in botocore's model.
MAX_TOKEN_CHARS = 255
_VERSION = 1
_KIND_BYTES = 6
_DIGEST_BYTES = 8
_INT, _STR, _STR_PREFIX = 0, 1, 2
# version + kind + type + prefix + digest = 176 bytes = 235 base64 characters.
KEY_PREFIX_BYTES = 160


def _digest(data: bytes, size: int) -> bytes:
    return hashlib.blake2b(data, digest_size=size).digest()


T = TypeVar("T")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_token(kind: str, key: int | str) -> str:
    """Token that resumes the listing ``kind`` after ``key``."""
    head = bytes([_VERSION]) + _digest(kind.encode(), _KIND_BYTES)
    if isinstance(key, int):
        return _b64(head + bytes([_INT]) + key.to_bytes(8, "big", signed=True))
    data = key.encode()
    if len(data) <= KEY_PREFIX_BYTES + _DIGEST_BYTES:
        return _b64(head + bytes([_STR]) + data)
    return _b64(head + bytes([_STR_PREFIX]) + data[:KEY_PREFIX_BYTES]
                + _digest(data, _DIGEST_BYTES))


def _raw(token: str) -> bytes:
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidPaginationTokenException()
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidPaginationTokenException() from None


@overload
def decode_token(kind: str, token: str | None, key_type: type[int],
                 keys: Iterable[str] | None = None) -> int | None: ...


@overload
def decode_token(kind: str, token: str | None, key_type: type[str],
                 keys: Iterable[str] | None = None) -> str | None: ...


def decode_token(kind: str, token: str | None, key_type: type[int] | type[str],
                 keys: Iterable[str] | None = None) -> int | str | None:
    """The key a token of ``kind`` resumes after; None for no token.

    ``keys`` (the listing's current keys) resolves a truncated string key; without them,
    or when the key is gone, the key's prefix is returned (see the module docstring).
    """
    if not token:
        return None
    raw = _raw(token)
    head = bytes([_VERSION]) + _digest(kind.encode(), _KIND_BYTES)
    if len(raw) < len(head) + 1 or not raw.startswith(head):
        raise InvalidPaginationTokenException()
    kind_byte, body = raw[len(head)], raw[len(head) + 1:]
    if key_type is int and kind_byte == _INT and len(body) == 8:
        return int.from_bytes(body, "big", signed=True)
    if key_type is str and kind_byte == _STR and body:
        return _text(body)
    if key_type is str and kind_byte == _STR_PREFIX and len(body) == \
            KEY_PREFIX_BYTES + _DIGEST_BYTES:
        prefix, digest = body[:KEY_PREFIX_BYTES], body[KEY_PREFIX_BYTES:]
        for key in keys or ():
            data = key.encode()
            if data.startswith(prefix) and _digest(data, _DIGEST_BYTES) == digest:
                return key
        # The key is gone: resume after its prefix (repeats, never skips).
        return _text(prefix, partial_ok=True)
    raise InvalidPaginationTokenException()


def _text(data: bytes, partial_ok: bool = False) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        if partial_ok:  # a prefix may end inside a multi-byte character: drop it
            return data.decode(errors="ignore")
        raise InvalidPaginationTokenException() from None


def page_of_keys(kind: str, keys: list[str], token: str | None, limit: int
                 ) -> tuple[list[str], str | None]:
    """One page of sorted string ``keys`` after the token's key, and the next page's token."""
    after = decode_token(kind, token, str, keys)
    rest = [k for k in keys if after is None or k > after]
    page = rest[:limit]
    return page, encode_token(kind, page[-1]) if len(rest) > limit else None


def page_by_seq(kind: str, token: str | None, limit: int,
                fetch: Callable[[int, int], list[T]], seq: Callable[[T], int]
                ) -> tuple[list[T], str | None]:
    """One page of rows kept in ``seq`` order: ``fetch(after, count)`` reads them."""
    after = decode_token(kind, token, int) or 0
    rows = fetch(after, limit + 1)
    page = rows[:limit]
    return page, encode_token(kind, seq(page[-1])) if len(rows) > limit else None
