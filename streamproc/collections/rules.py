"""Every change to collections and faces, applied in ledger order.

The API side (:mod:`streamproc.collections.service`) decides what needs no shared state
(ids, timestamps, the embeddings: inference happens once, where the request arrived) and
submits a command; the rules that depend on the state live here, once: a collection id is
taken or not, a collection belongs to this server's model, the collection and face quotas.
The tags a collection is created with are written here, with it; later tag changes are
:mod:`streamproc.tags`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from streamproc.collections.commands import (
    AddFaces,
    CreateCollection,
    DeleteCollection,
    DeletedFaces,
    DeleteFaces,
)
from streamproc.config import Config
from streamproc.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.ledger import Applied, Appliers
from streamproc.search.searcher import FaceSearcher, in_collection
from streamproc.storage.collections import CollectionInfo, CollectionStore, StoredFace
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)


class CollectionRules:
    """Applies collection and face commands."""

    def __init__(self, store: CollectionStore, tags: TagStore, searcher: FaceSearcher,
                 config: Config, on_delete: Callable[[str, float], None] | None = None) -> None:
        self._store = store
        self._tags = tags
        self._searcher = searcher
        self._config = config
        self._on_delete = on_delete

    def register(self, appliers: Appliers) -> None:
        """Declare this module's commands."""
        appliers.register(CreateCollection, self._create)
        appliers.register(DeleteCollection, self._delete)
        appliers.register(AddFaces, self._add_faces)
        appliers.register(DeleteFaces, self._delete_faces)

    def _require(self, collection_id: str) -> CollectionInfo:
        info = self._store.get(collection_id)
        if info is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return info

    def _create(self, c: CreateCollection, where: Applied) -> CollectionInfo:
        info = c.info
        limit = self._config.storage.max_collections
        if self._store.get(info.collection_id) is None and \
                len(self._store.list_ids()) >= limit:
            raise ServiceQuotaExceededException(
                f"At most {limit} collections: {info.collection_id} was not created")
        if not self._store.create(info):
            raise ResourceAlreadyExistsException(
                f"The collection id: {info.collection_id} already exists")
        if c.tags:
            self._tags.set(info.arn, c.tags)
        logger.info("created collection %s (%s, %d-d)", info.collection_id, info.pack, info.dim)
        return info

    def _delete(self, c: DeleteCollection, where: Applied) -> None:
        info = self._require(c.collection_id)
        if not self._store.delete(info.collection_id):
            raise ResourceNotFoundException(
                f"The collection id: {info.collection_id} does not exist")
        self._tags.delete_resource(info.arn)
        logger.info("deleted collection %s", info.collection_id)
        if self._on_delete is not None:
            self._on_delete(info.collection_id, info.created)

    def _add_faces(self, c: AddFaces, where: Applied) -> list[StoredFace]:
        collection_id = c.collection_id
        # Exists (shared state). That it fits this node's model was checked by the node
        # that answered IndexFaces, before appending: every node applies it alike.
        self._require(collection_id)
        faces = list(c.faces)
        limit = self._config.storage.max_faces_per_collection
        if self._store.face_count(collection_id) + len(faces) > limit:
            raise ServiceQuotaExceededException(
                f"Collection {collection_id} would exceed {limit} faces")
        return in_collection(collection_id, self._store.add_faces, faces)

    def _delete_faces(self, c: DeleteFaces, where: Applied) -> DeletedFaces:
        self._require(c.collection_id)
        return in_collection(c.collection_id, self._store.delete_faces, c.face_ids)
