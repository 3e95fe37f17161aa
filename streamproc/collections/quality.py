"""QualityFilter: which faces are good enough to index or search.

One rule for IndexFaces, SearchFacesByImage and CompareFaces. Each failed check gives its
Rekognition ``Reason``; any failure adds LOW_FACE_QUALITY, as Rekognition reports it.
"""

from __future__ import annotations

from streamproc.config import QualityLevel
from streamproc.faces.types import Face, Pose


def quality_reasons(face: Face, level: QualityLevel | None) -> list[str]:
    """Rekognition ``Reason`` values for which ``face`` fails ``level`` (none = passes)."""
    if level is None:
        return []
    reasons = []
    if face.confidence < level.min_confidence:
        reasons.append("LOW_CONFIDENCE")
    if min(face.width, face.height) < level.min_face_px:
        reasons.append("SMALL_BOUNDING_BOX")
    if face.pose is not None and _extreme(face.pose, level):
        reasons.append("EXTREME_POSE")
    if face.quality and face.quality.brightness < level.min_brightness:
        reasons.append("LOW_BRIGHTNESS")
    if face.quality and face.quality.sharpness < level.min_sharpness:
        reasons.append("LOW_SHARPNESS")
    if reasons:
        reasons.append("LOW_FACE_QUALITY")
    return reasons


def _extreme(pose: Pose, level: QualityLevel) -> bool:
    """Turned or tilted beyond the level, or a pose the landmarks could not be solved for."""
    return (not pose.solved or abs(pose.yaw) > level.max_abs_yaw
            or pose.pitch < -level.max_pitch_down or pose.pitch > level.max_pitch_up)
