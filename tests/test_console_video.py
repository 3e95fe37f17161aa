"""StoredVideo.frame_at near the end of an MPEG-TS video, and the decode loop's errors.

The Jobs page asks for the frame at a result's timestamp; a seek in an MPEG-TS file near its
end lands past the last key frame, so a frame must still come (by decoding from the start).
The clip is a real one from the shared data, remuxed (not re-encoded) in process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import VIDEO

from streamproc.dataplane.stored.video import StoredVideo, VideoRejected

pytestmark = pytest.mark.unit

CLIP = VIDEO / "head-pose-face-detection-female.mp4"


def remux_ts(source: Path, target: Path) -> Path:
    """``source``'s video packets in an MPEG-TS container, as a camera recorder writes one."""
    with av.open(str(source)) as given, av.open(str(target), "w", format="mpegts") as out:
        video = given.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in given.demux(video):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = stream
            out.mux(packet)
    return target


@pytest.fixture(scope="module")
def ts_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return remux_ts(CLIP, tmp_path_factory.mktemp("ts") / "clip.ts")


def every_frame(path: Path) -> list[tuple[int, np.ndarray]]:
    with StoredVideo(path, path.name, 1000.0, 3600.0) as video:
        return [(f.timestamp_ms, f.image) for f in video.frames(threading.Event())]


def frame_at(path: Path, ms: int) -> np.ndarray:
    with StoredVideo(path, path.name, 1.0, 3600.0) as video:
        image = video.frame_at(ms, threading.Event())
    assert image is not None
    return image


def closest(image: np.ndarray, frames: list[tuple[int, np.ndarray]]) -> int:
    """The timestamp of the frame ``image`` is (least mean difference)."""
    return min(frames, key=lambda f: float(np.abs(f[1].astype(int) - image.astype(int)).mean()))[0]


def test_a_mark_near_the_end_of_a_ts_video_gets_its_frame_not_an_error(ts_clip: Path) -> None:
    frames = every_frame(ts_clip)
    last = frames[-1][0]
    assert len(frames) > 10 and last > 1000
    # A seek to each of these lands past the file's last key frame (the end, no frame).
    for ms in (last - 100, last - 1, last):
        expected = next(t for t, _ in frames if t >= ms)
        assert closest(frame_at(ts_clip, ms), frames) == expected, ms
    for past in (last + 1, last + 500, 3_600_000):
        assert closest(frame_at(ts_clip, past), frames) == last, past
    # Early marks are unchanged (the seek is used where it can be trusted).
    assert closest(frame_at(ts_clip, 0), frames) == 0
    middle = frames[len(frames) // 2][0]
    assert closest(frame_at(ts_clip, middle), frames) == middle


class _Frame:
    """A decoded frame whose time or pixel conversion fails as told."""

    def __init__(self, time: float, *, bad_time: bool = False, bad_pixels: bool = False
                 ) -> None:
        self._time, self._bad_time, self._bad_pixels = time, bad_time, bad_pixels

    @property
    def time(self) -> float:
        if self._bad_time:
            raise ValueError("a bug of ours, not the video's")
        return self._time

    def to_ndarray(self, format: str) -> np.ndarray:  # noqa: A002 - PyAV's name
        if self._bad_pixels:
            raise ValueError("Conversion to numpy array with format `x` is not yet supported")
        return np.zeros((4, 4, 3), np.uint8)


class _Container:
    """The opened container, its decode replaced by the given frames."""

    def __init__(self, real: Any, frames: list[_Frame]) -> None:
        self._real, self._frames = real, frames

    def decode(self, stream: Any) -> Iterator[_Frame]:
        return iter(self._frames)

    def close(self) -> None:
        self._real.close()


def _opened_with(frames: list[_Frame]) -> StoredVideo:
    video = StoredVideo(CLIP, CLIP.name, 1000.0, 3600.0).__enter__()
    video._container = _Container(video._container, frames)  # type: ignore[assignment]
    return video


def test_a_value_error_outside_the_pixel_conversion_is_not_swallowed() -> None:
    video = _opened_with([_Frame(0.0), _Frame(0.04, bad_time=True)])
    try:
        with pytest.raises(ValueError, match="a bug of ours"):
            list(video.frames(threading.Event()))
    finally:
        video.__exit__(None, None, None)


def test_a_frame_numpy_cannot_take_is_the_videos_fault() -> None:
    video = _opened_with([_Frame(0.0), _Frame(0.04, bad_pixels=True)])
    try:
        with pytest.raises(VideoRejected, match=r"decoding .* failed after 2 frames"):
            list(video.frames(threading.Event()))
    finally:
        video.__exit__(None, None, None)
    video = _opened_with([_Frame(0.0, bad_pixels=True)])
    try:
        with pytest.raises(VideoRejected, match="ValueError"):
            video.frame_at(0, threading.Event())
    finally:
        video.__exit__(None, None, None)
