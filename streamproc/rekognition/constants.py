"""Rekognition's numbers and name formats, in one place for every path that needs them."""

from __future__ import annotations

from dataclasses import dataclass

# FaceMatchThreshold / SimilarityThreshold when the request gives none.
DEFAULT_THRESHOLD = 80.0
# Stream processors raise a lower FaceMatchThreshold to this (Describe shows the result).
MIN_STREAM_THRESHOLD = 80.0
# IndexFaces keeps at most this many faces per image, whatever MaxFaces says.
MAX_FACES_TO_INDEX = 100
# CompareFaces and DetectFaces report at most this many faces.
MAX_TARGET_FACES = 100
# SearchFaces / SearchFacesByImage MaxFaces when the request gives none.
DEFAULT_SEARCH_MAX_FACES = 4096
# List* pages when MaxResults is not given.
DEFAULT_PAGE_SIZE = 1000
# TagResource: tags per resource.
MAX_TAGS = 200
# The face-search processor setting (Settings.FaceSearch) and its record type; also the
# stored-video face-search job (StartFaceSearch), beside face detection (StartFaceDetection).
FACE_SEARCH = "FaceSearch"
FACE_DETECTION = "FaceDetection"
# GetFaceDetection / GetFaceSearch: MaxResults default and cap ("larger values are capped").
MAX_JOB_RESULTS = 1000


def stream_threshold(requested: float) -> float:
    """The FaceMatchThreshold a stream processor applies (and Describe shows)."""
    return max(float(requested), MIN_STREAM_THRESHOLD)


@dataclass(frozen=True)
class Arns:
    """ARN formats for this server's region and account."""

    region: str
    account_id: str

    def _prefix(self) -> str:
        return f"arn:aws:rekognition:{self.region}:{self.account_id}"

    def collection(self, collection_id: str) -> str:
        """A collection's ARN."""
        return f"{self._prefix()}:collection/{collection_id}"

    def processor(self, name: str) -> str:
        """A stream processor's ARN."""
        return f"{self._prefix()}:streamprocessor/{name}"

    def collection_id(self, arn: str) -> str | None:
        """The collection id inside one of our collection ARNs, else None."""
        prefix = self.collection("")
        return arn[len(prefix):] if arn.startswith(prefix) and len(arn) > len(prefix) else None
