"""Test and demo harness: real media servers (also for benchmarks), and what feeds them.

This module has the one-client servers (RTMP, SRT, TCP); RTSP and HLS, which many clients
share, are in :mod:`streamproc.tools.sharedservers`. Every server is fed by the scripted
camera (:mod:`streamproc.tools.camera`), so each protocol can carry H.264 or H.265, a
start-up burst or a stall, and benchmarks know when each frame left. The servers
themselves are what a deployment meets:

* RTSP: GStreamer's gst-rtsp-server (:mod:`streamproc.tools.gst_rtsp`, Debian's system
  python3 with ``python3-gi``), basic or digest authentication, RTP over TCP or UDP, RTCP
  sender reports;
* RTMP: ``ffmpeg -listen 1`` (FLV, so H.264 only with Debian 12's ffmpeg 5.1);
* SRT: ``ffmpeg`` in SRT listener mode (MPEG-TS);
* HLS: ``ffmpeg -f hls`` writing 1 s segments to a folder, served by ``python3 -m
  http.server``;
* TCP: the camera itself listening (MPEG-TS, one client at a time).

The one-client servers end when their client leaves, so a supervisor starts them again,
like a camera accepting the next connection.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from streamproc.lifecycle import Service
from streamproc.tools.broker import free_port
from streamproc.tools.camera import Script

SYSTEM_PYTHON = os.environ.get("STREAMPROC_SYSTEM_PYTHON", "/usr/bin/python3")
_QUIET = ["-hide_banner", "-loglevel", "error", "-nostdin"]
# The camera hands the servers NUT: framed packets, so no parser waits for the next frame.
_FROM_PIPE = [*_QUIET, "-probesize", "32768", "-analyzeduration", "100000", "-f", "nut",
              "-i", "pipe:0", "-c", "copy"]


@dataclass
class Feed:
    """What a server serves: a clip, its codec and the camera's script."""

    clip: Path
    codec: str = "h264"
    script: Script = Script()
    log: Path | None = None  # the camera appends "stream_time wall_time" per packet sent


def camera_command(feed: Feed, out: str, fmt: str) -> list[str]:
    """The scripted camera as a command line."""
    script = feed.script
    command = [sys.executable, "-m", "streamproc.tools.camera", str(feed.clip), out,
               "--format", fmt, "--speed", str(script.speed), "--burst", str(script.burst_s)]
    if script.stall_at_s is not None:
        command += ["--stall-at", str(script.stall_at_s), "--stall", str(script.stall_s)]
    if feed.log is not None:
        command += ["--log", str(feed.log)]
    return command


def stop_group(proc: subprocess.Popen | None, grace: float = 2.0) -> None:
    """End a process and everything it started (it leads its own session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


class SupervisedServer(Service):
    """A one-client server pipeline (camera | ffmpeg), restarted whenever it ends."""

    scheme = "tcp"

    def __init__(self, feed: Feed, port: int = 0) -> None:
        super().__init__(f"{self.scheme}-server")
        self.feed = feed
        self.port = port or free_port()
        self.starts = 0
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"tcp://127.0.0.1:{self.port}"

    def pipeline(self) -> str:
        """The shell pipeline that serves one client."""
        return shlex.join(camera_command(self.feed, f"{self.url}?listen=1", "mpegts"))

    def _run(self) -> None:
        while not self.stopping:
            self._proc = subprocess.Popen(["bash", "-c", self.pipeline()],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)
            self.starts += 1
            while self._proc.poll() is None:
                if self.wait(0.05):
                    break
            stop_group(self._proc, grace=0.5)
            self.wait(0.1)

    def _on_stop(self) -> None:
        stop_group(self._proc, grace=0.5)


def piped(feed: Feed, server_output: list[str]) -> str:
    """The camera piping NUT into an ffmpeg that copies it to ``server_output``."""
    camera = camera_command(feed, "-", "nut")
    return f"{shlex.join(camera)} | {shlex.join(['ffmpeg', *_FROM_PIPE, *server_output])}"


class RtmpServer(SupervisedServer):
    """``ffmpeg -listen 1`` serving FLV over RTMP at ``rtmp://127.0.0.1:PORT/live/cam``."""

    scheme = "rtmp"

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"rtmp://127.0.0.1:{self.port}/live/cam"

    def pipeline(self) -> str:
        """Camera | ffmpeg RTMP server."""
        return piped(self.feed, ["-f", "flv", "-listen", "1", self.url])


class SrtServer(SupervisedServer):
    """ffmpeg in SRT listener mode, MPEG-TS inside, at ``srt://127.0.0.1:PORT``."""

    scheme = "srt"

    @property
    def url(self) -> str:
        """Where clients connect (as callers)."""
        return f"srt://127.0.0.1:{self.port}?mode=caller"

    def pipeline(self) -> str:
        """Camera | ffmpeg SRT listener."""
        return piped(self.feed, ["-f", "mpegts", "-flush_packets", "1",
                                  f"srt://127.0.0.1:{self.port}?mode=listener"])


class ProcessServer:
    """A multi-client server process that prints or opens its port when ready."""

    def __init__(self) -> None:
        self.port = free_port()
        self._procs: list[subprocess.Popen] = []

    def _spawn(self, command: list[str], **kwargs: object) -> subprocess.Popen:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True,
                                **kwargs)  # type: ignore[call-overload]
        self._procs.append(proc)
        return proc

    def stop(self) -> None:
        """End the server and its children."""
        for proc in reversed(self._procs):
            stop_group(proc)
        self._procs.clear()

    def __enter__(self) -> ProcessServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        raise NotImplementedError
