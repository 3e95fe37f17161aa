"""Protocols the PyAV wheel lacks (SRT: it ships no libsrt), read through the system ffmpeg.

The relay runs ``ffmpeg -f concat -i pipe:0 -map 0:v:0 -c copy -f nut pipe:1`` and PyAV
reads the pipe: packets are copied, not re-encoded, so the relay adds no decoding work, and
NUT frames each packet, so PyAV needs no parser that waits for the next frame (MPEG-TS would
add one frame interval).

The URL never appears on ffmpeg's command line, which every local user can read
(``ps``, ``/proc/PID/cmdline``): SRT passphrases, stream keys and passwords ride in it. It
goes to ffmpeg on its standard input instead, as a one-entry ffconcat script, with the
source's options as ``option`` lines; ``protocol_whitelist`` keeps that entry to the
source's own protocol. Its stderr goes to a temporary file and is read only to classify a
failure; it is never logged or shown, because ffmpeg prints URLs with their credentials.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
from typing import IO

from streamproc.dataplane.guard.protocols import LIVE_EDGE, SourceError

_FATAL_SIGNS = {"matches no streams": "has no video stream",
                "Protocol not found": "protocol not supported by ffmpeg either",
                "Invalid data found": "Invalid data found when processing input"}


def relay_available(scheme: str) -> bool:
    """True if a system ffmpeg can read ``scheme`` (``ffmpeg -protocols``, input side)."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        return False
    out = subprocess.run([binary, "-hide_banner", "-protocols"], capture_output=True,
                         text=True, timeout=10, check=False).stdout
    inputs = out.split("Input:", 1)[-1].split("Output:", 1)[0].split()
    return scheme in inputs


def _quoted(value: str) -> str:
    """``value`` as one ffconcat token: in single quotes, each quote closed and escaped."""
    if any(ord(char) < 32 for char in value):  # a line break would start a new directive
        msg = "control characters in the URL or its options"
        raise SourceError(msg, fatal=True)
    return "'" + value.replace("'", "'\\''") + "'"


def concat_script(url: str, options: dict[str, str]) -> str:
    """The ffconcat script that names ``url`` with its open ``options``."""
    lines = ["ffconcat version 1.0", f"file {_quoted(url)}"]
    lines += [f"option {key} {_quoted(value)}" for key, value in options.items()
              if key != "protocol_whitelist"]  # inherited from the concat input
    return "\n".join(lines) + "\n"


class FfmpegRelay:
    """One ffmpeg process copying a source's video to a pipe; a file object for PyAV."""

    def __init__(self, url: str, options: dict[str, str], read_timeout: float) -> None:
        self._url = url
        self._options = options
        self._read_timeout = read_timeout
        self._proc: subprocess.Popen | None = None
        self._errors: IO[bytes] | None = None

    def __enter__(self) -> FfmpegRelay:
        # The probing limits also bound the concat demuxer's own look at the stream.
        flags = [arg for key, value in self._options.items() if key in LIVE_EDGE
                 for arg in (f"-{key}", value)]
        scheme = self._url.split(":", 1)[0].lower()
        allowed = self._options.get("protocol_whitelist", scheme)
        self._errors = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *flags,
             "-protocol_whitelist", f"pipe,{allowed}", "-f", "concat", "-safe", "0",
             "-i", "pipe:0", "-map", "0:v:0", "-c", "copy", "-f", "nut",
             "-flush_packets", "1", "pipe:1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
            start_new_session=True)
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(concat_script(self._url, self._options).encode())
            self._proc.stdin.close()
        except OSError:
            pass  # ffmpeg ended already; failure() says why
        return self

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; raises TimeoutError after ``read_timeout`` without data."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self._read_timeout)
        if not ready:
            msg = "no data from the relay"
            raise TimeoutError(msg)
        return os.read(fd, size)

    def failure(self, url_shown: str) -> SourceError | None:
        """Why the relay ended, if it did: fatal for a bad source, else retriable."""
        if self._proc is None or self._errors is None:
            return None
        try:
            code = self._proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return None
        self._errors.seek(0)
        text = self._errors.read(65536).decode(errors="replace")
        for sign, reason in _FATAL_SIGNS.items():
            if sign in text:
                return SourceError(f"Cannot open {url_shown}: {reason}", fatal=True)
        lowered = text.lower()
        if "connection" in lowered and any(w in lowered for w in ("fail", "refused", "timed")):
            return SourceError(f"{url_shown}: connection failed", fatal=False)
        return SourceError(f"{url_shown}: relay ended (ffmpeg exit code {code})", fatal=False)

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._errors is not None:
            self._errors.close()
