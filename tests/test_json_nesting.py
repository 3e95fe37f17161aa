"""How deep a request body nests, judged from its bytes (api.nesting) before parsing.

Model-free. The end-to-end refusals (SerializationException, counted) are in
test_api_edge.py; here the scanner itself: what counts as nesting, escapes and strings that
straddle its chunks, and what the check costs beside json.loads on 8 MiB bodies.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable

import pytest

from streamproc.api import nesting, transport
from streamproc.api.nesting import nests_deeper_than
from streamproc.errors import SerializationException

WIDE = 8 * 1024 * 1024  # max_request_bytes
WIDE_BODIES = {
    "numbers": b'{"A": [' + b"1," * (WIDE // 2 - 8) + b"1]}",
    "lists": b'{"A": [' + b"[]," * (WIDE // 3 - 8) + b"[]]}",
    "strings": b'{"A": [' + b'"[{",' * (WIDE // 5 - 8) + b'"["]}',
}


def _peak(call: Callable[[], object]) -> int:
    """The most memory ``call`` held at once (bytes allocated)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", sorted(WIDE_BODIES))
def test_a_wide_body_costs_little_more_than_json_loads(name: str) -> None:
    """The depth check must not cost more than parsing: an 8 MiB ``[1,1,...]`` took 1.7 s
    and 257 MB beside json.loads' 0.2 s when every scalar was pushed on a stack."""
    body = WIDE_BODIES[name]
    # Memory, not wall-clock time: timings on a shared 2-core box are noise.
    assert _peak(lambda: nests_deeper_than(body, transport.MAX_JSON_DEPTH)) < len(body) // 8


@pytest.mark.parametrize(("body", "deep"), [
    (b'{"A": "' + b"[" * 100 + b'"}', False),  # brackets in a string are no nesting
    (b'{"A": "a\\"' + b"[" * 100 + b'"}', False),  # nor after an escaped quote
    (b'{"A": "\\\\", "B": ' + b"[" * 33 + b"]" * 33 + b"}", True),  # an escaped backslash
    (b'{"A": "\\\\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', False),
    (b"[" + b'{"a": [' * 10 + b"1" + b"]}" * 10 + b"]", False),  # 21 levels, mixed
    (b"[" + b'{"a": [' * 16 + b"1" + b"]}" * 16 + b"]", True),  # 33
    (b'{"A": [' + b"[]," * 100_000 + b"[]]}", False),  # wide, across many chunks
])
def test_nesting_is_read_from_the_raw_body(body: bytes, deep: bool) -> None:
    json.loads(body)
    assert nests_deeper_than(body, 32) is deep


@pytest.mark.parametrize("pad", range(nesting._CHUNK - 12, nesting._CHUNK + 4))
def test_nesting_is_read_across_chunk_boundaries(pad: int) -> None:
    """Escapes and strings that straddle the scanner's 16 KiB chunks."""
    escaped_backslash = b'{"A": "' + b"x" * pad + b'\\\\", "B": ' + b"[" * 33 + b"]" * 33 + b"}"
    escaped_quote = b'{"A": "' + b"x" * pad + b'\\"' + b"[" * 40 + b'"}'
    string_across = b'{"A": "' + b"x" * pad + b"[" * 40 + b'", "B": ' + b"[" * 33 + b"]" * 33 + b"}"
    for body, deep in ((escaped_backslash, True), (escaped_quote, False), (string_across, True)):
        json.loads(body)
        assert nests_deeper_than(body, 32) is deep


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32"])
def test_a_body_that_is_not_utf8_is_refused_before_the_depth_scan(encoding: str) -> None:
    """json.loads takes UTF-16/32 too, whose escaped quotes the byte scan does not read:
    900 levels would pass it unseen."""
    deep = ('{"A": "\\"", "B": ' + "[" * 900 + "]" * 900 + "}").encode(encoding)
    json.loads(deep)  # what a lenient parser would take
    with pytest.raises(SerializationException, match="must be UTF-8"):
        transport._parse(deep)
