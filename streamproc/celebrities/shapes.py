"""Celebrities as Rekognition's wire structures (absent values are omitted, never null).

The image operation's ``Celebrity`` (a ComparedFace and MatchConfidence) and the job's
``CelebrityDetail`` (a FaceDetail, its BoundingBox and Confidence) are both made here, from
:mod:`streamproc.rekognition.shapes`' FaceDetail, so each face field has one owner. No
Emotions or Smile: no pack estimates them.
"""

from __future__ import annotations

from typing import Any

from streamproc.celebrities.catalog import CelebrityInfo
from streamproc.celebrities.gallery import CelebrityMatch
from streamproc.faces.types import Face
from streamproc.rekognition.shapes import compared_face, face_detail


def info_wire(info: CelebrityInfo) -> dict[str, Any]:
    """Urls (empty when there are none, as AWS answers), Name and KnownGender if known."""
    out: dict[str, Any] = {"Urls": list(info.urls), "Name": info.name}
    if info.known_gender is not None:
        out["KnownGender"] = {"Type": info.known_gender.value}
    return out


def _percent(value: float) -> float:
    return round(min(max(float(value), 0.0), 100.0), 6)


def celebrity(face: Face, match: CelebrityMatch, width: int, height: int) -> dict[str, Any]:
    """RecognizeCelebrities' ``Celebrity``: Urls, Name, Id, Face, MatchConfidence, KnownGender."""
    info = info_wire(match.info)
    out: dict[str, Any] = {"Urls": info["Urls"], "Name": info["Name"], "Id": match.celebrity_id,
                           "Face": compared_face(face, width, height),
                           "MatchConfidence": _percent(match.confidence)}
    if "KnownGender" in info:
        out["KnownGender"] = info["KnownGender"]
    return out


def celebrity_detail(face: Face, match: CelebrityMatch, width: int, height: int
                     ) -> dict[str, Any]:
    """A job's ``CelebrityDetail``: its Face is the default FaceDetail, as AWS's."""
    info = info_wire(match.info)
    detail = face_detail(face, width, height)
    out: dict[str, Any] = {"Urls": info["Urls"], "Name": info["Name"], "Id": match.celebrity_id,
                           "Confidence": _percent(match.confidence),
                           "BoundingBox": detail["BoundingBox"], "Face": detail}
    if "KnownGender" in info:
        out["KnownGender"] = info["KnownGender"]
    return out
