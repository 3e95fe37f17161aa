"""Reading a stored video file with PyAV: checks, VideoMetadata and sampled frames.

Timestamps are milliseconds from the start of the video (the stream's start time, so an
MPEG-TS file whose clock starts at 1.4 s still starts at 0). Frames are sampled on that
timeline at ``fps`` per second of video, as the stream processors sample live video, and
decoded with FFmpeg's frame and slice threads (throughput matters here, not latency).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from streamproc.config import InputsConfig
from streamproc.dataplane.guard.allowlist import CheckedInput, InputAllowlist
from streamproc.dataplane.guard.nested import GuardedOpener, OpenRefused

UNSUPPORTED = "Unsupported codec/format"
_IO_TIMEOUT_S = 30.0  # local files only: no network waits (an opener needs a bound)
# FFmpeg's AVColorRange: 2 is AVCOL_RANGE_JPEG (full swing); everything else is video range.
_FULL_RANGE = 2
# Real containers, and HLS (a playlist of segments beside it, as the jobs docs promise): no
# concat or image2 demuxer. A playlist cannot name itself and its opens are capped
# (a self-naming ffconcat nested opens until the process ran out of fds).
STORED_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,hls"
MAX_OPENS = 10_000  # a playlist and its segments: 2 h 45 min of 1 s segments
MAX_PIXELS = 4096 * 4096  # a frame's width x height, judged before decoding (decode bombs)


class VideoRejected(Exception):
    """The video cannot be analysed; the message becomes the job's StatusMessage."""


@dataclass(frozen=True)
class StoredFrame:
    """One sampled frame of a stored video."""

    image: np.ndarray
    timestamp_ms: int  # from the start of the video
    # The clock the analyzer paces re-embedding of tracked faces on: for live frames the
    # decode time, for stored video the position in the video (seconds), so the pace does
    # not depend on how fast the job runs.
    decoded_at: float


class StoredVideo:
    """A video file opened for analysis (a context manager)."""

    def __init__(self, path: Path, shown: str, fps: float, max_duration_s: float) -> None:
        self._path = path
        self._shown = shown  # bucket/name, for messages
        self._period = 1.0 / fps
        self._max_s = max_duration_s
        self._container: av.container.InputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._opener: GuardedOpener | None = None

    def __enter__(self) -> StoredVideo:
        # A playlist may name files beside it (its own folder: in the object root, its
        # bucket's objects there); nothing elsewhere on disk, and nothing on the network.
        beside = InputAllowlist(InputsConfig(media_roots=[self._path.parent]))
        self._opener = GuardedOpener(CheckedInput(str(self._path)), beside.check,
                                     self._shown, _IO_TIMEOUT_S, _IO_TIMEOUT_S,
                                     max_opens=MAX_OPENS, reopen_main=False)
        try:
            self._container = av.open(str(self._path), io_open=self._opener, options={
                "protocol_whitelist": "file", "format_whitelist": STORED_FORMATS,
                "max_pixels": str(MAX_PIXELS)})
        except OpenRefused:
            raise VideoRejected(self._outside()) from None
        except Exception as exc:  # PyAV raises many types for unreadable input
            if self._opener.refused is not None:  # FFmpeg's own error hides the refusal
                raise VideoRejected(self._outside()) from None
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise VideoRejected(f"{UNSUPPORTED}: {self._shown} cannot be read "
                                f"({reason})") from None
        try:
            self._check()
        except BaseException:
            self._opened.close()
            raise
        return self

    @property
    def _opened(self) -> av.container.InputContainer:
        if self._container is None:
            msg = "the video is read inside its with block"
            raise RuntimeError(msg)
        return self._container

    @property
    def _video(self) -> av.video.stream.VideoStream:
        if self._stream is None:
            msg = "the video is read inside its with block"
            raise RuntimeError(msg)
        return self._stream

    def _outside(self) -> str:
        # Paths are not shown: they would tell the client where the object root is.
        return (f"{UNSUPPORTED}: {self._shown} names a file outside its own folder, "
                "or a URL (a playlist may name only the objects beside it)")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._opened.close()

    def _check(self) -> None:
        video = self._opened.streams.video
        if not video:
            raise VideoRejected(f"{UNSUPPORTED}: {self._shown} has no video stream")
        self._stream = video[0]
        self._stream.thread_type = "AUTO"
        ctx = self._stream.codec_context
        self._check_size(ctx.width, ctx.height)

    def _check_size(self, width: int, height: int) -> None:
        # FFmpeg's max_pixels makes the probe give up on a larger frame: its size reads 0.
        if not width or not height:
            raise VideoRejected(f"{UNSUPPORTED}: {self._shown} has frames of no readable "
                                f"size (over {MAX_PIXELS} pixels are refused)")
        if width * height > MAX_PIXELS:
            raise VideoRejected(f"{UNSUPPORTED}: {self._shown} has {width}x{height} frames; "
                                f"the limit is {MAX_PIXELS} pixels a frame")

    def check_duration(self) -> None:
        """Refuse a video the container says is longer than the limit (before decoding)."""
        duration = self.duration_s
        if duration is not None and duration > self._max_s:
            raise VideoRejected(self._too_long(duration))

    def _too_long(self, seconds: float) -> str:
        return (f"VideoTooLargeException: {self._shown} lasts {seconds:.0f} s; the limit is "
                f"{self._max_s:.0f} s")

    @property
    def duration_s(self) -> float | None:
        """Length in seconds, when the container says."""
        stream, container = self._video, self._opened
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / av.time_base
        return None

    @property
    def metadata(self) -> dict[str, Any]:
        """Rekognition's ``VideoMetadata`` (absent values omitted)."""
        ctx = self._video.codec_context
        rate = self._video.average_rate or self._video.guessed_rate
        out: dict[str, Any] = {
            "Codec": ctx.name, "Format": self._opened.format.long_name,
            "FrameHeight": ctx.height, "FrameWidth": ctx.width,
            "ColorRange": "FULL" if ctx.color_range == _FULL_RANGE else "LIMITED"}
        if rate:
            out["FrameRate"] = round(float(rate), 6)
        duration = self.duration_s
        if duration is not None:
            out["DurationMillis"] = int(round(duration * 1000))
        return out

    def frames(self, stop: threading.Event) -> Iterator[StoredFrame]:
        """Sampled frames in presentation order until the end, ``stop`` or a decode error."""
        clock = _Clock(self._video)
        due = 0.0
        with self._decoding(clock):
            for frame in self._opened.decode(self._video):
                if stop.is_set():
                    return
                at = clock.at(frame)
                if at > self._max_s:
                    raise VideoRejected(self._too_long(at))
                if at + 1e-6 < due:
                    continue
                due = max(due + self._period, at)
                yield StoredFrame(self._pixels(frame, clock), _ms(at), at)
        self._ended(clock)

    def frame_at(self, ms: int, stop: threading.Event) -> np.ndarray | None:
        """The first frame (BGR) whose :meth:`frames` timestamp is at or after ``ms``.

        Past the end: the last frame. None once ``stop`` is set. Seeks to the key frame
        before ``ms`` where the clock allows (the stream says when it starts) and decodes
        forward on the same clock as :meth:`frames`, so the Jobs page shows the frame a
        result was found in; otherwise decodes from the start. It also decodes from the
        start where the seek cannot be trusted: a frame after it has no time (its place by
        count is unknown), it gave no frame at all, or its first frame is already past
        ``ms``. An MPEG-TS seek near the end lands past the last key frame, at the end of the
        file, so without this a mark near the end would get no frame. Raises
        :class:`VideoRejected` as :meth:`frames` does.
        """
        stream = self._video
        base = stream.time_base
        seek = ms > 0 and stream.start_time is not None and base is not None
        if seek and base is not None:
            try:
                # backward: the key frame at or before the time, so decoding forward reaches it.
                self._opened.seek(int((_Clock(stream).begin + ms / 1000) / base),
                                  stream=stream, backward=True)
            except av.error.FFmpegError:
                seek = False
                self._rewind()  # not seekable: from the start
        found = self._first_at(ms, stop, seek)
        if found is _RESTART:
            self._rewind()
            found = self._first_at(ms, stop, False)
        return None if found is None or found is _RESTART else found

    def _rewind(self) -> None:
        """Back to the start; a file that cannot go back is rejected, as a decode error is."""
        try:
            self._opened.seek(0)
        except av.error.FFmpegError as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise VideoRejected(f"{UNSUPPORTED}: {self._shown} cannot be read again from "
                                f"the start ({reason})") from None

    def _first_at(self, ms: int, stop: threading.Event, seeked: bool) -> Any:
        stream = self._video
        clock = _Clock(stream)
        last: Any = None
        with self._decoding(clock):
            for frame in self._opened.decode(stream):
                if stop.is_set():
                    return None
                if seeked and frame.time is None:
                    return _RESTART
                at = clock.at(frame)
                if seeked and last is None and _ms(at) > ms:
                    return _RESTART  # landed after the frame asked for: it may lie behind
                if at > self._max_s:
                    raise VideoRejected(self._too_long(at))
                last = frame
                if _ms(at) >= ms:
                    break
        if seeked and last is None:
            return _RESTART  # the seek went past the last key frame, to the end
        self._ended(clock)
        return None if last is None else self._pixels(last, clock)

    def _pixels(self, frame: Any, clock: _Clock) -> np.ndarray:
        """A decoded frame as BGR pixels (one that cannot be converted: VideoRejected)."""
        try:
            return np.asarray(frame.to_ndarray(format="bgr24"))
        except (av.error.FFmpegError, ValueError) as exc:  # ValueError: a format numpy lacks
            raise VideoRejected(self._failed(exc, clock)) from None

    def _failed(self, exc: Exception, clock: _Clock) -> str:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return f"{UNSUPPORTED}: decoding {self._shown} failed after {clock.count} frames ({reason})"

    @contextmanager
    def _decoding(self, clock: _Clock) -> Iterator[None]:
        """Decode errors and refusals while decoding as :class:`VideoRejected`."""
        try:
            yield
        except (av.error.EOFError, StopIteration):
            pass
        except OpenRefused:
            raise VideoRejected(self._outside()) from None
        except av.error.FFmpegError as exc:
            # Only FFmpeg's own errors: a ValueError here would be a bug of ours (the pixel
            # conversion's are turned into VideoRejected where it happens, in _pixels).
            raise VideoRejected(self._failed(exc, clock)) from None

    def _ended(self, clock: _Clock) -> None:
        """After decoding (not stopped): a refusal FFmpeg skipped, or no frame at all."""
        if self._opener is not None and self._opener.refused is not None:
            raise VideoRejected(self._outside())  # FFmpeg skipped what was refused
        if clock.count == 0:
            raise VideoRejected(f"{UNSUPPORTED}: no frame of {self._shown} could be decoded")


_RESTART = object()  # frame_at: decode again from the start


def _ms(at: float) -> int:
    """A result's timestamp: ms from the video's start, rounded."""
    return int(round(at * 1000))


class _Clock:
    """The runner's timeline: seconds from the video's start for each decoded frame.

    The stream's start time, else the first frame's time, is 0; a frame without a time is
    placed by its count at the stream's rate.
    """

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self.start: float | None = float(stream.start_time * stream.time_base) if (
            stream.start_time is not None and stream.time_base is not None) else None
        self.rate = float(stream.average_rate or stream.guessed_rate or 25)
        self.count = 0

    @property
    def begin(self) -> float:
        """The stream's start in seconds (0 where it says none)."""
        return 0.0 if self.start is None else self.start

    def at(self, frame: Any) -> float:
        if frame.time is None:
            at = self.count / self.rate
        else:
            self.start = float(frame.time) if self.start is None else self.start
            at = max(float(frame.time) - self.start, 0.0)
        self.count += 1
        return at
