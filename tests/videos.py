"""Stored-video fixtures made with PyAV from the shared clips: other containers and codecs,
long videos, audio-only files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# (file suffix, PyAV container format, encoder) -> the VideoMetadata they should report.
VARIANTS = {
    "mov-h264": (".mov", "mov", "libx264"),
    "mkv-hevc": (".mkv", "matroska", "libx265"),
    "ts-h264": (".ts", "mpegts", "libx264"),
    "ts-hevc": (".ts", "mpegts", "libx265"),
    "mp4-hevc": (".mp4", "mp4", "libx265"),
}
CODEC_NAMES = {"libx264": "h264", "libx265": "hevc"}


def frames_of(clip: Path) -> tuple[list[np.ndarray], Fraction]:
    """Every frame of ``clip`` (RGB) and its frame rate."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)], rate


def frame_times_ms(clip: Path) -> list[int]:
    """Presentation time of every frame, in ms from the first."""
    with av.open(str(clip)) as container:
        times = [float(f.time) for f in container.decode(container.streams.video[0])]
    return [int(round((t - times[0]) * 1000)) for t in times]


def encode(frames: list[np.ndarray], rate: Fraction, dst: Path, fmt: str,
           codec: str = "libx264") -> Path:
    """Write ``frames`` as a video (ultrafast presets: these are test fixtures)."""
    with av.open(str(dst), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"} if codec == "libx264" else {
            "preset": "ultrafast", "x265-params": "log-level=error"}
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return dst


def variant(clip: Path, name: str, folder: Path) -> Path:
    """``clip`` re-encoded as one of :data:`VARIANTS`."""
    suffix, fmt, codec = VARIANTS[name]
    frames, rate = frames_of(clip)
    return encode(frames, rate, folder / f"{clip.stem}-{name}{suffix}", fmt, codec)


def looped(clip: Path, times: int, dst: Path, fps: Fraction | None = None) -> Path:
    """``clip`` played ``times`` times in a row (at ``fps``, default its own rate)."""
    frames, rate = frames_of(clip)
    return encode(frames * times, fps or rate, dst, "mp4")


def audio_only(dst: Path, seconds: float = 1.0) -> Path:
    """An MP4 with one AAC stream and no video."""
    rate = 44100
    with av.open(str(dst), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate)
        t = np.arange(int(rate * seconds)) / rate
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start:start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return dst
