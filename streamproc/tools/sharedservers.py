"""Test and demo harness: servers many clients share (GStreamer's RTSP server, HLS over HTTP).

See :mod:`streamproc.tools.mediaservers` for what feeds them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from streamproc.tools.broker import free_port, wait_for_port
from streamproc.tools.mediaservers import (
    SYSTEM_PYTHON,
    Feed,
    ProcessServer,
    camera_command,
    piped,
    stop_group,
)

_GST_SERVER = Path(__file__).with_name("gst_rtsp.py")
_FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


class RtspServer(ProcessServer):
    """GStreamer's RTSP server; ``auth`` is none, basic or digest."""

    def __init__(self, feed: Feed, auth: str = "none", user: str = "cam",
                 password: str = "secret", port: int = 0, transports: str = "both",
                 clock_offset_s: float = 0.0) -> None:
        super().__init__()
        self.feed = feed
        self.transports = transports  # what the server offers: tcp, udp or both
        # A camera whose clock is off: the server runs under libfaketime (Debian's faketime).
        self.clock_offset_s = clock_offset_s
        self.auth, self.user, self.password = auth, user, password
        # A port chosen here was only free a moment ago: another server (often one
        # built beside this one) may take it first, so start() picks another then.
        self._port_given = bool(port)
        self.port = port or self.port

    @property
    def url(self) -> str:
        """``rtsp://127.0.0.1:PORT/stream``."""
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def login_url(self, user: str, password: str) -> str:
        """The URL with credentials in it."""
        return self.url.replace("rtsp://", f"rtsp://{user}:{password}@")

    def start(self) -> None:
        """Start the GStreamer process and wait for its ``ready`` line."""
        for _ in range(4):
            if self._start_once():
                return
            if self._port_given:
                break
            self.port = free_port()
        msg = "the GStreamer RTSP server did not start (is python3-gi installed?)"
        raise RuntimeError(msg)

    def _start_once(self) -> bool:
        camera = camera_command(self.feed, "-", "matroska")
        env = None
        if self.clock_offset_s:
            env = {**os.environ, "FAKETIME": f"{self.clock_offset_s:+.3f}s",
                   "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1",
                   "LD_PRELOAD": _FAKETIME_LIB}
        proc = self._spawn([SYSTEM_PYTHON, str(_GST_SERVER), "--port", str(self.port),
                            "--codec", self.feed.codec, "--auth", self.auth, "--user",
                            self.user, "--password", self.password, "--transports",
                            self.transports, "--", *camera],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = proc.stdout.readline() if proc.stdout else ""
        if line.startswith("ready"):
            return True
        self.stop()
        return False


class HlsServer(ProcessServer):
    """ffmpeg writing a live HLS playlist to a folder, served by ``python3 -m http.server``."""

    def __init__(self, feed: Feed, folder: Path | None = None, port: int = 0) -> None:
        super().__init__()
        self.feed = feed
        self.port = port or self.port
        self.folder = folder or Path(tempfile.mkdtemp(prefix="hls-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The live playlist."""
        return f"http://127.0.0.1:{self.port}/cam.m3u8"

    def start(self) -> None:
        """Start writing segments (once) and serving them; wait for the first segment."""
        if self._writer is None or self._writer.poll() is not None:
            pipeline = piped(self.feed, ["-f", "hls", "-hls_time", "1", "-hls_list_size", "4",
                                          "-hls_flags", "delete_segments+omit_endlist",
                                          str(self.folder / "cam.m3u8")])
            self._writer = self._spawn(["bash", "-c", pipeline], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.serve()
        deadline = time.monotonic() + 15
        while not (self.folder / "cam.m3u8").is_file():
            if time.monotonic() > deadline:
                self.stop()
                msg = "ffmpeg wrote no HLS playlist"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def serve(self) -> None:
        """Start the HTTP server process (again, after :meth:`halt_http`)."""
        self._http = self._spawn([SYSTEM_PYTHON, "-m", "http.server", "--bind", "127.0.0.1",
                                  "--directory", str(self.folder), str(self.port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port("127.0.0.1", self.port, 10):
            msg = "the HLS HTTP server did not start"
            raise RuntimeError(msg)

    def halt_http(self) -> None:
        """Stop serving (the playlist keeps being written): the server is gone."""
        stop_group(self._http)
        self._procs.remove(self._http)
