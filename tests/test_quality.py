"""QualityFilter levels: every Reason on synthetic faces, and the thresholds on real faces."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from facedata import (
    BOTH,
    MALE,
    NEAR_PROFILE_LEFT,
    PORTRAITS,
    THREE_QUARTER_LEFT,
    THREE_QUARTER_RIGHT,
    female,
    frames,
    group,
    only_face,
    portrait,
)

from streamproc.collections.quality import quality_reasons
from streamproc.config import QualityLevel, default_quality
from streamproc.faces.attributes import estimate_quality
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face, Pose, Quality

LEVELS = default_quality()
ORDER = ("LOW", "AUTO", "MEDIUM", "HIGH")


def good_face(**change: object) -> Face:
    """A synthetic face every level accepts; ``change`` overrides one attribute."""
    side = float(change.pop("side", 120.0))
    values: dict = {"box": np.array([10.0, 10.0, 10.0 + side, 10.0 + side * 1.2]),
                    "score": 0.85, "landmarks": np.zeros((5, 2)), "confidence": 99.9,
                    "pose": Pose(roll=0.0, yaw=0.0, pitch=0.0),
                    "quality": Quality(brightness=50.0, sharpness=90.0)}
    values.update(change)
    return Face(**values)


@pytest.mark.parametrize("level", ORDER)
def test_a_good_face_passes_every_level_and_none_filters_nothing(level: str) -> None:
    assert quality_reasons(good_face(), LEVELS[level]) == []
    awful = good_face(side=5, confidence=1.0, pose=Pose(0, 90, 80),
                      quality=Quality(brightness=0, sharpness=0))
    assert quality_reasons(awful, None) == []


CASES = [  # (attribute change that just fails the level, the reason)
    (lambda lv: {"confidence": lv.min_confidence - 0.5}, "LOW_CONFIDENCE"),
    (lambda lv: {"side": lv.min_face_px - 1}, "SMALL_BOUNDING_BOX"),
    (lambda lv: {"pose": Pose(0.0, lv.max_abs_yaw + 1, 0.0)}, "EXTREME_POSE"),
    (lambda lv: {"pose": Pose(0.0, -lv.max_abs_yaw - 1, 0.0)}, "EXTREME_POSE"),
    (lambda lv: {"pose": Pose(0.0, 0.0, -lv.max_pitch_down - 1)}, "EXTREME_POSE"),
    (lambda lv: {"pose": Pose(0.0, 0.0, lv.max_pitch_up + 1)}, "EXTREME_POSE"),
    (lambda lv: {"pose": Pose(0.0, 0.0, 0.0, solved=False)}, "EXTREME_POSE"),
    (lambda lv: {"quality": Quality(lv.min_brightness - 1, 90.0)}, "LOW_BRIGHTNESS"),
    (lambda lv: {"quality": Quality(50.0, lv.min_sharpness - 1)}, "LOW_SHARPNESS"),
]


@pytest.mark.parametrize("level", ORDER)
@pytest.mark.parametrize(("change", "reason"), CASES)
def test_each_reason_is_reported_alone_with_low_face_quality(level: str, change, reason) -> None:
    lv = LEVELS[level]
    assert quality_reasons(good_face(**change(lv)), lv) == [reason, "LOW_FACE_QUALITY"]


def test_roll_never_matters_and_reasons_accumulate() -> None:
    auto = LEVELS["AUTO"]
    assert quality_reasons(good_face(pose=Pose(170.0, 0.0, 0.0)), auto) == []
    bad = good_face(side=10, confidence=10.0, pose=Pose(0.0, 80.0, 0.0),
                    quality=Quality(brightness=1.0, sharpness=1.0))
    assert quality_reasons(bad, auto) == ["LOW_CONFIDENCE", "SMALL_BOUNDING_BOX",
                                          "EXTREME_POSE", "LOW_BRIGHTNESS", "LOW_SHARPNESS",
                                          "LOW_FACE_QUALITY"]


def test_levels_get_stricter_from_low_to_high() -> None:
    for looser, stricter in itertools.pairwise(ORDER):
        a, b = LEVELS[looser], LEVELS[stricter]
        for name in ("min_confidence", "min_face_px", "min_brightness", "min_sharpness"):
            assert getattr(a, name) <= getattr(b, name), (looser, stricter, name)
        for name in ("max_abs_yaw", "max_pitch_down", "max_pitch_up"):
            assert getattr(a, name) >= getattr(b, name), (looser, stricter, name)
    medium = LEVELS["MEDIUM"]  # Rekognition's guidance for faces to index
    assert (medium.max_abs_yaw, medium.max_pitch_down, medium.max_pitch_up) == (45, 30, 45)


# ---- the thresholds on real faces -----------------------------------------------------

def _reasons(engine: FaceEngine, image: np.ndarray, level: str) -> list[str]:
    return quality_reasons(only_face(engine, image), LEVELS[level])


def test_auto_indexes_usable_faces_up_to_three_quarter_view(engine: FaceEngine) -> None:
    images = [portrait(n) for n in PORTRAITS] + list(frames(MALE.name)[::6])
    images += [female(i) for i in (*THREE_QUARTER_LEFT, *THREE_QUARTER_RIGHT, 9, 19)]
    images += list(frames(BOTH.name)[::6])
    for image in images:
        for face in engine.detect(image):
            assert quality_reasons(face, LEVELS["AUTO"]) == [], face.pose
    assert all(quality_reasons(f, LEVELS["AUTO"]) == [] for f in engine.detect(group()))
    assert len(engine.detect(group())) == 6


def test_near_profile_faces_are_extreme_pose_at_medium_and_high(engine: FaceEngine) -> None:
    for i in NEAR_PROFILE_LEFT:
        for level in ("MEDIUM", "HIGH"):
            assert "EXTREME_POSE" in _reasons(engine, female(i), level)
        assert "EXTREME_POSE" not in _reasons(engine, female(i), "LOW")


def _blur(image: np.ndarray, face: Face, fraction: int) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), face.width / fraction)


def test_blurred_faces_are_low_sharpness(engine: FaceEngine) -> None:
    for name in PORTRAITS:
        image = portrait(name)
        face = only_face(engine, image)
        heavy = _reasons(engine, _blur(image, face, 15), "AUTO")
        assert "LOW_SHARPNESS" in heavy, name
        assert "LOW_SHARPNESS" in _reasons(engine, _blur(image, face, 30), "HIGH"), name
    # The softest in-focus faces of the data (480x270 video) still pass AUTO and MEDIUM.
    for image in (female(9), frames(BOTH.name)[20], frames(MALE.name)[0]):
        assert "LOW_SHARPNESS" not in _reasons(engine, image, "MEDIUM")


def test_dark_faces_are_low_brightness_not_low_sharpness(engine: FaceEngine) -> None:
    for name in PORTRAITS:
        image = portrait(name)
        dark = (image * 0.1).astype(np.uint8)
        reasons = _reasons(engine, dark, "AUTO")
        assert "LOW_BRIGHTNESS" in reasons and "LOW_SHARPNESS" not in reasons, (name, reasons)
        dim = (image * 0.4).astype(np.uint8)
        assert _reasons(engine, dim, "AUTO") == [], name


def test_small_faces_are_small_bounding_box(engine: FaceEngine) -> None:
    for name in PORTRAITS:
        image = portrait(name)
        face = only_face(engine, image)
        scale = 30 / face.width
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        assert "SMALL_BOUNDING_BOX" in _reasons(engine, small, "AUTO"), name
        assert "SMALL_BOUNDING_BOX" not in _reasons(engine, small, "LOW"), name


def test_half_hidden_faces_are_low_confidence(engine: FaceEngine) -> None:
    refused = 0
    for name in PORTRAITS:
        image = portrait(name)
        x1, y1, x2, y2 = (int(v) for v in only_face(engine, image).box)
        image[max(y1 - 20, 0):y2 + 20, max(x1 - 20, 0):(x1 + x2) // 2] = 128
        faces = engine.detect(image)
        if faces and "LOW_CONFIDENCE" in quality_reasons(faces[0], LEVELS["AUTO"]):
            refused += 1
    assert refused >= len(PORTRAITS) // 2


def test_sharpness_ignores_brightness_and_follows_blur() -> None:
    squares = (np.indices((128, 128)) // 32).sum(axis=0) % 2  # a few sharp edges
    image = np.repeat((squares * 160 + 40).astype(np.uint8)[:, :, None], 3, axis=2)
    box = np.array([0.0, 0.0, 128.0, 128.0])
    bright = estimate_quality(image, box)
    dark = estimate_quality((image * 0.2).astype(np.uint8), box)
    blurred = estimate_quality(cv2.GaussianBlur(image, (0, 0), 4.0), box)
    assert dark.brightness < bright.brightness / 4
    assert dark.sharpness == pytest.approx(bright.sharpness, abs=10)
    assert blurred.sharpness < bright.sharpness / 2
    assert estimate_quality(image, np.array([50.0, 50.0, 50.0, 60.0])) == Quality(0.0, 0.0)


def test_quality_levels_are_configurable() -> None:
    from streamproc.config import load_config

    config = load_config(None, {"models.quality": {"AUTO": {
        "min_confidence": 0, "min_face_px": 0, "min_brightness": 0, "min_sharpness": 0,
        "max_abs_yaw": 180, "max_pitch_down": 180, "max_pitch_up": 180}}})
    assert isinstance(config.models.quality["AUTO"], QualityLevel)
    assert quality_reasons(good_face(pose=Pose(0, 89, 0)), config.models.quality["AUTO"]) == []
    with pytest.raises(ValueError, match="max_abs_pitch"):
        load_config(None, {"models.quality": {"AUTO": {**LEVELS["AUTO"].model_dump(),
                                                       "max_abs_pitch": 30}}})
