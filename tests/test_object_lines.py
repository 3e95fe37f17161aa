"""Objects read as lines, streamed: any chunking gives the same lines, memory stays bounded.

A manifest is read a chunk at a time (local file and S3 body alike): a line is held only
while it fits ``max_line_bytes``, a longer one comes as ``data=None`` with its rest never
held, ``skip`` lines are read past, and ``stop`` ends the iteration promptly. The S3 side
against real servers is in ``test_objects_s3servers.py``.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.config import ObjectsConfig
from streamproc.errors import InvalidS3ObjectException
from streamproc.storage.object_lines import ManifestLine, split_lines
from streamproc.storage.objects import ObjectRef, ObjectStore

MB = 1 << 20


def reference(data: bytes, limit: int, skip: int = 0) -> list[ManifestLine]:
    """What the lines of ``data`` are, read whole (the obvious way)."""
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()  # the empty "line" after a final "\n" is no line
    lines = []
    for number, part in enumerate(parts, 1):
        part = part[:-1] if part.endswith(b"\r") else part
        if number > skip:
            lines.append(ManifestLine(number, part if len(part) <= limit else None))
    return lines


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def lines_of(chunks: list[bytes], limit: int, skip: int = 0) -> list[ManifestLine]:
    return list(split_lines(iter(chunks), limit, threading.Event(), skip))


@settings(max_examples=400, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"xyz" * 3, b""]),
                     max_size=30).map(b"".join),
       cuts=st.lists(st.integers(0, 200), max_size=8), limit=st.integers(0, 12),
       skip=st.integers(0, 6))
def test_any_chunking_gives_the_lines_read_whole(data: bytes, cuts: list[int], limit: int,
                                                 skip: int) -> None:
    assert lines_of(chunked(data, cuts), limit, skip) == reference(data, limit, skip)


def test_odd_inputs() -> None:
    data = b"first\r\n\nlonger than ten bytes\n\r\nexactly10!\r\nlast"
    expected = [ManifestLine(1, b"first"), ManifestLine(2, b""), ManifestLine(3, None),
                ManifestLine(4, b""), ManifestLine(5, b"exactly10!"), ManifestLine(6, b"last")]
    for size in (1, 2, 3, 7, len(data)):  # "\r" and "\n" split across chunks too
        pieces = [data[i:i + size] for i in range(0, len(data), size)]
        assert lines_of(pieces, 10) == expected
        assert lines_of(pieces, 10, skip=4) == expected[4:]
    assert lines_of([b"a\nb\n"], 10) == [ManifestLine(1, b"a"), ManifestLine(2, b"b")]
    assert lines_of([b"a\n", b"\n"], 10) == [ManifestLine(1, b"a"), ManifestLine(2, b"")]
    assert lines_of([], 10) == [] and lines_of([b""], 10) == []
    assert lines_of([b"x" * 11], 10) == [ManifestLine(1, None)]  # over the limit, no "\n"
    assert lines_of([b"a\nb"], 10, skip=5) == []


def test_stop_ends_the_lines_promptly() -> None:
    stop = threading.Event()
    lines = split_lines(iter([b"1\n2\n3\n"]), 10, stop)
    assert next(lines) == ManifestLine(1, b"1")
    stop.set()
    assert list(lines) == []

    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * MB  # one line that never ends

    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert list(split_lines(endless(), 100, stop)) == []
    assert time.monotonic() - started < 5


class Body:
    """An S3 body serving ``size`` bytes of one line (one shared chunk), then ``tail``."""

    def __init__(self, size: int, tail: bytes = b"\nend\n", fail_at: int | None = None) -> None:
        self.left, self.tail, self.fail_at = size, tail, fail_at
        self.chunk, self.reads, self.closed = b"y" * MB, 0, False

    def read(self, amount: int) -> bytes:
        self.reads += 1
        if self.fail_at is not None and self.reads >= self.fail_at:
            raise ConnectionResetError("peer went away")
        if self.left <= 0:
            tail, self.tail = self.tail, b""
            return tail
        self.left -= len(self.chunk)
        return self.chunk

    def close(self) -> None:
        self.closed = True


def s3_store(body: Body) -> ObjectStore:
    class Client:
        def get_object(self, **_: str) -> dict[str, Body]:
            return {"Body": body}

    return ObjectStore(ObjectsConfig(s3_endpoint="http://s3.invalid"),
                       client_factory=lambda cfg: Client())


def peak_of(lines: Iterator[ManifestLine]) -> tuple[list[ManifestLine], int]:
    tracemalloc.start()
    try:
        got = list(lines)
        return got, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_gigabyte_line_from_s3_is_never_held() -> None:
    body = Body(1 << 30)
    got, peak = peak_of(s3_store(body).lines(ObjectRef("bkt", "m.jsonl"), MB, threading.Event()))
    assert got == [ManifestLine(1, None), ManifestLine(2, b"end")]
    assert peak < 4 * MB, peak  # the limit and a chunk or two, not the gigabyte
    assert body.closed


def test_a_gigabyte_line_from_the_local_root_is_never_held(tmp_path: Path) -> None:
    (tmp_path / "bkt").mkdir()
    with open(tmp_path / "bkt" / "m.jsonl", "wb") as file:  # sparse: a GB of NULs, then lines
        file.write(b'{"a": 1}\n')
        file.seek(1 << 30)
        file.write(b"\nend")
    store = ObjectStore(ObjectsConfig(local_root=tmp_path))
    got, peak = peak_of(store.lines(ObjectRef("bkt", "m.jsonl"), MB, threading.Event()))
    assert got == [ManifestLine(1, b'{"a": 1}'), ManifestLine(2, None), ManifestLine(3, b"end")]
    assert peak < 4 * MB, peak


def test_a_long_manifest_streams_and_resumes(tmp_path: Path) -> None:
    (tmp_path / "bkt").mkdir()
    (tmp_path / "bkt" / "m.jsonl").write_bytes(
        b"".join(b'{"source-ref": "s3://b/%d.jpg"}\n' % n for n in range(1, 100_001)))
    store = ObjectStore(ObjectsConfig(local_root=tmp_path))
    ref = ObjectRef("bkt", "m.jsonl")
    got = list(store.lines(ref, 100, threading.Event()))
    assert [line.number for line in got] == list(range(1, 100_001))
    assert got[-1].data == b'{"source-ref": "s3://b/100000.jpg"}'
    rest = list(store.lines(ref, 100, threading.Event(), skip=99_998))
    assert [line.number for line in rest] == [99_999, 100_000]
    assert rest[0].data == b'{"source-ref": "s3://b/99999.jpg"}'


def test_missing_and_refused_objects_fail_at_the_call(tmp_path: Path) -> None:
    (tmp_path / "bkt").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "m.jsonl").write_bytes(b"x\n")
    store = ObjectStore(ObjectsConfig(local_root=tmp_path))
    for name in ("absent.jsonl", "../other/m.jsonl", "a//b"):
        with pytest.raises(InvalidS3ObjectException, match="Unable to get object metadata"):
            store.lines(ObjectRef("bkt", name), 10, threading.Event())
    limited = ObjectStore(ObjectsConfig(local_root=tmp_path, buckets=["bkt"]))
    with pytest.raises(InvalidS3ObjectException, match=r"other .*objects\.buckets"):
        limited.lines(ObjectRef("other", "m.jsonl"), 10, threading.Event())
    assert list(store.lines(ObjectRef("other", "m.jsonl"), 10, threading.Event())) == [
        ManifestLine(1, b"x")]


def test_a_body_that_fails_midway_is_an_invalid_object_and_is_closed() -> None:
    body = Body(10 * MB, fail_at=3)
    lines = s3_store(body).lines(ObjectRef("bkt", "m.jsonl"), MB, threading.Event())
    with pytest.raises(InvalidS3ObjectException, match="Reading s3://bkt/m.jsonl failed: "
                                                       "ConnectionResetError"):
        list(lines)
    assert body.closed


def test_a_body_is_closed_when_the_reader_stops_early() -> None:
    body = Body(0, tail=b"1\n2\n3\n")
    lines = s3_store(body).lines(ObjectRef("bkt", "m.jsonl"), 10, threading.Event())
    assert next(lines) == ManifestLine(1, b"1")
    lines.close()
    assert body.closed
