"""Protocols the PyAV wheel lacks (SRT: it ships no libsrt), read through the system ffmpeg.

The relay runs ``ffmpeg -i URL -map 0:v:0 -c copy -f nut pipe:1`` and PyAV reads the pipe:
packets are copied, not re-encoded, so the relay adds no decoding work, and NUT frames each
packet, so PyAV needs no parser that waits for the next frame (MPEG-TS would add one frame
interval). Its stderr goes to a temporary file and is read only to classify a failure; it is
never logged or shown, because ffmpeg prints URLs with their credentials.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
from typing import IO

from streamproc.dataplane.protocols import SourceError

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


class FfmpegRelay:
    """One ffmpeg process copying a source's video to a pipe; a file object for PyAV."""

    def __init__(self, url: str, options: dict[str, str], read_timeout: float) -> None:
        self._url = url
        self._options = options
        self._read_timeout = read_timeout
        self._proc: subprocess.Popen | None = None
        self._errors: IO[bytes] | None = None

    def __enter__(self) -> FfmpegRelay:
        flags = [arg for key, value in self._options.items() for arg in (f"-{key}", value)]
        self._errors = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *flags,
             "-i", self._url, "-map", "0:v:0", "-c", "copy", "-f", "nut",
             "-flush_packets", "1", "pipe:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._errors,
            start_new_session=True)
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
