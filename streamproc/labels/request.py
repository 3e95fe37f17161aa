"""The rules DetectLabels and StartLabelDetection share: Features, MinConfidence.

One home, so the image operation and the video job cannot drift apart: the feature names,
which of them this server serves (GENERAL_LABELS only: no IMAGE_PROPERTIES model), and
MinConfidence's range and the two defaults Rekognition documents (55 for DetectLabels, 50
for StartLabelDetection).
"""

from __future__ import annotations

from collections.abc import Iterable

from streamproc.errors import InvalidParameterException

GENERAL_LABELS = "GENERAL_LABELS"  # the one feature served, applied when Features is omitted
IMAGE_PROPERTIES = "IMAGE_PROPERTIES"  # DetectLabels' other feature: no model for it here
IMAGE_MIN_CONFIDENCE = 55.0  # DetectLabels' default MinConfidence (Rekognition's)
VIDEO_MIN_CONFIDENCE = 50.0  # StartLabelDetection's default MinConfidence (Rekognition's)


def features(requested: Iterable[str] | None) -> tuple[str, ...]:
    """The features asked for; omitted or [] is GENERAL_LABELS (AWS applies it by default)."""
    return tuple(requested or (GENERAL_LABELS,))


def check_features(requested: Iterable[str]) -> None:
    """Refuse any feature but GENERAL_LABELS (the message names what to send instead)."""
    unknown = sorted({f for f in requested if f != GENERAL_LABELS})
    if unknown:
        msg = (f"Features {', '.join(unknown)} is not supported by this server (it serves "
               f"{GENERAL_LABELS} only); send Features [\"{GENERAL_LABELS}\"] or leave it out")
        raise InvalidParameterException(msg)


def image_min_confidence(requested: float | None) -> float:
    """DetectLabels' MinConfidence: the request's, else 55."""
    return IMAGE_MIN_CONFIDENCE if requested is None else float(requested)


def video_min_confidence(requested: float | None) -> float:
    """StartLabelDetection's MinConfidence: the request's, else 50."""
    return VIDEO_MIN_CONFIDENCE if requested is None else float(requested)


def check_min_confidence(value: float) -> None:
    """MinConfidence is a percentage (botocore's validation says so first on the wire)."""
    if not 0.0 <= value <= 100.0:
        msg = f"MinConfidence {value} is not between 0 and 100"
        raise InvalidParameterException(msg)
