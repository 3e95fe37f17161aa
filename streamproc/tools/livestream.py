"""Test and demo harness: a live stream served by a real ffmpeg process, looping a clip.

ffmpeg listens as an MPEG-TS over TCP server (``tcp://host:port``) and paces the clip in
real time (``-re``); when a client disconnects it exits, and the supervisor starts it again,
like a camera that accepts a new connection. A port picked here is only known to be free
until ffmpeg binds it: if another process takes it first, ffmpeg exits at once and the
stream starts again on another port (a port the caller chose is kept).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from streamproc.lifecycle import Service
from streamproc.tools.broker import free_port, owns_port


class LoopingStream(Service):
    """Serve ``clip`` forever at ``tcp://host:port`` until stopped."""

    def __init__(self, clip: Path, host: str = "127.0.0.1", port: int = 0,
                 speed: float = 1.0) -> None:
        super().__init__(f"stream-{Path(clip).stem}")
        self.clip = Path(clip)
        self.host = host
        self._pick_port = not port
        self.port = port or free_port(host)
        self.speed = speed  # 2.0 serves a 15 fps clip as a 30 fps camera
        self._proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"tcp://{self.host}:{self.port}"

    def _on_start(self) -> None:
        if shutil.which("ffmpeg") is None:
            msg = "ffmpeg is not installed (apt-get install ffmpeg)"
            raise RuntimeError(msg)
        if not self.clip.is_file():
            msg = f"clip not found: {self.clip}"
            raise FileNotFoundError(msg)
        if self._pick_port:
            self._bind()

    def _spawn(self) -> subprocess.Popen:
        # Own session, so a terminal's Ctrl-C reaches only us; stop() ends it.
        self.starts += 1
        return subprocess.Popen(self._command(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def _bind(self, attempts: int = 5, timeout: float = 5.0) -> None:
        """Start ffmpeg on a port it really listens on before ``url`` is handed out."""
        for _ in range(attempts):
            proc = self._spawn()
            if owns_port(proc, self.port, timeout):
                self._proc = proc
                return
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self.port = free_port(self.host)  # taken in the meantime: another one
        msg = f"ffmpeg could not listen on {self.host} after {attempts} ports"
        raise RuntimeError(msg)

    def _command(self) -> list[str]:
        pace = ["-re"] if self.speed == 1.0 else ["-readrate", str(self.speed)]
        return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *pace,
                "-stream_loop", "-1", "-i", str(self.clip), "-an", "-c:v", "copy",
                "-f", "mpegts", f"tcp://{self.host}:{self.port}?listen=1"]

    def _run(self) -> None:
        while not self.stopping:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._spawn()
            while self._proc.poll() is None:
                if self.wait(0.1):
                    break
            self._kill()
            self.wait(0.2)

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def _on_stop(self) -> None:
        self._kill()
