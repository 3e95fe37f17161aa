"""QualityFilter at its exact limits: a face at a limit passes, just past it fails."""

from __future__ import annotations

import pytest
from test_quality import LEVELS, ORDER, good_face

from streamproc.collections.quality import quality_reasons
from streamproc.faces.types import Pose, Quality


@pytest.mark.parametrize("level", ORDER)
def test_a_face_exactly_at_every_limit_passes(level: str) -> None:
    lv = LEVELS[level]
    edge = good_face(side=lv.min_face_px, confidence=lv.min_confidence,
                     quality=Quality(lv.min_brightness, lv.min_sharpness))
    assert quality_reasons(edge, lv) == []
    for pose in (Pose(0.0, lv.max_abs_yaw, 0.0), Pose(0.0, -lv.max_abs_yaw, 0.0),
                 Pose(0.0, 0.0, lv.max_pitch_up), Pose(0.0, 0.0, -lv.max_pitch_down)):
        assert quality_reasons(good_face(pose=pose), lv) == [], pose


@pytest.mark.parametrize("level", ORDER)
def test_the_smaller_side_of_the_box_is_what_counts(level: str) -> None:
    lv = LEVELS[level]
    wide = good_face(side=lv.min_face_px * 3)
    wide.box[3] = wide.box[1] + lv.min_face_px - 1  # tall enough? no: too short
    assert quality_reasons(wide, lv) == ["SMALL_BOUNDING_BOX", "LOW_FACE_QUALITY"]
    narrow = good_face(side=lv.min_face_px - 1)
    narrow.box[3] = narrow.box[1] + lv.min_face_px * 3
    assert quality_reasons(narrow, lv) == ["SMALL_BOUNDING_BOX", "LOW_FACE_QUALITY"]


def test_faces_without_pose_or_quality_are_judged_on_the_rest() -> None:
    lv = LEVELS["HIGH"]
    assert quality_reasons(good_face(pose=None, quality=None), lv) == []
    assert quality_reasons(good_face(pose=None, quality=None, confidence=1.0), lv) == [
        "LOW_CONFIDENCE", "LOW_FACE_QUALITY"]
