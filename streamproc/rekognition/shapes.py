"""Domain objects -> Rekognition wire dicts (absent values are omitted, never null)."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamproc.faces.types import Face
from streamproc.rekognition.constants import UserStatus
from streamproc.storage.collections import StoredFace
from streamproc.storage.usertable import UserRecord

LANDMARK_TYPES = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")


def _r(value: float) -> float:
    return round(float(value), 6)


def bounding_box(box: np.ndarray, width: int, height: int) -> dict[str, float]:
    """Pixel box (x1, y1, x2, y2) -> BoundingBox as ratios of the image size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"Width": _r((x2 - x1) / width), "Height": _r((y2 - y1) / height),
            "Left": _r(x1 / width), "Top": _r(y1 / height)}


def confidence(face: Face) -> float:
    """Confidence (0-100) as the face engine calibrated it from the detector score."""
    return _r(face.confidence)


def face_detail(face: Face, width: int, height: int) -> dict[str, Any]:
    """FaceDetail with Rekognition's default attribute set."""
    detail: dict[str, Any] = {
        "BoundingBox": bounding_box(face.box, width, height),
        "Landmarks": [{"Type": name, "X": _r(x / width), "Y": _r(y / height)} for name, (x, y)
                      in zip(LANDMARK_TYPES, face.landmarks.tolist(), strict=True)],
        "Confidence": confidence(face),
    }
    if face.pose is not None:
        detail["Pose"] = {"Roll": face.pose.roll, "Yaw": face.pose.yaw, "Pitch": face.pose.pitch}
    if face.quality is not None:
        detail["Quality"] = {"Brightness": face.quality.brightness,
                             "Sharpness": face.quality.sharpness}
    return detail


# ComparedFace: FaceDetail's default attributes less what it has no place for.
_COMPARED = ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality")


def compared_face(face: Face, width: int, height: int) -> dict[str, Any]:
    """A ``ComparedFace`` (CompareFaces' faces, RecognizeCelebrities' faces)."""
    detail = face_detail(face, width, height)
    return {k: detail[k] for k in _COMPARED if k in detail}


def stored_face(face: StoredFace, model_version: str) -> dict[str, Any]:
    """The collection ``Face`` structure."""
    out: dict[str, Any] = {"FaceId": face.face_id, "BoundingBox": face.bbox,
                           "ImageId": face.image_id, "Confidence": face.confidence,
                           "IndexFacesModelVersion": model_version}
    if face.external_image_id is not None:
        out["ExternalImageId"] = face.external_image_id
    if face.user_id is not None:
        out["UserId"] = face.user_id
    return out


def face_match(similarity: float, face: StoredFace, model_version: str) -> dict[str, Any]:
    """A FaceMatch: Similarity plus the matched collection Face."""
    return {"Similarity": _r(similarity), "Face": stored_face(face, model_version)}


def user(record: UserRecord) -> dict[str, Any]:
    """A ``User`` (ListUsers) or ``MatchedUser`` (user searches): id and status."""
    return {"UserId": record.user_id, "UserStatus": UserStatus.of(record.face_count).value}


def user_match(similarity: float, record: UserRecord) -> dict[str, Any]:
    """A UserMatch: Similarity plus the matched user."""
    return {"Similarity": _r(similarity), "User": user(record)}
