"""Reading a live (or file) video source with PyAV: opening, sampling and frame timing.

Which times a record carries is :mod:`streamproc.dataplane.live.timeline`'s job (its docstring
is the timing model); how each protocol is opened and what its errors mean is
:mod:`streamproc.dataplane.guard.protocols`' and :mod:`streamproc.dataplane.live.opening`'s. Here
frames are decoded, timed as they come out of the decoder, and sampled at ``fps`` per
second of stream time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import av
import numpy as np

from streamproc.dataplane.guard.nested import Judge
from streamproc.dataplane.guard.protocols import (
    CAMERA_CLOCK_WAIT_S,
    SourceError,
    SourcePlan,
    classify,
    plan_source,
)
from streamproc.dataplane.live.opening import OpenSource, open_source, video_stream
from streamproc.dataplane.live.timeline import FrameClock

__all__ = ["FrameSampler", "SourceError", "VideoFrame", "read_frames"]
logger = logging.getLogger(__name__)


@dataclass
class VideoFrame:
    """One sampled frame with the timing the output record needs."""

    image: np.ndarray
    fragment_number: str
    producer_ts: float
    server_ts: float
    offset_s: float
    decoded_at: float  # time.monotonic() when decoded, for frame-to-publish latency
    ingest_delay_s: float = 0.0  # decode time - frame time (camera clock or anchor)
    camera_clock: bool = False  # frame time is the camera's own clock


class FrameSampler:
    """Turns decoded PyAV frames into :class:`VideoFrame` at ``fps`` per second of stream time.

    Every decoded frame goes through :meth:`offer` (all of them move the clock's anchor);
    a sampled frame is skipped only if its time would not be later than the last one's.
    """

    def __init__(self, fps: float, clock: FrameClock | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._clock = clock if clock is not None else FrameClock()
        self._wall = wall  # the decode moment's clock (tests pass a fake one)
        self._next: float | None = None
        self._last_pts: float | None = None
        self._arrival0: float | None = None
        self.frames_offered = 0

    def _pts(self, frame: av.VideoFrame) -> float:
        if frame.time is not None:
            return float(frame.time)
        # No timestamp (raw streams, a stray frame): arrival time is the timeline.
        now = self._wall()
        self._arrival0 = self._arrival0 if self._arrival0 is not None else now
        return now - self._arrival0

    def offer(self, frame: av.VideoFrame, camera_base: float | None = None
              ) -> VideoFrame | None:
        """A sampled frame, or None if this one is skipped.

        ``camera_base`` is the camera's wall-clock time at presentation time 0, if known.
        """
        now = self._wall()
        self.frames_offered += 1
        pts = self._pts(frame)
        stamp = self._clock.stamp(pts, now, bool(frame.key_frame), camera_base)
        if self._next is None or self._last_pts is None or pts < self._last_pts:
            self._next = pts  # first frame, or the timeline restarted
        self._last_pts = pts
        if pts + 1e-6 < self._next or not self._clock.claim(stamp):
            return None
        self._next = max(self._next + self._period, pts) if self._period else pts
        return VideoFrame(
            image=frame.to_ndarray(format="bgr24"),
            fragment_number=str(stamp.producer_ms),
            producer_ts=stamp.producer_ms / 1000, server_ts=stamp.server_ms / 1000,
            offset_s=(stamp.frame_ms - stamp.producer_ms) / 1000,
            decoded_at=time.monotonic(), ingest_delay_s=stamp.delay_s,
            camera_clock=stamp.camera)


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
                read_timeout: float, realtime: bool, clock: FrameClock | None = None,
                options: dict[str, str] | None = None, judge: Judge | None = None
                ) -> Iterator[VideoFrame]:
    """Yield sampled frames until the source ends; raise :class:`SourceError` on failure.

    ``realtime`` paces file sources to their own clock so a file behaves like a camera.
    Pass the same ``clock`` on every reconnect so frame times keep increasing across them.
    ``options`` (from the inputs allowlist: no redirects, the checked Host) go to FFmpeg on
    top of the protocol's own. ``judge`` (the allowlist's check) judges every further URL
    the source makes FFmpeg open (HLS segments, playlists); without it there may be none.
    """
    try:
        plan = plan_source(url)
    except SourceError as exc:
        raise SourceError(f"Cannot open {url_shown}: {exc}", fatal=True) from None
    if options:
        plan = replace(plan, options={**plan.options, **options})
    clock = clock if clock is not None else FrameClock()
    with open_source(plan, url_shown, open_timeout, read_timeout, judge) as opened:
        yield from _decode(opened, plan, url_shown, fps, realtime, clock)
        refused = opened.refusal()
        if refused is not None:
            raise refused  # FFmpeg went on without what was refused: fail all the same


def _decode(opened: OpenSource, plan: SourcePlan, url_shown: str, fps: float,
            realtime: bool, clock: FrameClock) -> Iterator[VideoFrame]:
    """The sampled frames of an open source; its errors sorted as :func:`read_frames` says."""
    container = opened.container
    stream = video_stream(container, url_shown, plan.live)
    clock.connected()
    sampler = FrameSampler(fps, clock)
    pacer = _Pacer() if realtime else None
    waits = plan.camera_clock and not clock.knows_camera  # a reconnection need not
    clock_due = time.monotonic() + CAMERA_CLOCK_WAIT_S if waits else 0.0
    try:
        for frame in container.decode(stream):
            if pacer is not None and frame.time is not None:
                pacer.wait_for(float(frame.time))
            camera = container.start_time_realtime
            if not camera and time.monotonic() < clock_due:
                continue  # the camera's clock is on its way (RTCP); see protocols
            sampled = sampler.offer(frame, camera / 1e6 if camera else None)
            if sampled is not None:
                yield sampled
    except av.error.EOFError:
        failure = opened.failure(url_shown)
        if failure is not None and failure.fatal:
            raise failure from None
        return
    except av.error.InvalidDataError as exc:
        if sampler.frames_offered == 0:
            raise (opened.refusal() or classify(exc, url_shown, plan)) from None
        # Good frames came first: the stream changed (a camera switched codec) or was
        # damaged in transit; a reconnect probes it afresh.
        raise SourceError(f"{url_shown}: undecodable data after {sampler.frames_offered} "
                          "frames (codec changed?)", fatal=False) from None
    except (av.error.FFmpegError, OSError) as exc:
        # Only what the stream or the network did; anything else is a bug and reaches
        # the worker's crash path (restarted within a budget, not retried as a network
        # error for ever).
        raise (opened.failure(url_shown) or classify(exc, url_shown, plan)) from None
