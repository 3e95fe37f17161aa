"""Pagination tokens and page cutting on synthetic listings: exact multiples, every edge."""

from __future__ import annotations

import base64

import pytest

from streamproc.errors import InvalidPaginationTokenException
from streamproc.rekognition import tokens
from streamproc.rekognition.tokens import (
    KEY_PREFIX_BYTES,
    MAX_TOKEN_CHARS,
    decode_token,
    encode_token,
    page_by_seq,
    page_of_keys,
)

KEYS = [f"k{i:02d}" for i in range(12)]


def walk_keys(keys: list[str], size: int) -> list[list[str]]:
    """Every page of ``keys``, following NextTokens."""
    out, token = [], None
    while True:
        page, token = page_of_keys("things", keys, token, size)
        out.append(page)
        if token is None:
            return out
        assert len(out) <= len(keys) + 1, "the listing does not end"


def walk_seq(rows: list[int], size: int) -> list[list[int]]:
    calls: list[tuple[int, int]] = []

    def fetch(after: int, count: int) -> list[int]:
        calls.append((after, count))
        return [r for r in rows if r > after][:count]

    out, token = [], None
    while True:
        page, token = page_by_seq("rows", token, size, fetch, lambda r: r)
        out.append(page)
        if token is None:
            assert all(count == size + 1 for _, count in calls)  # one look-ahead row
            return out
        assert len(out) <= len(rows) + 1, "the listing does not end"


@pytest.mark.parametrize(("size", "count"), [(1, 12), (3, 4), (4, 3), (6, 2), (12, 1),
                                             (5, 3), (13, 1), (100, 1)])
def test_key_pages_end_exactly_at_multiples(size: int, count: int) -> None:
    got = walk_keys(KEYS, size)
    assert len(got) == count  # no empty page after an exact multiple
    assert [k for page in got for k in page] == KEYS
    assert all(len(page) == size for page in got[:-1]) and got[-1]


@pytest.mark.parametrize(("size", "count"), [(1, 7), (7, 1), (2, 4), (3, 3), (8, 1)])
def test_seq_pages_end_exactly_at_multiples(size: int, count: int) -> None:
    rows = [3, 5, 8, 13, 21, 34, 55]  # gaps, as after deletions
    got = walk_seq(rows, size)
    assert len(got) == count
    assert [r for page in got for r in page] == rows


def test_empty_listings_have_one_empty_page_and_no_token() -> None:
    assert page_of_keys("things", [], None, 5) == ([], None)
    assert page_by_seq("rows", None, 5, lambda after, count: [], lambda r: r) == ([], None)


def test_a_key_page_resumes_after_the_token_key_even_if_it_was_deleted() -> None:
    page, token = page_of_keys("things", KEYS, None, 3)
    assert page == ["k00", "k01", "k02"]
    rest = [k for k in KEYS if k != "k02"]
    assert page_of_keys("things", rest, token, 3)[0] == ["k03", "k04", "k05"]
    assert page_of_keys("things", ["k01", "k10"], token, 3) == (["k10"], None)


def test_seq_pages_start_after_the_token_row() -> None:
    seen: list[int] = []

    def fetch(after: int, count: int) -> list[int]:
        seen.append(after)
        return [r for r in range(1, 10) if r > after][:count]

    _, token = page_by_seq("rows", None, 4, fetch, lambda r: r)
    page, _ = page_by_seq("rows", token, 4, fetch, lambda r: r)
    assert seen == [0, 4] and page == [5, 6, 7, 8]


def test_integer_keys_round_trip_including_negative_and_large() -> None:
    for key in (0, 1, -1, 2**40, 2**63 - 1, -(2**63)):
        assert decode_token("rows", encode_token("rows", key), int) == key


def test_string_keys_round_trip_up_to_the_longest() -> None:
    whole = KEY_PREFIX_BYTES + 8  # carried whole up to here, as prefix + digest beyond
    for key in ("a", "é" * 5, "x" * whole, "x" * (whole + 1), "y" * 255, "ü" * 127):
        token = encode_token("things", key)
        assert 0 < len(token) <= MAX_TOKEN_CHARS
        assert decode_token("things", token, str, [key, key + "z"]) == key
    longer = encode_token("things", "x" * (whole + 1))
    assert decode_token("things", longer, str) == "x" * KEY_PREFIX_BYTES  # a prefix
    assert decode_token("things", encode_token("things", "x" * whole), str) == "x" * whole


def test_a_long_key_without_the_listing_resumes_after_its_prefix() -> None:
    key = "p" * KEY_PREFIX_BYTES + "tail" * 5
    token = encode_token("things", key)
    assert decode_token("things", token, str) == "p" * KEY_PREFIX_BYTES
    assert decode_token("things", token, str, ["q"]) == "p" * KEY_PREFIX_BYTES
    # The prefix may end inside a character: the partial character is dropped.
    wide = "a" + "é" * 100
    cut = decode_token("things", encode_token("things", wide), str)
    assert wide.startswith(cut) and len(cut.encode()) == KEY_PREFIX_BYTES - 1


def test_no_token_means_the_first_page() -> None:
    assert decode_token("things", None, str) is None
    assert decode_token("things", "", int) is None


def _forge(body: bytes, kind: str = "things") -> str:
    head = bytes([1]) + tokens._digest(kind.encode(), 6)
    return base64.urlsafe_b64encode(head + body).decode().rstrip("=")


# Tokens are made inside the tests (not at collection), so a mutation tool that changes the
# code after collecting sees them made by the changed code.
BROKEN_STR = {
    "short": lambda: "x", "not base64": lambda: "!!!!",
    "too long": lambda: "A" * (MAX_TOKEN_CHARS + 1),
    "another listing": lambda: encode_token("others", "k01"),
    "an integer key": lambda: encode_token("things", 5),
    "no type byte": lambda: _forge(b""),
    "an empty key": lambda: _forge(bytes([1])),
    "an unknown type": lambda: _forge(bytes([9]) + b"k"),
    "not UTF-8": lambda: _forge(bytes([1]) + b"\xff\xfe"),
    "a truncated key of the wrong size": lambda: _forge(bytes([2]) + b"p" * 10),
    "another version": lambda: base64.urlsafe_b64encode(
        bytes([2]) + tokens._digest(b"things", 6) + b"\x01k").decode(),
}


@pytest.mark.parametrize("case", sorted(BROKEN_STR))
def test_foreign_or_broken_tokens_are_refused(case: str) -> None:
    token = BROKEN_STR[case]()
    with pytest.raises(InvalidPaginationTokenException):
        decode_token("things", token, str, KEYS)
    with pytest.raises(InvalidPaginationTokenException):
        page_of_keys("things", KEYS, token, 3)


BROKEN_INT = {
    "a string key": lambda: encode_token("things", "5"),
    "7 bytes": lambda: _forge(bytes([0]) + b"\x00" * 7),
    "no bytes": lambda: _forge(bytes([0])),
    "9 bytes": lambda: _forge(bytes([0]) + b"\x00" * 9),
    "another listing": lambda: encode_token("rows:other", 5),
}


@pytest.mark.parametrize("case", sorted(BROKEN_INT))
def test_broken_integer_tokens_are_refused(case: str) -> None:
    with pytest.raises(InvalidPaginationTokenException):
        decode_token("things", BROKEN_INT[case](), int)


def test_many_tokens_round_trip() -> None:
    # Enough of them that every base64 character ends some token.
    for i in range(3000):
        assert decode_token("rows", encode_token("rows", i * 7919), int) == i * 7919
        key = f"key-{i}"
        assert decode_token("things", encode_token("things", key), str) == key
    assert "=" not in encode_token("rows", 1)  # no padding


def test_a_truncated_key_resolves_to_the_key_with_its_digest() -> None:
    prefix = "s" * KEY_PREFIX_BYTES
    keys = [prefix + "a" * 20, prefix + "b" * 20, prefix + "c" * 20]
    token = encode_token("things", keys[1])
    assert decode_token("things", token, str, keys) == keys[1]
    assert page_of_keys("things", keys, token, 1) == ([keys[2]], None)
    page, token = page_of_keys("things", keys, None, 1)
    assert page == [keys[0]]
    assert page_of_keys("things", keys, token, 1)[0] == [keys[1]]  # no repeat


def test_a_token_at_the_length_limit_is_read() -> None:
    token = encode_token("things", "y" * 255)
    padded = token + "=" * (MAX_TOKEN_CHARS - len(token))
    assert len(padded) == MAX_TOKEN_CHARS
    assert decode_token("things", padded, str, ["y" * 255]) == "y" * 255


def test_every_key_survives_the_round_trip_whatever_its_last_characters() -> None:
    # Unpadded base64 may end in any letter of the alphabet: a key whose token ends in "X"
    # must not lose it to the padding strip.
    letters = [chr(c) for c in range(ord("0"), ord("z") + 1)]
    ends_in_x = next(k for k in (a + b + c + d for a in "ab" for b in letters
                                 for c in letters for d in letters)
                     if encode_token("faces:c", k).endswith("X"))
    ints = [*range(-300, 300), 2**63 - 1, -(2**63)]
    for key in ints:
        assert decode_token("faces:c", encode_token("faces:c", key), int) == key
    for key in ["a", "ab", "abc", ends_in_x, *(f"k{i}" for i in range(300))]:
        assert decode_token("faces:c", encode_token("faces:c", key), str) == key
