"""Every change to collections, faces and tags, applied in ledger order.

The API side (:mod:`streamproc.collections.service`) decides what needs no shared state
(ids, timestamps, the embeddings: inference happens once, where the request arrived) and
submits a command; the rules that depend on the state live here, once: a collection id is
taken or not, a collection belongs to this server's model, the collection and face quotas,
the tag limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from streamproc.config import Config
from streamproc.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.ledger import Applied, Appliers, unpack_vector
from streamproc.rekognition.constants import MAX_TAGS
from streamproc.search.searcher import FaceSearcher, in_collection
from streamproc.storage.collections import CollectionInfo, CollectionStore, NewFace, StoredFace
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)


class CollectionRules:
    """Applies collection, face and tag commands."""

    def __init__(self, store: CollectionStore, tags: TagStore, searcher: FaceSearcher,
                 config: Config, on_delete: Callable[[str, float], None] | None = None) -> None:
        self._store = store
        self._tags = tags
        self._searcher = searcher
        self._config = config
        self._on_delete = on_delete

    def register(self, appliers: Appliers) -> None:
        """Declare this module's commands."""
        for kind, fn in (("collection.create", self._create), ("collection.delete", self._delete),
                         ("faces.add", self._add_faces), ("faces.delete", self._delete_faces),
                         ("tags.set", self._set_tags), ("tags.remove", self._remove_tags)):
            appliers.register(kind, fn)

    def _require(self, collection_id: str) -> CollectionInfo:
        info = self._store.get(collection_id)
        if info is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return info

    def _create(self, p: dict[str, Any], where: Applied) -> CollectionInfo:
        info = CollectionInfo(**p["info"])
        limit = self._config.storage.max_collections
        if self._store.get(info.collection_id) is None and \
                len(self._store.list_ids()) >= limit:
            raise ServiceQuotaExceededException(
                f"At most {limit} collections: {info.collection_id} was not created")
        if not self._store.create(info):
            raise ResourceAlreadyExistsException(
                f"The collection id: {info.collection_id} already exists")
        if p["tags"]:
            self._tags.set(info.arn, p["tags"])
        logger.info("created collection %s (%s, %d-d)", info.collection_id, info.pack, info.dim)
        return info

    def _delete(self, p: dict[str, Any], where: Applied) -> None:
        info = self._require(p["collection_id"])
        if not self._store.delete(info.collection_id):
            raise ResourceNotFoundException(
                f"The collection id: {info.collection_id} does not exist")
        self._tags.delete_resource(info.arn)
        logger.info("deleted collection %s", info.collection_id)
        if self._on_delete is not None:
            self._on_delete(info.collection_id, info.created)

    def _add_faces(self, p: dict[str, Any], where: Applied) -> list[StoredFace]:
        collection_id = p["collection_id"]
        # Exists (shared state). That it fits this node's model was checked by the node
        # that answered IndexFaces, before appending: every node applies it alike.
        self._require(collection_id)
        faces = [NewFace(f["face_id"], f["image_id"], f["external_image_id"], f["bbox"],
                         f["confidence"], unpack_vector(f["embedding"])) for f in p["faces"]]
        limit = self._config.storage.max_faces_per_collection
        if self._store.face_count(collection_id) + len(faces) > limit:
            raise ServiceQuotaExceededException(
                f"Collection {collection_id} would exceed {limit} faces")
        return in_collection(collection_id, self._store.add_faces, faces)

    def _delete_faces(self, p: dict[str, Any], where: Applied
                      ) -> tuple[list[str], list[str], list[StoredFace]]:
        self._require(p["collection_id"])
        return in_collection(p["collection_id"], self._store.delete_faces, p["face_ids"])

    def _set_tags(self, p: dict[str, Any], where: Applied) -> None:
        key = p["key"]
        if len({**self._tags.get(key), **p["tags"]}) > MAX_TAGS:
            raise ServiceQuotaExceededException(f"A resource can have at most {MAX_TAGS} tags")
        self._tags.set(key, p["tags"])

    def _remove_tags(self, p: dict[str, Any], where: Applied) -> None:
        self._tags.remove(p["key"], p["keys"])
