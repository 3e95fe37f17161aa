"""Record times from synthetic frames: the inequalities consumers rely on, in every situation.

Each frame is (presentation time, decode moment, key frame); a fake wall clock makes the
decode moment exact, so every record can be checked against it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.dataplane.live.source import FrameSampler, VideoFrame
from streamproc.dataplane.live.timeline import CAMERA_SLACK_S, FrameClock

T0 = 1_800_000_000.0  # a wall-clock time in the 2020s


@dataclass
class _Frame:
    time: float | None
    key_frame: bool

    def to_ndarray(self, format: str) -> np.ndarray:  # noqa: A002 - PyAV's signature
        return np.zeros((4, 4, 3), np.uint8)


class _Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _run(frames: list[tuple[float | None, float, bool]], fps: float = 5.0,
         clock: FrameClock | None = None, camera_base: float | None = None,
         ) -> list[tuple[VideoFrame, float]]:
    """Offer (pts, decoded_at, key) frames; the sampled ones with their decode moments."""
    wall = _Wall()
    sampler = FrameSampler(fps, clock, wall=wall)
    out = []
    for pts, decoded_at, key in frames:
        wall.now = decoded_at
        sampled = sampler.offer(_Frame(pts, key), camera_base)
        if sampled is not None:
            out.append((sampled, decoded_at))
    return out


def _check(records: list[tuple[VideoFrame, float]]) -> list[float]:
    """Assert the record invariants; the frame times."""
    times, fragments = [], []
    for frame, decoded_at in records:
        assert frame.producer_ts <= frame.server_ts, frame
        assert frame.offset_s >= 0
        frame_time = frame.producer_ts + frame.offset_s
        assert frame_time <= decoded_at + 1e-6, (frame, decoded_at)
        assert frame.server_ts <= decoded_at + 1e-6
        assert int(frame.fragment_number) == round(frame.producer_ts * 1000)
        assert abs(frame.ingest_delay_s - (decoded_at - frame_time)) < 0.0011
        times.append(frame_time)
        fragments.append(int(frame.fragment_number))
    assert all(b > a for a, b in itertools.pairwise(times)), "frame times must increase"
    assert fragments == sorted(fragments)
    return times


def _live(start_pts: float, seconds: float, first_arrival: float, delay: float = 0.05,
          rate: float = 25, gop: int = 25) -> list[tuple[float, float, bool]]:
    """Frames arriving in real time, ``delay`` after their capture."""
    n = int(seconds * rate)
    return [(start_pts + i / rate, first_arrival + i / rate + delay, i % gop == 0)
            for i in range(n)]


def test_steady_stream_keeps_its_spacing_and_gop_fragments() -> None:
    records = _run(_live(0.0, 4.0, T0))
    times = _check(records)
    assert len(records) == 20
    assert np.allclose(np.diff(times), 0.2, atol=0.0015)
    assert len({f.fragment_number for f, _ in records}) == 4  # one per GOP (1 s)
    assert all(f.offset_s < 1.0 for f, _ in records)


def test_start_up_burst_never_puts_times_in_the_future() -> None:
    # The first 2 s arrive within 40 ms (a pre-buffer dump or FFmpeg's probe), then live.
    burst = [(i / 25, T0 + i * 0.0008, i % 25 == 0) for i in range(50)]
    live = _live(2.0, 4.0, T0 + 0.04 + 0.04, delay=0.0)
    records = _run(burst + live)
    times = _check(records)
    after = [f for f, _ in records if f.producer_ts + f.offset_s > T0 + 0.1]
    assert len(after) >= 19
    assert max(f.ingest_delay_s for f in after[2:]) < 0.01  # the anchor found the live edge
    assert np.allclose(np.diff(times[-15:]), 0.2, atol=0.0015)


def test_anchor_moving_inside_a_fragment_keeps_the_fragment() -> None:
    # One 2 s GOP; the first half arrives in a burst, so the anchor moves inside it.
    frames = [(i / 25, T0 + i * 0.001, i == 0) for i in range(25)]
    frames += [(1.0 + i / 25, T0 + 0.03 + i / 25, False) for i in range(25)]
    records = _run(frames, fps=25)
    _check(records)
    assert len({f.fragment_number for f, _ in records}) == 1
    offsets = [f.offset_s for f, _ in records]
    assert offsets == sorted(offsets) and offsets[-1] < 1.0  # smaller than pts - key pts


def test_stall_shows_as_ingest_delay_and_times_still_increase() -> None:
    before = _live(0.0, 3.0, T0)
    # Frames 3.0-5.0 s are held for 2 s by the network, then arrive at once; live after.
    backlog = [(3.0 + i / 25, T0 + 5.0 + 0.05 + i * 0.001, i % 25 == 0) for i in range(50)]
    after = _live(5.0, 2.0, T0 + 5.0, delay=0.05)
    records = _run(before + backlog + after)
    _check(records)
    delays = [(f.producer_ts + f.offset_s - T0, f.ingest_delay_s) for f, _ in records]
    stalled = [d for t, d in delays if 3.0 <= t < 3.5]
    assert stalled and min(stalled) > 1.5  # the frames right after the stall were ~2 s late
    assert all(d < 0.06 for t, d in delays if t < 2.9 or t > 5.2)


def test_timeline_restart_and_reconnect_keep_times_increasing() -> None:
    clock = FrameClock()
    first = _run(_live(10.0, 2.0, T0), clock=clock)
    looped = _run(_live(0.0, 2.0, T0 + 2.0), clock=clock)  # pts back to 0: a new timeline
    clock.connected()
    reconnected = _run(_live(500.0, 2.0, T0 + 5.0), clock=clock)
    times = _check(first + looped + reconnected)
    assert len(times) == 30


def test_frames_without_timestamps_are_timed_by_arrival() -> None:
    frames = [(None, T0 + i * 0.05, i == 0) for i in range(20)]
    records = _run(frames, fps=10)
    assert len(_check(records)) >= 5


def test_camera_clock_is_used_and_never_in_the_future() -> None:
    # Camera clock 0.2 s behind ours: frame times are the camera's.
    records = _run(_live(0.0, 2.0, T0, delay=0.05), camera_base=T0 - 0.2)
    _check(records)
    assert all(f.camera_clock for f, _ in records)
    assert all(abs(f.ingest_delay_s - 0.25) < 0.002 for f, _ in records)
    # A camera clock ahead of ours is cut back to the decode moment.
    ahead = _run(_live(0.0, 2.0, T0, delay=0.05), camera_base=T0 + 3.0)
    _check(ahead)
    assert all(f.ingest_delay_s < 0.002 for f, _ in ahead)


def test_camera_clock_that_steps_back_is_dropped_for_the_connection() -> None:
    clock = FrameClock()
    first = _run(_live(0.0, 2.0, T0), clock=clock, camera_base=T0)
    clock.connected()
    # After a reconnect the camera's clock is 30 s behind what was reported: not used.
    later = _run(_live(0.0, 2.0, T0 + 3.0), clock=clock, camera_base=T0 - 30.0)
    _check(first + later)
    assert not any(f.camera_clock for f, _ in later) and len(later) == 10
    clock.connected()
    # Within the slack it is used; frames held back are not turned into records twice.
    small = _run(_live(0.0, 2.0, T0 + 6.0), clock=clock,
                 camera_base=T0 + 6.0 - CAMERA_SLACK_S / 2)
    _check(first + later + small)
    assert small and all(f.camera_clock for f, _ in small)


_frame_steps = st.lists(
    st.tuples(st.floats(-3.0, 3.0), st.floats(0.0, 0.5), st.booleans(), st.booleans()),
    min_size=1, max_size=120)


@settings(max_examples=200, deadline=None)
@given(_frame_steps, st.one_of(st.none(), st.floats(-5.0, 5.0)))
def test_invariants_hold_for_any_arrival_pattern(steps: list, camera: float | None) -> None:
    """Random presentation jumps (forward, back), arrival gaps, key frames, reconnects."""
    clock, pts, now = FrameClock(), 0.0, T0
    records = []
    for dpts, gap, key, reconnect in steps:
        if reconnect:
            clock.connected()
        pts = max(0.0, pts + dpts * (0.05 if abs(dpts) < 2.5 else 100))
        now += gap
        base = None if camera is None else T0 + camera
        records += _run([(pts, now, key)], fps=0, clock=clock, camera_base=base)
    _check(records)


def test_reconnection_uses_the_known_camera_offset_until_its_own_report() -> None:
    clock = FrameClock()
    first = _run(_live(0.0, 2.0, T0, delay=0.05), clock=clock, camera_base=T0 - 30.0)
    assert clock.knows_camera
    clock.connected()
    # No sender report yet on the new connection: timed as arrival + the known offset.
    early = _run(_live(0.0, 1.0, T0 + 4.0, delay=0.05), clock=clock)
    late = _run(_live(1.0, 1.0, T0 + 5.0, delay=0.05), clock=clock,
                camera_base=T0 + 4.0 - 30.0)
    _check(first + early + late)
    assert all(f.camera_clock and 30.0 < f.ingest_delay_s < 30.1 for f, _ in early + late)
