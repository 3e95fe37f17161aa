"""The face jobs: StartFaceDetection and StartFaceSearch, two kinds of videos in the face stage.

Face detection reports every face at every sampled timestamp; face search reports the
persons (IoU tracks) whose faces match the collection, which is pinned at launch: deleted or
made again since, and the job FAILS with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamproc.dataplane.stored.jobresults import DetectionResults, SearchResults
from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.stages import FACES, FaceAnalysis, ResultBuilder
from streamproc.jobs.kind import Paging
from streamproc.jobs.request import JobRequest
from streamproc.rekognition.constants import (
    DEFAULT_THRESHOLD,
    FACE_DETECTION,
    FACE_SEARCH,
    face_match_threshold,
)
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.collections import CollectionInfo
from streamproc.storage.jobs import ResultOrder


@dataclass(frozen=True, kw_only=True)
class FaceDetectionRequest(JobRequest):
    """StartFaceDetection, minus the token."""

    face_attributes: str = "DEFAULT"  # DEFAULT | ALL

    def _own_stored(self) -> dict[str, Any]:
        return {"FaceAttributes": self.face_attributes}

    @classmethod
    def _own_from_stored(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {"face_attributes": data.get("FaceAttributes", "DEFAULT")}


@dataclass(frozen=True, kw_only=True)
class FaceSearchRequest(JobRequest):
    """StartFaceSearch, minus the token (FaceMatchThreshold is not raised: no clamp)."""

    collection_id: str
    threshold: float = DEFAULT_THRESHOLD

    def _own_stored(self) -> dict[str, Any]:
        return {"CollectionId": self.collection_id,
                "FaceMatchThreshold": float(self.threshold)}

    @classmethod
    def _own_from_stored(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {"collection_id": data["CollectionId"],
                "threshold": face_match_threshold(data.get("FaceMatchThreshold"))}


@dataclass(frozen=True)
class FaceDetectionResults:
    """A face-detection launch: ``Faces[{Timestamp, Face}]``."""

    def builder(self) -> ResultBuilder[FaceAnalysis]:
        """A builder of one element per face."""
        return DetectionResults()


@dataclass(frozen=True)
class FaceSearchResults:
    """A face-search launch: the collection as it was at launch, threshold and match limit."""

    collection: CollectionInfo
    threshold: float
    max_matches: int
    model_version: str
    searcher: FaceSearcher = field(compare=False, repr=False)

    def builder(self) -> ResultBuilder[FaceAnalysis]:
        """A builder of the matched persons (their indices are the launch's own)."""
        return SearchResults(self.searcher, self.collection, self.threshold,
                             self.max_matches, self.model_version)


class FaceDetectionJobKind:
    """Every detected face, at every sampled timestamp, in timestamp order."""

    api = FACE_DETECTION
    operation = "StartFaceDetection"  # its wire half's Start operation too
    input = JobInput.VIDEO
    stage = FACES
    request_type = FaceDetectionRequest
    paging = Paging({"TIMESTAMP": ResultOrder.SEQUENCE})

    def check(self, request: FaceDetectionRequest) -> None:
        """Nothing beyond the object and channel."""

    def results(self, request: FaceDetectionRequest) -> FaceDetectionResults:
        """Detection needs nothing decided at launch."""
        return FaceDetectionResults()


class FaceSearchJobKind:
    """Persons whose faces match a collection; by TIMESTAMP (default) or person INDEX."""

    api = FACE_SEARCH
    operation = "StartFaceSearch"  # its wire half's Start operation too
    input = JobInput.VIDEO
    stage = FACES
    request_type = FaceSearchRequest
    paging = Paging({"TIMESTAMP": ResultOrder.SEQUENCE, "INDEX": ResultOrder.PERSON})

    def __init__(self, searcher: FaceSearcher, max_matches: int, model_version: str) -> None:
        self._searcher = searcher
        self._max_matches = max_matches  # jobs.max_matches: FaceMatches per person and time
        self._version = model_version

    def check(self, request: FaceSearchRequest) -> None:
        """The collection exists and suits this server's model (ResourceNotFound...)."""
        self._searcher.check(request.collection_id)

    def results(self, request: FaceSearchRequest) -> FaceSearchResults:
        """The collection as it is now, pinned for the launch.

        Deleted, or made by another model, since Start: the error FAILs the job.
        """
        return FaceSearchResults(self._searcher.check(request.collection_id),
                                 request.threshold, self._max_matches, self._version,
                                 self._searcher)
