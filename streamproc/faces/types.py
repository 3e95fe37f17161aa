"""Plain data carried between the face pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees."""

    roll: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class Quality:
    """Rekognition-style quality figures, 0-100."""

    brightness: float
    sharpness: float


@dataclass
class Face:
    """One detected face in pixel coordinates of its image."""

    box: np.ndarray  # x1, y1, x2, y2
    score: float  # detector score, 0..1
    landmarks: np.ndarray  # (5, 2): eyeLeft, eyeRight, nose, mouthLeft, mouthRight
    pose: Pose | None = None
    quality: Quality | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return max(self.width, 0.0) * max(self.height, 0.0)
