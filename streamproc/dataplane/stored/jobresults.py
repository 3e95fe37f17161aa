"""What the face jobs make of the face stage's frames: ``Faces`` or ``Persons`` elements.

Both build from :class:`~.stages.FaceAnalysis` values (the face stage's per-frame value).

``Person.Index`` is the IoU track of the face (the analyzer's tracker, per job), numbered
from 0 in the order persons are first reported, so the same tracked person keeps one index
across the video. Only persons matched in the collection are reported, as in Rekognition
("persons in the video whose face(s) match the face(s) in the collection").
"""

from __future__ import annotations

import numpy as np

from streamproc.dataplane.stored.stages import FaceAnalysis, Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.rekognition.shapes import bounding_box, face_detail, face_match
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.collections import CollectionInfo


class DetectionResults:
    """``Faces[{Timestamp, Face}]``: every detected face."""

    needs_embeddings = False

    def build(self, frame: StoredFrame, analysis: FaceAnalysis) -> list[Result]:
        """One element per face."""
        height, width = frame.image.shape[:2]
        return [Result(frame.timestamp_ms, None, {"Timestamp": frame.timestamp_ms,
                                                  "Face": face_detail(f, width, height)})
                for f in analysis.faces]


class SearchResults:
    """``Persons[{Timestamp, Person{Index, BoundingBox, Face}, FaceMatches}]``."""

    needs_embeddings = True

    def __init__(self, searcher: FaceSearcher, collection: CollectionInfo, threshold: float,
                 max_matches: int, model_version: str) -> None:
        self._searcher = searcher
        self._collection = collection
        self._threshold = threshold
        self._max = max_matches
        self._version = model_version
        self._indices: dict[int, int] = {}  # track id -> Person.Index

    def build(self, frame: StoredFrame, analysis: FaceAnalysis) -> list[Result]:
        """One element per face with at least one match (the one search path decides)."""
        embedded = [(f, t, f.embedding)
                    for f, t in zip(analysis.faces, analysis.tracks, strict=True)
                    if f.embedding is not None]
        if not embedded:
            return []
        # expect= pins the collection the job started with: deleted (or made again) -> error.
        hits = self._searcher.search(
            self._collection.collection_id, np.vstack([e for _, _, e in embedded]),
            self._max, self._threshold, expect=self._collection)
        height, width = frame.image.shape[:2]
        out = []
        for (face, track, _), found in zip(embedded, hits, strict=True):
            if not found:
                continue
            index = self._indices.setdefault(track.track_id, len(self._indices))
            out.append(Result(frame.timestamp_ms, index, {
                "Timestamp": frame.timestamp_ms,
                "Person": {"Index": index, "BoundingBox": bounding_box(face.box, width, height),
                           "Face": face_detail(face, width, height)},
                "FaceMatches": [face_match(h.similarity, h.face, self._version) for h in found],
            }))
        return out
