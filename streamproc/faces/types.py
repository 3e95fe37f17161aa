"""Plain data carried between the face pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees (Rekognition's signs: see :mod:`streamproc.faces.pose`)."""

    roll: float
    yaw: float
    pitch: float
    solved: bool = True  # False: the landmarks fit no pose of the mean face (a fallback)


@dataclass(frozen=True)
class Quality:
    """Rekognition-style quality figures, 0-100."""

    brightness: float
    sharpness: float


@dataclass
class Face:
    """One detected face in pixel coordinates of its image."""

    box: np.ndarray  # x1, y1, x2, y2
    score: float  # detector score, 0..1 (what the detection threshold applies to)
    landmarks: np.ndarray  # (5, 2): eyeLeft, eyeRight, nose, mouthLeft, mouthRight
    pose: Pose | None = None
    quality: Quality | None = None
    # Rekognition's Confidence (0-100), the score through the pack's knots; set by FaceEngine.
    confidence: float = 0.0
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


class NotEmbedded(RuntimeError):
    """A face used as a vector before ``FaceEngine.embed`` ran on it: a bug in the caller."""


def embedding_of(face: Face) -> np.ndarray:
    """The face's embedding, which every face has once it is embedded.

    The one check for the API's faces (compare, search, index) and the analyser's live
    ones. Neither caller catches it: the API answers InternalServerError, and a processor's
    session ends with "analysis: NotEmbedded: ...", as for any other bug.
    """
    if face.embedding is None:
        msg = "a face was used before it was embedded"
        raise NotEmbedded(msg)
    return face.embedding
