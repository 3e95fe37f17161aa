"""QualityFilter: which faces are good enough to index or search."""

from __future__ import annotations

from streamproc.config import QualityLevel
from streamproc.faces.types import Face


def quality_reasons(face: Face, level: QualityLevel | None) -> list[str]:
    """Rekognition ``Reason`` values for which ``face`` fails ``level`` (none = passes)."""
    if level is None:
        return []
    reasons = []
    if face.score * 100.0 < level.min_confidence:
        reasons.append("LOW_CONFIDENCE")
    if min(face.width, face.height) < level.min_face_px:
        reasons.append("SMALL_BOUNDING_BOX")
    if face.pose and (abs(face.pose.yaw) > level.max_abs_yaw
                      or abs(face.pose.pitch) > level.max_abs_pitch):
        reasons.append("EXTREME_POSE")
    if face.quality and face.quality.brightness < level.min_brightness:
        reasons.append("LOW_BRIGHTNESS")
    if face.quality and face.quality.sharpness < level.min_sharpness:
        reasons.append("LOW_SHARPNESS")
    if reasons:
        reasons.append("LOW_FACE_QUALITY")
    return reasons
