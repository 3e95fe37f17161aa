"""Celebrity recognition from the operator's gallery (no celebrities ship with streamproc)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from streamproc.config.base import Section


class CelebritiesConfig(Section):
    """RecognizeCelebrities, GetCelebrityInfo and celebrity-recognition jobs.

    Each celebrity is a user of the gallery collection (its UserId is the celebrity's Id),
    enrolled with IndexFaces, then CreateUser and AssociateFaces (``streamproc enrol``
    indexes faces but creates no users).
    """

    gallery: str | None = Field(
        None, min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9_.\-]+$",
        description="Collection whose users are the celebrities; null = an empty gallery "
        "(RecognizeCelebrities puts every face in UnrecognizedFaces, jobs find nothing). "
        "A collection not created yet is an empty gallery too.")
    # 80.0 copies rekognition.constants.DEFAULT_USER_THRESHOLD (not imported: config sits
    # below the Rekognition layer); tests/test_celebrities.py checks they agree.
    match_threshold: float = Field(
        80.0, ge=0, le=100, description="Least Similarity (0-100) between a face and a "
        "celebrity's user vector for the face to be that celebrity (80: the default of "
        "SearchUsersByImage and FaceMatchThreshold).")
    catalog: Path | None = Field(
        None, description="YAML or JSON file keyed by UserId giving each celebrity's name, "
        "urls and known_gender (docs/celebrities.md); read and checked at start. null = "
        "no catalog: a celebrity's Name is its UserId, with no Urls and no KnownGender.")
