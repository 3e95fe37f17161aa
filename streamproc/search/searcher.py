"""The one face-search path, used by the API and by every stream processor.

It owns three rules: a collection is searched only with the model that made it (same
recogniser, so the same embedding space), Similarity (Rekognition's 0-100) is computed from
the cosine through the pack's calibration the same way for every caller, and a threshold is
applied once, to that Similarity, after an unfiltered nearest-first search of the index.
Users are searched by the same rules, with each user's faces voting through its user vector
(``storage.usertable``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np

from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.faces.engine import ModelIdentity
from streamproc.faces.similarity import SimilarityScale
from streamproc.storage.collections import CollectionInfo, CollectionStore, StoredFace
from streamproc.storage.users import UserStore
from streamproc.storage.usertable import UserRecord


@dataclass(frozen=True)
class SearchHit:
    """One match: the Similarity and the stored face."""

    similarity: float
    face: StoredFace


def model_mismatch(info: CollectionInfo, model: ModelIdentity) -> str | None:
    """Why ``model`` cannot search ``info`` (None when it can)."""
    same_dim = info.dim == model.dim
    if info.recognizer and model.recognizer:
        same_model = same_dim and info.recognizer == model.recognizer
    else:  # collections made before recognisers were recorded: trust the pack name
        same_model = same_dim and info.pack == model.pack
    if same_model:
        return None
    return (f"Collection {info.collection_id} was created with model pack {info.pack} "
            f"({info.dim}-d embeddings); this server runs {model.pack} ({model.dim}-d), "
            "whose embeddings cannot be compared with them. Use a new collection or run "
            "the original pack.")


@dataclass(frozen=True)
class UserHit:
    """One matched user: the Similarity of its user vector and the user."""

    similarity: float
    user: UserRecord


class CollectionNotFound(ResourceNotFoundException):
    """The collection does not exist (or is not the one a processor started with)."""


T = TypeVar("T")
P = ParamSpec("P")


def in_collection(collection_id: str, fn: Callable[Concatenate[str, P], T], *args: P.args,
                  **kwargs: P.kwargs) -> T:
    """Call a store method on a collection.

    A collection deleted meanwhile (the stores' KeyError) becomes ResourceNotFoundException.
    """
    try:
        return fn(collection_id, *args, **kwargs)
    except KeyError:
        raise CollectionNotFound(
            f"The collection id: {collection_id} does not exist") from None


class FaceSearcher:
    """Checks, converts thresholds and searches; raises domain errors only."""

    def __init__(self, store: CollectionStore, model: Callable[[], ModelIdentity],
                 scale: SimilarityScale, users: UserStore | None = None) -> None:
        self._store = store
        self._users = users
        self._model = model
        self._scale = scale

    @property
    def model(self) -> ModelIdentity:
        """The identity of the model this server runs."""
        return self._model()

    def check(self, collection_id: str) -> CollectionInfo:
        """The collection, if it exists and this server's model can search it."""
        info = self._store.get(collection_id)
        if info is None:
            raise CollectionNotFound(f"The collection id: {collection_id} does not exist")
        reason = model_mismatch(info, self.model)
        if reason is not None:
            raise InvalidParameterException(reason)
        return info

    def similarity(self, cosines: np.ndarray | float) -> np.ndarray | float:
        """Similarity (0-100) of cosine values, as every response reports it."""
        return self._scale.similarity(cosines)

    def search(self, collection_id: str, vectors: np.ndarray, max_faces: int,
               threshold: float, exclude: str | None = None,
               expect: CollectionInfo | None = None) -> list[list[SearchHit]]:
        """Per query vector, faces with Similarity >= ``threshold``, best first.

        ``expect`` pins the collection a long-lived caller (a processor) started with: if
        it was deleted, or deleted and made again, this raises instead of searching another.
        """
        info = self.check(collection_id)
        if expect is not None and info != expect:
            raise CollectionNotFound(
                f"The collection id: {collection_id} was deleted (and made again)")
        k = max_faces + (1 if exclude else 0)
        # Unfiltered top-k: the threshold is applied once, on Similarity, below.
        rows = in_collection(collection_id, self._store.search, vectors, k, -1.0)
        out = []
        for row in rows:
            hits = [SearchHit(float(self._scale.similarity(c)), f) for c, f in row
                    if f.face_id != exclude]
            out.append([h for h in hits if h.similarity >= threshold][:max_faces])
        return out

    def search_users(self, collection_id: str, vector: np.ndarray, max_users: int,
                     threshold: float, exclude: str | None = None) -> list[UserHit]:
        """Users whose vector has Similarity >= ``threshold`` with ``vector``, best first."""
        self.check(collection_id)
        if self._users is None:
            return []
        k = max_users + (1 if exclude else 0)
        # Unfiltered top-k: the threshold is applied once, on Similarity, below.
        rows = in_collection(collection_id, self._users.search, vector[None, :], k, -1.0)
        hits = [UserHit(float(self._scale.similarity(c)), u) for c, u in rows[0]
                if u.user_id != exclude]
        return [h for h in hits if h.similarity >= threshold][:max_users]
