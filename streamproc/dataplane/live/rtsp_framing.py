r"""What an RTSP server sends, read as FFmpeg's RTSP client reads it, to refuse redirects.

FFmpeg follows a ``3xx`` answer to OPTIONS, DESCRIBE or SETUP by itself (rtsp.c,
``ff_rtsp_connect``: ``goto redirect``) over a TCP connection of its own, which no allowlist
sees. :class:`ServerFraming` reads the server-to-client bytes of the control connection the
way ``ff_rtsp_read_reply`` does while connecting, and holds each message-head line back
until it is judged, so FFmpeg never sees a 3xx status line:

* a ``$`` where a line starts (no byte but ``\r`` kept yet) begins an interleaved frame:
  channel byte, 2-byte big-endian length, payload (passed on unread);
* lines end at ``\n``; every ``\r`` is dropped; a NUL ends the line (a C string); an
  empty line ends the head, then ``Content-Length`` bytes of body follow (``strtol`` as an
  ``int``, the last header wins);
* the first line's second word, if the first starts ``RTSP/``, is the status (``atoi`` of
  at most 1023 characters, as glibc computes it: ``4294967598`` is 302).

A ``Transport`` header gets ``;source=ADDRESS`` (the checked camera address) at its end:
FFmpeg sends RTP/RTCP over UDP to the host it connected to (the relay's loopback address)
or to the last ``source=``, and without this a camera could point those datagrams at any
address. A header with several transports (``,``) or none (no ``/``), or a line over
FFmpeg's 4 KiB buffer, is refused as malformed: it could be read otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LINE_LIMIT = 4096  # FFmpeg's line buffer (4095 characters kept), a CR beside them
WORD_LIMIT = 1023  # FFmpeg's buf1: the status word is cut there
_SPACES = " \t"
_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")
_LONG = 2**63  # strtol clamps to a 64-bit long
SHOWN_LIMIT = 200  # characters of a server's reason or Location quoted in a message


class MalformedReply(Exception):
    """The server sent something FFmpeg could read otherwise than this module does."""


@dataclass
class Redirect:
    """A 3xx answer: its status line and, once its head is read, where it points."""

    status: int
    reason: str
    location: str = ""
    complete: bool = False


def c_int(text: str) -> int:
    """``(int)strtol(text, NULL, 10)`` on a 64-bit glibc (``atoi`` is the same)."""
    match = _NUMBER.match(text)
    sign, digits = match.groups() if match else ("", "")
    value = int(digits) if digits else 0
    value = -value if sign == "-" else value
    value = max(-_LONG, min(_LONG - 1, value))
    return (value + 2**31) % 2**32 - 2**31


def printable(text: str) -> str:
    """A server's text as a message may quote it: printable ASCII, at most 200 characters."""
    kept = "".join(ch if " " <= ch <= "~" else "?" for ch in text.strip())
    return kept[:SHOWN_LIMIT]


class ServerFraming:
    """Splits server bytes into what may go on to FFmpeg; see the module docstring."""

    def __init__(self, source: str) -> None:
        self._source = source  # the checked camera address, for Transport
        self._raw = bytearray()  # the head line being read, as received
        self._kept = 0  # its characters FFmpeg keeps (all but CR)
        self._frame_header = -1  # bytes of a frame header still due (-1: none)
        self._frame_len = bytearray()
        self._skip = 0  # payload or body bytes to pass on unread
        self._line_no = 0
        self._content_length = 0
        self.redirect: Redirect | None = None

    def feed(self, data: bytes) -> bytes:
        """The bytes of ``data`` that may go on now; raises :class:`MalformedReply`.

        Once :attr:`redirect` is set nothing more is passed on (the connection is cut); the
        head is still read, for its ``Location``, up to its end.
        """
        out = bytearray()
        at = 0
        while at < len(data) and not (self.redirect and self.redirect.complete):
            sink = out if self.redirect is None else bytearray()  # after a 3xx: nothing
            if self._skip:
                take = min(self._skip, len(data) - at)
                sink += data[at:at + take]
                self._skip -= take
                at += take
            elif self._frame_header >= 0:
                at = self._frame_byte(data, at, sink)
            else:
                self._line_byte(data[at], sink)
                at += 1
        return bytes(out)

    def _frame_byte(self, data: bytes, at: int, out: bytearray) -> int:
        out.append(data[at])
        if self._frame_header > 0:
            self._frame_len.append(data[at])
        self._frame_header -= 1
        if self._frame_header == 0:
            self._skip = int.from_bytes(self._frame_len[1:3], "big")
            self._frame_header = -1
        return at + 1

    def _line_byte(self, byte: int, out: bytearray) -> None:
        if byte == ord("$") and self._kept == 0:
            out += self._raw + b"$"
            self._raw.clear()
            self._frame_header, self._frame_len = 3, bytearray()
            return
        self._raw.append(byte)
        if byte == ord("\n"):
            self._end_line(out)
            return
        if byte != ord("\r"):
            self._kept += 1
        if len(self._raw) > LINE_LIMIT:
            msg = "a line of its RTSP reply is longer than 4 KiB"
            raise MalformedReply(msg)

    def _end_line(self, out: bytearray) -> None:
        raw = bytes(self._raw)
        self._raw.clear()
        self._kept = 0
        text = raw.replace(b"\r", b"").rstrip(b"\n").split(b"\0", 1)[0].decode("latin-1")
        if not text:
            self._end_head()
        elif self._line_no == 0:
            self._line_no = 1
            self._status_line(text)
        else:
            self._line_no += 1
            raw = self._header(text, raw)
        if self.redirect is None:  # a 3xx status line is never passed on
            out += raw

    def _end_head(self) -> None:
        self._line_no = 0
        if self.redirect is not None:
            self.redirect.complete = True
        self._skip = max(self._content_length, 0)
        self._content_length = 0

    def _status_line(self, text: str) -> None:
        words = text.lstrip(_SPACES).replace("\t", " ").split(" ", 1)
        if not words[0][:WORD_LIMIT].startswith("RTSP/") or len(words) < 2:
            return  # a request from the server (FFmpeg answers it), or no status
        rest = words[1].lstrip(_SPACES)
        status_word = re.split(r"[ \t]", rest, maxsplit=1)[0]
        status = c_int(status_word[:WORD_LIMIT])
        if 300 <= status < 400:
            self.redirect = Redirect(status, printable(rest[len(status_word):]))

    def _header(self, text: str, raw: bytes) -> bytes:
        name = text[:16].lower()
        if name.startswith("content-length:"):
            self._content_length = c_int(text[15:])
        elif name.startswith("location:") and self.redirect is not None:
            self.redirect.location = text[9:].lstrip(_SPACES + "\r\n")
        elif name.startswith("transport:"):
            value = text[10:]
            if "," in value or "/" not in value:
                msg = "its Transport header names several transports, or none"
                raise MalformedReply(msg)
            return f"{text};source={self._source}\r\n".encode("latin-1")
        return raw
