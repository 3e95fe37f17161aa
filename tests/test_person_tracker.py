"""The person tracker on synthetic boxes: crossing, an occlusion gap, re-entry, false boxes.

Each scene is a list of frames, each frame a list of (ground-truth person, box); the tracker
sees the boxes only. :func:`id_switches` counts, per real person, how often the Index given
to it changes from one frame where it has one to the next (a fragmentation counts too): the
tracker's ID switches, printed by each test and asserted zero where it must be.
"""

from __future__ import annotations

import numpy as np
import pytest

from streamproc.dataplane.stored.person_tracker import (
    PersonTrack,
    PersonTracker,
    TrackerSettings,
    iou_matrix,
)

Scene = list[list[tuple[str, tuple[float, float, float, float]]]]


def box(cx: float, cy: float, w: float = 0.1, h: float = 0.3) -> tuple[float, float, float, float]:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def run(scene: Scene, settings: TrackerSettings | None = None) -> list[dict[str, int | None]]:
    """Each frame's Index per ground-truth person (None: tracked but not yet confirmed)."""
    tracker = PersonTracker(settings or TrackerSettings())
    out = []
    for frame in scene:
        tracks = tracker.update(np.array([b for _, b in frame]).reshape(-1, 4))
        out.append({gt: t.index for (gt, _), t in zip(frame, tracks, strict=True)})
    return out


def id_switches(assigned: list[dict[str, int | None]]) -> int:
    """Changes of a real person's Index between consecutive frames where it has one."""
    last: dict[str, int] = {}
    switches = 0
    for frame in assigned:
        for gt, index in frame.items():
            if index is None:
                continue
            if gt in last and last[gt] != index:
                switches += 1
            last[gt] = index
    return switches


def indices_of(assigned: list[dict[str, int | None]], gt: str) -> set[int]:
    return {f[gt] for f in assigned if f.get(gt) is not None}  # type: ignore[misc]


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], dtype=np.float64)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], dtype=np.float64)
    assert iou_matrix(a, b) == pytest.approx(np.array([[1 / 7, 1, 0], [0, 0.25, 0]]))


def test_indices_are_stable_and_in_order_of_first_appearance() -> None:
    scene: Scene = [[("a", box(0.2 + 0.01 * i, 0.5))] +
                    ([("b", box(0.7, 0.5))] if i >= 3 else []) for i in range(10)]
    assigned = run(scene)
    print("ID switches (stable):", id_switches(assigned))
    assert id_switches(assigned) == 0
    assert indices_of(assigned, "a") == {0} and indices_of(assigned, "b") == {1}
    assert assigned[0]["a"] is None and assigned[1]["a"] == 0  # min_hits 2


def test_two_people_crossing_keep_their_indices() -> None:
    # Same size, walking towards each other and through: at the crossing each box overlaps
    # both tracks; the predicted boxes (velocity) keep the assignment right.
    scene: Scene = [[("left", box(0.2 + 0.05 * i, 0.5)), ("right", box(0.8 - 0.05 * i, 0.5))]
                    for i in range(13)]
    assigned = run(scene)
    print("ID switches (crossing):", id_switches(assigned))
    assert id_switches(assigned) == 0
    assert indices_of(assigned, "left") == {0} and indices_of(assigned, "right") == {1}


def test_crossing_without_motion_prediction_would_switch() -> None:
    """The scene above is a real test: with a tracker blind to motion, the indices swap."""
    scene: Scene = [[("left", box(0.2 + 0.05 * i, 0.5)), ("right", box(0.8 - 0.05 * i, 0.5))]
                    for i in range(13)]
    tracker = PersonTracker(TrackerSettings())
    swapped = 0
    for frame in scene:
        tracks = tracker.update(np.array([b for _, b in frame]))
        for t in tracks:
            t.velocity[:] = 0  # no prediction
        order = [t.track_id for t in tracks]
        swapped += order != sorted(order)
    assert swapped > 0


def test_a_short_occlusion_keeps_the_index() -> None:
    # "a" walks right and is hidden for 3 sampled frames (IoU 0 when it shows again: it
    # moved a box width meanwhile); "b" stays in view.
    frames: Scene = []
    for i in range(12):
        frame = [("b", box(0.85, 0.5))]
        if not 4 <= i <= 6:
            frame.append(("a", box(0.1 + 0.04 * i, 0.5)))
        frames.append(frame)
    assigned = run(frames)
    print("ID switches (occlusion):", id_switches(assigned))
    assert id_switches(assigned) == 0
    assert len(indices_of(assigned, "a")) == 1
    assert len(indices_of(assigned, "a") | indices_of(assigned, "b")) == 2


@pytest.mark.parametrize(("reid_distance", "indices"), [(0.6, 1), (0.1, 2)])
def test_re_identification_by_position_after_an_occlusion(reid_distance: float,
                                                          indices: int) -> None:
    # Standing still, hidden for 2 frames, seen again 0.12 to the right: no overlap with
    # where it was (box width 0.1), 0.4 of its height away. Only the position pass joins it.
    frames: Scene = [[("a", box(0.3, 0.5))]] * 4 + [[], []] + [[("a", box(0.42, 0.5))]] * 3
    assigned = run(frames, TrackerSettings(reid_distance=reid_distance))
    print("ID switches (re-id, reid_distance", reid_distance, "):", id_switches(assigned))
    assert len(indices_of(assigned, "a")) == indices


@pytest.mark.parametrize(("gap", "indices"), [(5, {0}), (6, {0, 1}), (7, {0, 1})])
def test_max_misses_is_the_longest_gap_a_track_survives(gap: int, indices: set[int]) -> None:
    # Gone for exactly max_misses sampled frames: the same person; one more: re-entry starts
    # a new track (the boundary both ways, so `<` or `max_misses + 1` would fail).
    frames: Scene = [[("a", box(0.3, 0.5))] if not 3 <= i < 3 + gap else [] for i in range(14)]
    assert indices_of(run(frames, TrackerSettings(max_misses=5)), "a") == indices


@pytest.mark.parametrize(("speed", "seated"), [(0.02, {1, 2}), (0.06, {1})])
def test_walking_past_a_hidden_seated_person_keeps_both_indices(speed: float,
                                                                 seated: set[int]) -> None:
    # A person seated at x=0.5, a same-size walker passing in front; the seated box is
    # missing while the walker is within 0.08 of it. The walker's box lands on the seated
    # person's last box: in one assignment over all tracks the lost seated track wins it
    # (IoU 1 against the walker's ~0.9), the walker takes the seated Index. Live tracks are
    # matched first. At 0.02 the seated person is hidden 8 sampled frames, more than
    # max_misses: coming back, they are a new person (Index 2), never the walker's.
    frames: Scene = []
    for i in range(round(0.6 / speed) + 1):
        wx = 0.2 + speed * i
        frame = [("walker", box(wx, 0.5))]
        if abs(wx - 0.5) >= 0.08:
            frame.append(("seated", box(0.5, 0.5)))
        frames.append(frame)
    assigned = run(frames)
    print("ID switches (walker past hidden, speed", speed, "):", id_switches(assigned))
    assert indices_of(assigned, "walker") == {0}
    assert indices_of(assigned, "seated") == seated


def _hidden_walk(back_offset: float) -> Scene:
    """Walks right 0.05 a frame, hidden 3 frames, back ``back_offset`` past its path."""
    frames: Scene = []
    for i in range(14):
        if not 6 <= i <= 8:
            shift = back_offset if i > 8 else 0.0
            frames.append([("a", box(0.1 + 0.05 * i + shift, 0.5))])
        else:
            frames.append([])
    return frames


def test_someone_moving_while_hidden_is_found_where_predicted() -> None:
    # Back 0.2 (two thirds of its height) from where it was last seen: without the
    # velocity the prediction is that old box, no overlap and too far for re-identification.
    assert indices_of(run(_hidden_walk(0.0)), "a") == {0}


@pytest.mark.parametrize(("reid_distance", "indices"), [(0.6, {0}), (0.1, {0, 1})])
def test_re_identification_by_position_of_someone_moving_while_hidden(
        reid_distance: float, indices: set[int]) -> None:
    # Back 0.07 past its path, about 0.08 ahead of its predicted box (the smoothed velocity
    # lags a little): IoU 0.14, below min_iou, 0.25 heights away. Only the position pass
    # joins it, and only measured from the predicted box (its last box is 0.9 heights off).
    assigned = run(_hidden_walk(0.07), TrackerSettings(reid_distance=reid_distance))
    assert indices_of(assigned, "a") == indices


def test_velocity_is_the_smoothed_step_per_sampled_frame() -> None:
    track = PersonTrack(0, np.array([0.1, 0.2, 0.2, 0.5]), np.zeros(4))
    track.observe(np.array([0.14, 0.2, 0.24, 0.5]))  # +0.04 in one frame
    assert track.velocity == pytest.approx([0.02, 0, 0.02, 0])  # half the step: smoothed
    track.misses = 2
    assert track.predicted() == pytest.approx([0.2, 0.2, 0.3, 0.5])  # 3 frames on
    track.observe(np.array([0.26, 0.2, 0.36, 0.5]))  # +0.12 over 3 frames: 0.04 a frame
    assert track.velocity == pytest.approx([0.03, 0, 0.03, 0])
    assert track.misses == 0 and track.hits == 3


def test_re_identification_refuses_a_different_size() -> None:
    # A box where the lost track was, but twice its height: someone else (nearer the camera).
    frames: Scene = [[("a", box(0.3, 0.5))]] * 3 + [[]] + [[("c", box(0.3, 0.5, 0.2, 0.6))]] * 3
    assigned = run(frames)
    assert indices_of(assigned, "a") == {0} and indices_of(assigned, "c") == {1}


def test_a_one_frame_false_box_gets_no_index() -> None:
    frames: Scene = [[("a", box(0.3, 0.5))] + ([("ghost", box(0.8, 0.2))] if i == 2 else [])
                     for i in range(6)]
    assigned = run(frames)
    assert indices_of(assigned, "ghost") == set()
    assert indices_of(assigned, "a") == {0}


def test_no_boxes() -> None:
    assert PersonTracker(TrackerSettings()).update(np.zeros((0, 4))) == []
