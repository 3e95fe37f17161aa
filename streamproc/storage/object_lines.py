r"""An object read as lines, streamed: memory stays bounded whatever the object's size.

A manifest of 100,000 lines or one line of a gigabyte is read a chunk at a time; a line is
held only while it fits ``max_line_bytes`` (plus a ``\r`` that may end it), so the most held
at once is about ``max_line_bytes`` and two chunks (the one read, the one being split).
Lines end at ``\n`` (``\r\n`` too); a last line without ``\n`` counts, the empty "line"
after a final ``\n`` does not.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Protocol

from streamproc.errors import InvalidS3ObjectException


@dataclass(frozen=True)
class ManifestLine:
    r"""One line of an object, without its ``\n`` or ``\r\n``."""

    number: int  # 1-based, counting skipped lines too
    data: bytes | None  # None: the line was longer than max_line_bytes (its rest skipped)


class Readable(Protocol):
    """What lines are read from: an open file or an S3 ``get_object`` body."""

    def read(self, amount: int) -> bytes:
        """Up to ``amount`` bytes; ``b""`` at the end."""

    def close(self) -> None:
        """Releases the file or connection."""


def read_chunks(source: Readable, chunk: int, shown: str) -> Generator[bytes, None, None]:
    """``source`` in chunks of up to ``chunk`` bytes, closed at the end or when dropped.

    A failure part-way (a connection lost, a disk error) is InvalidS3ObjectException.
    """
    try:
        while True:
            try:
                data = source.read(chunk)
            except Exception as exc:  # whatever the body raises: the object cannot be read
                raise InvalidS3ObjectException(
                    f"Reading s3://{shown} failed: {type(exc).__name__}") from None
            if not data:
                return
            yield data
    finally:
        source.close()


class _Line:
    """The line being read: its bytes while they fit, or only the fact that they did not."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = bytearray()
        self.over = False

    def add(self, chunk: bytes, start: int, end: int) -> None:
        r"""Keep ``chunk[start:end]`` as long as the line still fits (a ``\r`` may follow)."""
        if self.over:
            return
        if len(self.held) + end - start > self.limit + 1:
            self.held = bytearray()
            self.over = True
        else:
            self.held += memoryview(chunk)[start:end]  # no copy of the chunk's slice

    def take(self) -> bytes | None:
        """The line's bytes (None when too long), and a fresh start for the next line."""
        data = None if self.over else bytes(self.held)
        self.held, self.over = bytearray(), False
        if data is not None and data.endswith(b"\r"):
            data = data[:-1]
        return data if data is not None and len(data) <= self.limit else None


def split_lines(chunks: Iterable[bytes], max_line_bytes: int, stop: threading.Event,
                skip: int = 0) -> Generator[ManifestLine, None, None]:
    """The lines in ``chunks``, after the first ``skip`` (read past, never held).

    Ends early, without an error, once ``stop`` is set: the caller tells a stop from the end
    of the object by ``stop`` itself. ``chunks`` is closed when this ends or is closed.
    """
    number, line = 0, _Line(max_line_bytes)
    try:
        for chunk in chunks:
            start = 0
            while (end := chunk.find(b"\n", start)) >= 0:
                if stop.is_set():
                    return
                number += 1
                if number > skip:
                    line.add(chunk, start, end)
                    yield ManifestLine(number, line.take())
                start = end + 1
            if stop.is_set():
                return
            if number >= skip:  # the line that goes on is not skipped: keep what fits
                line.add(chunk, start, len(chunk))
        if number >= skip and (line.over or line.held):  # a last line without "\n"
            yield ManifestLine(number + 1, line.take())
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
