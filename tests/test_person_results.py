"""The person-tracking builder: Persons rows held until a track is confirmed, faces paired."""

from __future__ import annotations

import numpy as np

from streamproc.dataplane.stored.person_results import PersonResults, faces_of
from streamproc.dataplane.stored.person_stage import PersonAnalysis
from streamproc.dataplane.stored.person_tracker import TrackerSettings
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.faces.types import Face
from streamproc.labels.types import Box, Instance

W, H = 480, 270


def frame(ts: int) -> StoredFrame:
    return StoredFrame(np.zeros((H, W, 3), np.uint8), ts, ts / 1000)


def person(left: float, top: float = 0.2, conf: float = 90.0) -> Instance:
    return Instance(Box(left, top, 0.1, 0.6), conf)


def face(x1: float, y1: float, size: float = 20.0) -> Face:
    return Face(np.array([x1, y1, x1 + size, y1 + size], np.float32), 0.99,
                np.full((5, 2), x1 + size / 2, np.float32), confidence=99.5)


def test_rows_are_held_until_the_track_is_confirmed_then_written_with_its_index() -> None:
    builder = PersonResults(TrackerSettings(min_hits=3), 40.0)
    seen = [builder.build(frame(ts), PersonAnalysis((person(0.2),), ())) for ts in (0, 200, 400)]
    assert seen[0] == [] and seen[1] == []
    assert [(r.timestamp_ms, r.person) for r in seen[2]] == [(0, 0), (200, 0), (400, 0)]
    row = seen[2][0].item
    assert row == {"Timestamp": 0, "Person": {"Index": 0, "BoundingBox": {
        "Width": 0.1, "Height": 0.6, "Left": 0.2, "Top": 0.2}}}
    nxt = builder.build(frame(600), PersonAnalysis((person(0.2),), ()))
    assert [(r.timestamp_ms, r.person) for r in nxt] == [(600, 0)]  # confirmed: at once


def test_an_unconfirmed_track_is_dropped_when_it_ends() -> None:
    builder = PersonResults(TrackerSettings(min_hits=2, max_misses=1), 40.0)
    out = builder.build(frame(0), PersonAnalysis((person(0.2), person(0.7)), ()))
    for ts in (200, 400, 600):
        out += builder.build(frame(ts), PersonAnalysis((person(0.2),), ()))
    assert {r.person for r in out} == {0}
    assert {round(r.item["Person"]["BoundingBox"]["Left"], 3) for r in out} == {0.2}
    assert builder._held == {}  # noqa: SLF001 - the ghost's row is gone, not kept forever


def test_boxes_below_min_confidence_are_not_tracked() -> None:
    builder = PersonResults(TrackerSettings(min_hits=1), 40.0)
    out = builder.build(frame(0), PersonAnalysis((person(0.2, conf=39.9), person(0.6)), ()))
    assert [r.item["Person"]["BoundingBox"]["Left"] for r in out] == [0.6]


def test_a_face_inside_a_person_is_its_face() -> None:
    builder = PersonResults(TrackerSettings(min_hits=1), 40.0)
    inside = face(0.25 * W - 10, 0.25 * H)  # centred in the box of person(0.2)
    outside = face(0.5 * W, 0.1 * H)
    out = builder.build(frame(0), PersonAnalysis((person(0.2), person(0.7)), (outside, inside)))
    by_left = {r.item["Person"]["BoundingBox"]["Left"]: r.item["Person"] for r in out}
    assert "Face" not in by_left[0.7]
    detail = by_left[0.2]["Face"]
    assert detail["Confidence"] == 99.5
    assert abs(detail["BoundingBox"]["Left"] - (0.25 * W - 10) / W) < 1e-4


def test_a_face_goes_to_one_person_the_smaller_one() -> None:
    big = np.array([0.1, 0.1, 0.6, 0.9])
    small = np.array([0.3, 0.2, 0.45, 0.8])
    f = face(0.35 * W, 0.25 * H)
    assert faces_of([big, small], (f,), W, H) == [None, f]


def test_a_face_mostly_outside_the_box_is_not_the_persons() -> None:
    # The centre is inside, but the face is much larger than the box: the area rule
    # refuses it (the same face is the person's in a box that holds it).
    tight = np.array([0.30, 0.30, 0.32, 0.32])
    f = face(0.31 * W - 30, 0.31 * H - 30, size=60)
    cx, cy = (f.box[0] + f.box[2]) / 2 / W, (f.box[1] + f.box[3]) / 2 / H
    assert 0.30 <= cx <= 0.32 and 0.30 <= cy <= 0.32
    assert faces_of([tight], (f,), W, H) == [None]
    assert faces_of([np.array([0.2, 0.1, 0.5, 0.6])], (f,), W, H) == [f]
