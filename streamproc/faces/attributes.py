"""Pose and quality estimates for a detected face (Rekognition's default attributes).

The packs have no pose or quality heads: pose comes from the landmarks
(:mod:`streamproc.faces.pose`), quality from pixel statistics of the face box. Both are
approximations, documented as such in docs/api.md.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamproc.faces.pose import estimate_pose
from streamproc.faces.types import Face, Quality

# Laplacian-to-intensity variance ratio at which Sharpness reaches ~63 (1 - 1/e) of 100.
# In-focus faces of shared/data read 0.07-0.75, the same faces blurred by a Gaussian of a
# 15th of the face width 0.004-0.02 (docs/models.md: Quality filter).
_SHARPNESS_SCALE = 0.1


def estimate_quality(image: np.ndarray, box: np.ndarray) -> Quality:
    """Brightness = mean luma of the face box; Sharpness = its relative detail; both 0-100.

    Sharpness is the variance of the Laplacian divided by the variance of the intensities:
    the share of the face's contrast that lies in fine detail. Dividing by the face's own
    contrast keeps a dark or flat-lit face from reading as blurred (LOW_BRIGHTNESS is the
    reason for those).
    """
    height, width = image.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(math.ceil(box[2])), width), min(int(math.ceil(box[3])), height)
    if x2 <= x1 or y2 <= y1:
        return Quality(brightness=0.0, sharpness=0.0)
    gray = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(np.float64)
    brightness = float(gray.mean()) / 255.0 * 100.0
    if min(gray.shape) > 64:
        # Judge sharpness at a fixed scale so big faces are not penalised for pixel count.
        gray = np.asarray(cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA), np.float64)
    ratio = float(cv2.Laplacian(gray, cv2.CV_64F).var()) / max(float(gray.var()), 1e-6)
    sharpness = 100.0 * (1.0 - math.exp(-ratio / _SHARPNESS_SCALE))
    return Quality(brightness=round(brightness, 4), sharpness=round(sharpness, 4))


def annotate(image: np.ndarray, face: Face) -> Face:
    """Fill in pose and quality on ``face`` (in place) and return it."""
    height, width = image.shape[:2]
    face.pose = estimate_pose(face.landmarks, (width, height))
    face.quality = estimate_quality(image, face.box)
    return face
