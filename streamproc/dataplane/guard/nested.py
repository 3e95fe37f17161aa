"""Every URL FFmpeg opens for one source, judged before it is opened (PyAV's ``io_open``).

FFmpeg opens more than the URL it is given: an HLS playlist makes it open segments, variant
playlists and keys, wherever the playlist says (other hosts, other files on disk). PyAV
hands each of those opens, the first one too, to :class:`GuardedOpener`, which judges the
URL and opens it itself:

* a local source may open local files only, each under a media root (``judge`` is the
  inputs allowlist: realpath, symlinks and ``..`` resolved); never a network URL;
* an HTTP(S) source may open HTTP(S) URLs only, each judged by the allowlist and fetched
  from the address it checked (:mod:`streamproc.dataplane.guard.httpget`: no redirects, the
  checked ``Host``); never a local file.

A refusal fails the source (``Input refused by inputs.RULE: ...``, fatal). Encrypted HLS
(``crypto+`` URLs) and ``data:`` URIs are refused: FFmpeg would open those itself.
The first open's failures are FFmpeg's usual errors (``classify`` sorts them); a later one
that the server answers with an error status yields an empty body, so FFmpeg skips that
segment as it would have, and a network error ends the read (retried by reconnecting).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit

import av

from streamproc.dataplane.guard.allowlist import CheckedInput, InputRefused, InputUnresolved
from streamproc.dataplane.guard.httpget import HttpBody, HttpRedirect, HttpTarget
from streamproc.dataplane.guard.protocols import SourceError
from streamproc.redaction import redact

logger = logging.getLogger(__name__)
Judge = Callable[[str], CheckedInput]
_WRITE = 2  # AVIO_FLAG_WRITE
HLS_TYPES = {"application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl",
             "audio/x-mpegurl"}


class OpenRefused(SourceError):
    """A URL FFmpeg wanted to open broke a rule (always fatal: the source fails)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, fatal=True)


class _Empty:
    """A body with nothing in it: a skipped segment, or any open after the source failed."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        """Nothing to close."""


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return "(unparseable)"


def _host_header(options: dict[str, str], fallback: str) -> str:
    for line in options.get("headers", "").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "host" and value.strip():
            return value.strip()
    return fallback


class GuardedOpener:
    """PyAV's ``io_open`` for one source: judges, then opens, every URL FFmpeg asks for.

    ``main`` is the checked input (its URL and options: the ``Host`` header); ``judge``
    checks any other URL, None refuses every other URL. ``refused`` holds the first
    refusal, so that a read that ends quietly still fails with it.
    """

    def __init__(self, main: CheckedInput, judge: Judge | None, url_shown: str,
                 open_s: float, read_s: float, *, max_opens: int | None = None,
                 reopen_main: bool = True) -> None:
        self._main = main
        # A file (upload, stored video) has a known end: its opens are capped and it may not
        # open itself again, so a playlist naming itself cannot nest until fds run out. A live
        # source keeps both (segments for days; HLS reloads its own playlist).
        self._max_opens = max_opens
        self._reopen_main = reopen_main
        self._judge = judge
        self._shown = url_shown
        self._open_s, self._read_s = open_s, read_s
        self._local = "://" not in main.url or main.url.startswith("file:")
        self._origin = urlsplit(main.url)[:2] if not self._local else None
        self._opens = 0
        self._failed = False
        self.refused: OpenRefused | None = None
        self.content_type = ""  # of the first HTTP response (an HLS playlist's type)

    def __call__(self, url: str, flags: int,
                 options: dict[str, Any]) -> IO[bytes] | HttpBody | _Empty:
        """A file object for ``url`` (PyAV's io_open signature); raises to refuse."""
        self._opens += 1
        if self._failed:
            return _Empty()  # the error already raised ends the read; nothing more is fetched
        try:
            if flags & _WRITE:
                self._refuse(url, "FFmpeg asked to write")
            if self._max_opens is not None and self._opens > self._max_opens:
                self._refuse(url, f"it opens more than {self._max_opens} files", None)
            if self._opens > 1 and not self._reopen_main and self._names_main(url):
                self._refuse(url, "it names itself", None)
            return self._local_file(url) if self._local else self._http(url)
        except Exception:
            self._failed = self._opens > 1
            raise

    def _refuse(self, url: str, why: str, rule: str | None = "schemes") -> NoReturn:
        """Fail the source: ``rule`` names the inputs.* setting (None: not a setting)."""
        shown = redact(url)
        named = "" if url == self._main.url else f"{shown}: "
        if rule is None:
            msg = f"Cannot open {self._shown}: {named}{why}"
        else:
            nested = f"{self._shown} names {named}" if named else ""
            msg = f"Input refused by inputs.{rule}: {nested}{why}"
        self.refused = OpenRefused(msg)
        raise self.refused

    def _names_main(self, url: str) -> bool:
        if url == self._main.url:
            return True
        if not self._local:
            return False
        path = url[len("file:"):] if url.startswith("file:") else url
        try:
            return os.path.realpath(path) == os.path.realpath(self._main.url)
        except (OSError, ValueError):
            return False

    def _judged(self, url: str) -> CheckedInput:
        if url == self._main.url:
            return self._main
        if self._judge is None:
            self._refuse(url, "this source may open nothing but its own URL")
        try:
            return self._judge(url)
        except InputRefused as exc:
            self._refuse(url, exc.message, exc.rule)
        except InputUnresolved:
            self._refuse(url, "its host does not resolve", "hosts")

    def _local_file(self, url: str) -> IO[bytes]:
        if _scheme(url) not in ("", "file"):
            self._refuse(url, "a local source may open local files only", "media_roots")
        real = self._judged(url).url
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)  # checked real path: no new link
        return os.fdopen(os.open(real, flags), "rb")

    def _http(self, url: str) -> HttpBody | _Empty:
        scheme = _scheme(url)
        if scheme not in ("http", "https"):
            what = ("encrypted HLS is not supported" if scheme.startswith("crypto")
                    else "an HTTP source may open HTTP(S) URLs only")
            self._refuse(url, what)
        parts = urlsplit(url)
        if parts[:2] == self._origin:  # the checked address again (a relative reference)
            checked = CheckedInput(url, self._main.options)
        else:
            checked = self._judged(url)
        fallback = parts.netloc.rpartition("@")[2]
        target = HttpTarget(checked.url, _host_header(checked.options, fallback))
        try:
            body = HttpBody(target, self._open_s, self._read_s)
        except HttpRedirect as exc:
            self._refuse(url, f"redirected ({exc}); redirects are not followed, name the "
                         "final URL", None)
        except av.error.FFmpegError as exc:
            if self._opens == 1:
                raise
            logger.info("%s: %s answered %s; skipped", self._shown, redact(url),
                        exc.strerror)
            return _Empty()
        if self._opens == 1:
            self.content_type = body.content_type
        return body
