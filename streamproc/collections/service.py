"""Collections and face search: the rules behind the collection operations."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from streamproc.collections.commands import (
    AddFaces,
    CreateCollection,
    DeleteCollection,
    DeletedFaces,
    DeleteFaces,
)
from streamproc.collections.quality import quality_reasons
from streamproc.config import Config
from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face, embedding_of
from streamproc.ledger import Ledger
from streamproc.rekognition.constants import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SEARCH_MAX_FACES,
    MAX_FACES_TO_INDEX,
    Arns,
    face_match_threshold,
)
from streamproc.rekognition.shapes import bounding_box, confidence
from streamproc.rekognition.tokens import page_by_seq, page_of_keys
from streamproc.search.searcher import FaceSearcher, SearchHit, in_collection
from streamproc.storage.collections import CollectionInfo, CollectionStore, NewFace, StoredFace
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)

# Namespace for name-based (v5) face and image ids, so the same image indexed into two
# collections gets the same ids, as Rekognition documents.
_ID_NAMESPACE = uuid.UUID("7f6b4f1e-3a51-5c8e-9a56-2d0c8f1b6e10")


@dataclass
class IndexResult:
    """What IndexFaces indexed and what it left out (with reasons)."""

    width: int
    height: int
    indexed: list[tuple[StoredFace, Face]] = field(default_factory=list)
    unindexed: list[tuple[list[str], Face]] = field(default_factory=list)


class CollectionService:
    """Rules for collections and face search; raises domain errors only."""

    def __init__(self, store: CollectionStore, tags: TagStore, engine: FaceEngine,
                 searcher: FaceSearcher, config: Config, ledger: Ledger) -> None:
        self._ledger = ledger
        self._store = store
        self._tags = tags
        self._engine = engine
        self._searcher = searcher
        self._config = config
        self._arns = Arns(config.server.region, config.server.account_id)

    # ---- collections -------------------------------------------------------------
    def arn(self, collection_id: str) -> str:
        """The collection's ARN."""
        return self._arns.collection(collection_id)

    def tag_key(self, collection_id: str) -> str | None:
        """The ARN a collection's tags are kept under (None: no such collection).

        That is the ARN it was created with, whatever region a client now names.
        """
        info = self._store.get(collection_id)
        return info.arn if info is not None else None

    def require(self, collection_id: str) -> CollectionInfo:
        """The collection, or ResourceNotFoundException."""
        info = self._store.get(collection_id)
        if info is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return info

    def create_collection(self, collection_id: str, tags: dict[str, str]) -> CollectionInfo:
        """Create an empty collection bound to the loaded pack's embedding size."""
        model = self._engine.identity
        info = CollectionInfo(collection_id, self.arn(collection_id), time.time(),
                              model.pack, model.dim, self._engine.face_model_version,
                              model.recognizer)
        return self._ledger.submit(CreateCollection(info, tags))

    def delete_collection(self, collection_id: str) -> None:
        """Delete a collection and all its faces."""
        self.require(collection_id)
        self._ledger.submit(DeleteCollection(collection_id))

    def describe_collection(self, collection_id: str) -> tuple[CollectionInfo, int, int]:
        """Metadata, face count and user count."""
        info = self.require(collection_id)
        users = len(in_collection(collection_id, self._store.users))
        return info, self._store.face_count(collection_id), users

    def list_collections(self, token: str | None, max_results: int | None
                         ) -> tuple[list[CollectionInfo], str | None]:
        """One page of collections in id order, and the token for the next page."""
        ids, next_token = page_of_keys("collections", self._store.list_ids(), token,
                                       max_results or DEFAULT_PAGE_SIZE)
        return [i for i in map(self._store.get, ids) if i is not None], next_token

    # ---- faces ---------------------------------------------------------------------
    def _face_id(self, image_id: str, external: str | None, face: Face) -> str:
        box = ",".join(str(int(round(v))) for v in face.box)
        return str(uuid.uuid5(_ID_NAMESPACE, f"{image_id}|{external or ''}|{box}"))

    def index_faces(self, collection_id: str, image: np.ndarray, image_bytes_digest: str,
                    external_image_id: str | None, max_faces: int | None,
                    quality_filter: str) -> IndexResult:
        """Detect, filter, embed and store faces; returns indexed and unindexed faces."""
        self._searcher.check(collection_id)
        height, width = image.shape[:2]
        result = IndexResult(width, height)
        faces = self._engine.detect(image)
        level = self._config.models.quality.get(quality_filter)
        good = []
        for face in faces:
            reasons = quality_reasons(face, level)
            if reasons:
                result.unindexed.append((reasons, face))
            else:
                good.append(face)
        limit = min(max_faces or MAX_FACES_TO_INDEX, MAX_FACES_TO_INDEX)
        # Keep the largest faces (Rekognition drops low quality first, then small boxes).
        for face in good[limit:]:
            result.unindexed.append((["EXCEEDS_MAX_FACES"], face))
        good = good[:limit]
        if not good:
            return result
        total = self._store.face_count(collection_id) + len(good)
        if total > self._config.storage.max_faces_per_collection:  # early; the rule applies it
            raise ServiceQuotaExceededException(
                f"Collection {collection_id} would exceed "
                f"{self._config.storage.max_faces_per_collection} faces")
        self._engine.embed(image, good)
        image_id = str(uuid.uuid5(_ID_NAMESPACE, image_bytes_digest))
        new = tuple(self._new_face(image_id, external_image_id, f, width, height)
                    for f in good)
        stored = self._ledger.submit(AddFaces(collection_id, new))
        result.indexed = list(zip(stored, good, strict=True))
        return result

    def _new_face(self, image_id: str, external: str | None, face: Face, width: int,
                  height: int) -> NewFace:
        """An embedded face as the collection keeps it (its id derived from the image)."""
        return NewFace(self._face_id(image_id, external, face), image_id, external,
                       bounding_box(face.box, width, height), confidence(face),
                       embedding_of(face))

    def list_faces(self, collection_id: str, token: str | None, max_results: int | None,
                   face_ids: list[str] | None, user_id: str | None
                   ) -> tuple[list[StoredFace], str | None]:
        """One page of faces in insertion order."""
        self.require(collection_id)
        if user_id is not None and in_collection(
                collection_id, self._store.users).get(user_id) is None:
            raise ResourceNotFoundException(
                f"The user id: {user_id} does not exist in collection {collection_id}")
        return page_by_seq(
            f"faces:{collection_id}", token, max_results or DEFAULT_PAGE_SIZE,
            lambda after, count: in_collection(collection_id, self._store.list_faces, after,
                                               count, face_ids, user_id),
            lambda face: face.seq)

    def delete_faces(self, collection_id: str, face_ids: list[str]) -> DeletedFaces:
        """Delete faces; returns (deleted, not found, kept because a user holds them).

        A face associated with a user is not deleted (Rekognition's
        ASSOCIATED_TO_AN_EXISTING_USER): disassociate it or delete the user first.
        """
        self.require(collection_id)
        return self._ledger.submit(DeleteFaces(collection_id, face_ids))

    # ---- search ----------------------------------------------------------------------
    def search_faces(self, collection_id: str, face_id: str, max_faces: int | None,
                     threshold: float | None) -> list[SearchHit]:
        """Search with the stored embedding of ``face_id`` (the face itself excluded)."""
        self._searcher.check(collection_id)
        found = self._store.get_face(collection_id, face_id)
        if found is None:
            raise InvalidParameterException(
                f"Face {face_id} was not found in collection {collection_id}")
        _, vector = found
        return self._searcher.search(
            collection_id, vector[None, :], max_faces or DEFAULT_SEARCH_MAX_FACES,
            face_match_threshold(threshold), exclude=face_id)[0]

    def search_faces_by_image(self, collection_id: str, image: np.ndarray,
                              max_faces: int | None, threshold: float | None,
                              quality_filter: str) -> tuple[Face, list[SearchHit]]:
        """Search with the largest face in ``image``."""
        self._searcher.check(collection_id)
        face = largest_face(self._engine, image, self._config, quality_filter)
        self._engine.embed(image, [face])
        hits = self._searcher.search(
            collection_id, embedding_of(face)[None, :], max_faces or DEFAULT_SEARCH_MAX_FACES,
            face_match_threshold(threshold))[0]
        return face, hits


def largest_face(engine: FaceEngine, image: np.ndarray, config: Config,
                 quality_filter: str) -> Face:
    """The largest face that passes ``quality_filter``, or InvalidParameterException."""
    level = config.models.quality.get(quality_filter)
    for face in engine.detect(image):
        if not quality_reasons(face, level):
            return face
    raise InvalidParameterException("There are no faces in the image. Should be at least 1.")


def digest(data: bytes) -> str:
    """Content hash used to derive ImageId."""
    return hashlib.sha256(data).hexdigest()
