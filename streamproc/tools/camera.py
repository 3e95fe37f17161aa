"""Test and demo harness: a scripted camera, a clip looped at its own pace with faults on cue.

Packets are copied (never re-encoded) with continuous timestamps across loops and written
when their time comes: a live source. ``burst_s`` sends the first seconds at once, as a
camera that dumps its pre-buffer on connect (or a server that starts at a key frame in the
past); ``stall_at_s``/``stall_s`` freezes delivery for a while mid-stream and then sends the
backlog, as a network that stops and recovers under TCP. ``on_sent`` reports when each
frame left, for latency measurements.

Run as ``python -m streamproc.tools.camera CLIP OUT --format F``: OUT is a URL PyAV writes
(``tcp://127.0.0.1:9000?listen=1`` serves one client, like ``ffmpeg -listen 1``) or ``-`` for
stdout (to feed GStreamer's RTSP server or an ffmpeg that serves RTMP, SRT or HLS).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av

# Format options: send every packet at once (no muxer buffering) and mark streams live.
_FORMAT_OPTIONS = {"mpegts": {"flush_packets": "1"}, "flv": {"flush_packets": "1"},
                   "nut": {"flush_packets": "1"},
                   # One packet per cluster: a cluster is only written whole.
                   "matroska": {"flush_packets": "1", "live": "1", "cluster_size_limit": "1"}}


@dataclass(frozen=True)
class Script:
    """How the camera delivers: speed and faults, in seconds of stream time."""

    speed: float = 1.0
    burst_s: float = 0.0
    stall_at_s: float | None = None
    stall_s: float = 0.0

    def due(self, media_s: float, started: float) -> float:
        """Wall time at which the packet at stream time ``media_s`` is sent."""
        when = started + (media_s - self.burst_s) / self.speed
        if self.stall_at_s is not None and media_s >= self.stall_at_s:
            stall_begins = started + (self.stall_at_s - self.burst_s) / self.speed
            when = max(when, stall_begins + self.stall_s)
        return when


def looped_packets(clip: Path) -> Iterator[tuple[av.Packet, float]]:
    """The clip's video packets forever, (packet, stream time in s), timestamps continuous."""
    offset = 0
    while True:
        with av.open(str(clip)) as source:
            stream = source.streams.video[0]
            end = offset
            for packet in source.demux(stream):
                if packet.dts is None:
                    continue  # the demuxer's end-of-stream marker
                packet.pts = (packet.pts if packet.pts is not None else packet.dts) + offset
                packet.dts += offset
                end = max(end, packet.pts + (packet.duration or 1))
                yield packet, float(packet.dts * packet.time_base)
            if end == offset:
                return  # an empty clip would loop forever
            offset = end


def run(clip: Path, out: str, fmt: str, script: Script,
        on_sent: Callable[[float, float], None] | None = None,
        stop: Callable[[], bool] = lambda: False) -> None:
    """Send ``clip`` to ``out`` until ``stop()`` or the receiver goes away (raises OSError).

    ``on_sent(stream_time_s, wall_time)`` is called after each packet is written.
    """
    options = _FORMAT_OPTIONS.get(fmt, {})
    target = "pipe:1" if out == "-" else out
    with av.open(str(clip)) as template_source:
        template = template_source.streams.video[0]
        with av.open(target, "w", format=fmt, options=options) as sink:
            stream = sink.add_stream_from_template(template)
            sink.start_encoding()  # opens the output: a listening one waits for its client
            started = time.time()
            for packet, media_s in looped_packets(clip):
                if stop():
                    return
                wait = script.due(media_s, started) - time.time()
                if wait > 0:
                    time.sleep(wait)
                packet.stream = stream
                sink.mux(packet)
                if on_sent is not None:
                    on_sent(media_s, time.time())


def main() -> None:
    """Command line: serve a clip until killed or the client leaves."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("out")
    parser.add_argument("--format", default="mpegts")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--burst", type=float, default=0.0)
    parser.add_argument("--stall-at", type=float, default=None)
    parser.add_argument("--stall", type=float, default=0.0)
    parser.add_argument("--log", type=Path, help="append 'stream_time wall_time' per packet")
    args = parser.parse_args()
    script = Script(args.speed, args.burst, args.stall_at, args.stall)
    log = args.log.open("a", buffering=1) if args.log else None
    try:
        run(args.clip, args.out, args.format, script,
            on_sent=(lambda media, wall: log.write(f"{media:.6f} {wall:.6f}\n")) if log else None)
    except (OSError, BrokenPipeError, KeyboardInterrupt):
        pass  # the receiver left (or we were told to stop): a camera just ends the session
    finally:
        if log is not None:
            log.close()


if __name__ == "__main__":
    main()


def transcode(clip: Path, dest: Path, codec: str = "libx265", gop: int = 12) -> Path:
    """A copy of ``clip`` in another codec (H.265 by default), key frame every ``gop`` frames.

    Uses the system ffmpeg; the result is cached at ``dest``.
    """
    if not dest.is_file():
        part = dest.with_suffix(".part" + dest.suffix)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                        "-i", str(clip), "-an", "-c:v", codec, "-preset", "ultrafast",
                        "-g", str(gop), "-bf", "0", "-tag:v", "hvc1" if "265" in codec else
                        "avc1", "-x265-params" if "265" in codec else "-tune",
                        "log-level=error" if "265" in codec else "zerolatency", str(part)],
                       check=True, timeout=120)
        part.rename(dest)
    return dest
