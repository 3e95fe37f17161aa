"""When each frame was captured, on the wall clock: the times output records carry.

Timing model (what ``InputInformation.KinesisVideo`` means in a record):

* **Frame time** (``ProducerTimestamp + FrameOffsetInSeconds``) is the frame's capture time:
  - *camera clock*: when the source carries wall-clock time (RTSP's RTCP sender reports,
    which FFmpeg exposes as ``start_time_realtime``), frame time = that clock at the frame's
    presentation time, as Rekognition takes it from the Kinesis producer. Until a
    reconnection's first sender report, its frames are timed by the camera's offset from
    our clock measured on the connection before (arrival + offset);
  - *arrival anchor* otherwise: frame time = anchor + presentation time, where the anchor is
    the earliest arrival the timeline allows, ``min(decoded_at - pts)`` over every frame so
    far. A frame that arrives with less delay than any before it (the end of a start-up
    burst, or the catch-up after probing) moves the anchor earlier; a late frame (a stall)
    leaves it where it is, so its delay shows.
* Every frame time is **never later than the moment the frame was decoded** (a camera clock
  ahead of ours is cut back to the decode time) and **never earlier than the frame before**,
  so times keep increasing in a processor run: across reconnects (the :class:`FrameClock`
  outlives a connection) and timeline restarts (a presentation time that goes back starts a
  new timeline whose first frame is timed at its arrival). A camera clock that would move
  times back by more than :data:`CAMERA_SLACK_S` is not used for the rest of the connection.
* A *fragment* starts at a key frame (or the first frame), as KVS fragments do:
  ``ProducerTimestamp`` = its first frame's time, ``ServerTimestamp`` = when that frame was
  decoded, ``FragmentNumber`` = ProducerTimestamp in milliseconds. When the anchor moves
  earlier inside a fragment, the fragment keeps its number and ProducerTimestamp and later
  frames get smaller offsets: ``FrameOffsetInSeconds`` = frame time - ProducerTimestamp,
  which equals the presentation-time difference whenever the anchor stays put.
* All three are whole milliseconds, rounded so that ProducerTimestamp <= ServerTimestamp
  and ProducerTimestamp + FrameOffsetInSeconds <= the decode time hold after rounding.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

logger = logging.getLogger(__name__)
CAMERA_SLACK_S = 1.0  # a camera clock may hold frame times back this long, no longer


@dataclass(frozen=True)
class FrameTime:
    """The record timing of one frame, in milliseconds since the epoch."""

    producer_ms: int  # ProducerTimestamp of the frame's fragment
    server_ms: int  # ServerTimestamp of the fragment
    frame_ms: int  # ProducerTimestamp + FrameOffsetInSeconds
    delay_s: float  # decode time - frame time: how late the frame reached us
    camera: bool  # timed by the camera's clock


class FrameClock:
    """Gives each decoded frame its capture time; one per processor run.

    Call :meth:`connected` when a (re)connection starts, then :meth:`stamp` for every
    decoded frame in order.
    """

    def __init__(self) -> None:
        self._floor = -math.inf  # latest frame time given so far (seconds)
        self._anchor: float | None = None
        self._last_pts: float | None = None
        self._camera_ok = True
        self._fragment: tuple[int, int] | None = None  # (producer_ms, server_ms)
        self._claimed_ms = -1  # frame time of the last frame that went into a record
        # Camera clock minus our clock for the least-delayed frame: this connection's and
        # the last one's, which times a reconnection's frames until its clock arrives.
        self._skew: float | None = None
        self._known_skew: float | None = None

    def connected(self) -> None:
        """A new connection: a new timeline, and its camera clock is trusted again."""
        self._anchor, self._last_pts, self._camera_ok = None, None, True
        if self._skew is not None:
            self._known_skew, self._skew = self._skew, None

    @property
    def knows_camera(self) -> bool:
        """True once a camera clock timed frames in this run (a reconnection need not wait)."""
        return self._known_skew is not None or self._skew is not None

    def stamp(self, pts: float, decoded_at: float, key: bool,
              camera_base: float | None = None) -> FrameTime:
        """Time a frame with presentation time ``pts`` (s) decoded at wall time ``decoded_at``.

        ``camera_base`` is the camera's wall-clock time at pts 0, when the source has one.
        """
        camera = self._camera_time(pts, decoded_at, camera_base)
        when = camera if camera is not None else self._anchored(pts, decoded_at)
        when = max(min(when, decoded_at), self._floor)
        self._floor = when
        frame_ms = math.floor(when * 1000)
        if key or self._fragment is None:
            if self._fragment is None or frame_ms > self._fragment[0]:
                self._fragment = (frame_ms, math.floor(decoded_at * 1000))
        producer_ms, server_ms = self._fragment
        return FrameTime(producer_ms, server_ms, frame_ms, decoded_at - when,
                         camera is not None)

    def claim(self, stamp: FrameTime) -> bool:
        """True if a record may use ``stamp``: its frame time is later than the last one's.

        Frames that arrive within the same millisecond (a burst), or held back by a camera
        clock that stepped back a little, share a time; only the first becomes a record.
        """
        if stamp.frame_ms <= self._claimed_ms:
            return False
        self._claimed_ms = stamp.frame_ms
        return True

    def _camera_time(self, pts: float, decoded_at: float, camera_base: float | None
                     ) -> float | None:
        if not self._camera_ok:
            return None
        if camera_base is None:  # not yet on this connection: the last one's offset
            skew = self._skew if self._skew is not None else self._known_skew
            return None if skew is None else decoded_at + skew
        when = camera_base + pts
        if when < self._floor - CAMERA_SLACK_S:
            self._camera_ok = False
            logger.warning("camera clock is %.1f s behind the frame times already reported; "
                           "timing frames by arrival until the next connection",
                           self._floor - when)
            return None
        offset = when - decoded_at
        self._skew = offset if self._skew is None else max(self._skew, offset)
        return when

    def _anchored(self, pts: float, decoded_at: float) -> float:
        if self._anchor is None or self._last_pts is None or pts < self._last_pts:
            self._anchor = decoded_at - pts  # first frame, or the timeline restarted
        else:
            self._anchor = min(self._anchor, decoded_at - pts)
        self._last_pts = pts
        return self._anchor + pts
