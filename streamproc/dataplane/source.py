"""Reading a live (or file) video source with PyAV: timeouts, sampling and fragment timing.

Timing model (what the output records' ``InputInformation.KinesisVideo`` means here):

* A *fragment* is a GOP: it starts at a key frame, as KVS fragments do.
* ``ProducerTimestamp`` of a fragment = wall clock at the session's first frame + the key
  frame's presentation time relative to that first frame (the producer's timeline, anchored
  to when we joined it). ``ServerTimestamp`` = wall clock when streamproc decoded that key
  frame. ``FrameOffsetInSeconds`` = frame pts - key frame pts, so frame time =
  ProducerTimestamp + FrameOffsetInSeconds, as in Rekognition.
* ``FragmentNumber`` = ProducerTimestamp in milliseconds, as a decimal string: unique and
  increasing within a session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np


class SourceError(Exception):
    """A source problem; ``fatal`` ones end the processor in FAILED, others are retried."""

    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass
class VideoFrame:
    """One sampled frame with the timing the output record needs."""

    image: np.ndarray
    fragment_number: str
    producer_ts: float
    server_ts: float
    offset_s: float
    decoded_at: float  # time.monotonic() when decoded, for frame-to-publish latency


_FATAL = (av.error.FileNotFoundError, av.error.InvalidDataError, av.error.DecoderNotFoundError,
          av.error.ProtocolNotFoundError, av.error.HTTPNotFoundError, av.error.HTTPForbiddenError,
          av.error.HTTPUnauthorizedError, av.error.PermissionError)


def classify(exc: BaseException, url_shown: str) -> SourceError:
    """Map PyAV/OS errors to fatal (bad URL, no such stream) or retriable (network)."""
    # strerror, never str(exc): PyAV puts the full URL (credentials too) in str().
    text = getattr(exc, "strerror", None) or type(exc).__name__
    if isinstance(exc, _FATAL):
        return SourceError(f"Cannot open {url_shown}: {text}", fatal=True)
    if isinstance(exc, av.error.OSError) and "resolve" in text.lower():
        return SourceError(f"Cannot resolve host of {url_shown}: {text}", fatal=True)
    return SourceError(f"{url_shown}: {text}", fatal=False)


def open_options(url: str) -> dict[str, str]:
    """Per-protocol demuxer options."""
    if url.startswith(("rtsp://", "rtsps://")):
        return {"rtsp_transport": "tcp"}
    return {}


class FrameSampler:
    """Turns decoded PyAV frames into :class:`VideoFrame` at ``fps`` per second of stream time."""

    def __init__(self, fps: float) -> None:
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._first_pts: float | None = None
        self._wall0 = 0.0
        self._next = 0.0
        self._key_pts = 0.0
        self._key_server = 0.0
        self._clock0: float | None = None
        self._last_pts = 0.0
        self._last_time = 0.0

    def offer(self, frame: av.VideoFrame) -> VideoFrame | None:
        """A sampled frame, or None if this one is skipped."""
        now = time.time()
        if frame.time is not None:
            pts = float(frame.time)
        else:
            # No timestamps (zero/unknown fps, raw streams): arrival time is the timeline.
            self._clock0 = self._clock0 if self._clock0 is not None else time.monotonic()
            pts = time.monotonic() - self._clock0
        if self._first_pts is None or pts < self._last_pts:
            # First frame, or the timeline jumped back (source restarted): re-anchor,
            # never earlier than frames already reported, so frame times keep increasing.
            anchor = max(now, self._last_time + 1e-3)
            self._first_pts, self._wall0, self._next = pts, anchor, pts
            self._key_pts, self._key_server = pts, now
        self._last_pts = pts
        self._last_time = self._wall0 + (pts - self._first_pts)
        if frame.key_frame:
            self._key_pts, self._key_server = pts, now
        if pts + 1e-6 < self._next:
            return None
        self._next = max(self._next + self._period, pts) if self._period else pts
        producer = self._wall0 + (self._key_pts - self._first_pts)
        return VideoFrame(
            image=frame.to_ndarray(format="bgr24"),
            fragment_number=str(int(round(producer * 1000))),
            producer_ts=round(producer, 3), server_ts=round(self._key_server, 3),
            offset_s=round(pts - self._key_pts, 3), decoded_at=time.monotonic())


class _Pacer:
    """Sleeps so that a file plays at its own speed; re-anchors when its timeline jumps."""

    def __init__(self) -> None:
        self._first: float | None = None
        self._last = 0.0
        self._started = 0.0

    def wait_for(self, pts: float) -> None:
        if self._first is None or pts < self._last:
            self._first, self._started = pts, time.monotonic()
        self._last = pts
        ahead = (pts - self._first) - (time.monotonic() - self._started)
        if ahead > 0:
            time.sleep(min(ahead, 1.0))


def read_frames(url: str, url_shown: str, fps: float, open_timeout: float,
                read_timeout: float, realtime: bool) -> Iterator[VideoFrame]:
    """Yield sampled frames until the source ends; raise :class:`SourceError` on failure.

    ``realtime`` paces file sources to their own clock so a file behaves like a camera.
    """
    try:
        container = av.open(url, timeout=(open_timeout, read_timeout),
                            options=open_options(url))
    except Exception as exc:  # PyAV raises many types; classify() sorts them
        raise classify(exc, url_shown) from exc
    with container:
        if not container.streams.video:
            raise SourceError(f"{url_shown} has no video stream", fatal=True)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        sampler = FrameSampler(fps)
        pacer = _Pacer() if realtime else None
        try:
            for frame in container.decode(stream):
                if pacer is not None and frame.time is not None:
                    pacer.wait_for(float(frame.time))
                sampled = sampler.offer(frame)
                if sampled is not None:
                    yield sampled
        except av.error.EOFError:
            return
        except Exception as exc:
            raise classify(exc, url_shown) from exc
