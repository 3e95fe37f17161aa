"""Pose and quality estimates for a detected face (Rekognition's default attributes).

The packs have no pose or quality heads, so both come from cheap geometry and pixel
statistics. They are approximations, documented as such in the README.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamproc.faces.types import Face, Pose, Quality

# Variance of the Laplacian at which Sharpness reaches ~63 (1 - 1/e) on a 0-100 scale.
_SHARPNESS_SCALE = 150.0


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Roll from the eye line, yaw and pitch from where the nose sits between eyes and mouth."""
    eye_l, eye_r, nose, mouth_l, mouth_r = landmarks.astype(np.float64)
    dx, dy = eye_r - eye_l
    roll = math.degrees(math.atan2(dy, dx))
    eye_mid = (eye_l + eye_r) / 2
    mouth_mid = (mouth_l + mouth_r) / 2
    eye_dist = max(float(np.hypot(dx, dy)), 1e-6)
    # Rotate into the face's own frame so that roll does not leak into yaw/pitch.
    c, s = math.cos(-math.radians(roll)), math.sin(-math.radians(roll))
    rot = np.array([[c, -s], [s, c]])
    nose_f = rot @ (nose - eye_mid)
    mouth_f = rot @ (mouth_mid - eye_mid)
    yaw = math.degrees(math.asin(float(np.clip(2.0 * nose_f[0] / eye_dist, -1.0, 1.0))))
    face_h = max(float(mouth_f[1]), 1e-6)
    # A frontal nose tip sits ~60% of the way from the eye line to the mouth (mean over
    # the sample photos); each 0.1 off that is read as ~12 degrees of pitch.
    pitch = float(np.clip((nose_f[1] / face_h - 0.60) * 120.0, -90.0, 90.0))
    return Pose(roll=round(roll, 4), yaw=round(yaw, 4), pitch=round(-pitch, 4))


def estimate_quality(image: np.ndarray, box: np.ndarray) -> Quality:
    """Brightness = mean luma of the face box; sharpness = Laplacian variance, both 0-100."""
    height, width = image.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(math.ceil(box[2])), width), min(int(math.ceil(box[3])), height)
    if x2 <= x1 or y2 <= y1:
        return Quality(brightness=0.0, sharpness=0.0)
    gray = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    brightness = float(gray.mean()) / 255.0 * 100.0
    if min(gray.shape) > 64:
        # Judge sharpness at a fixed scale so big faces are not penalised for pixel count.
        gray = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    sharpness = 100.0 * (1.0 - math.exp(-variance / _SHARPNESS_SCALE))
    return Quality(brightness=round(brightness, 4), sharpness=round(sharpness, 4))


def annotate(image: np.ndarray, face: Face) -> Face:
    """Fill in pose and quality on ``face`` (in place) and return it."""
    face.pose = estimate_pose(face.landmarks)
    face.quality = estimate_quality(image, face.box)
    return face
