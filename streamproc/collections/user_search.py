"""SearchUsers and SearchUsersByImage: which users a face (or a user) looks like.

Both go through the one search path (``FaceSearcher.search_users``): the same model check
and the same threshold -> cosine -> Similarity rule as face search, with each user's faces
voting through its user vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamproc.collections.quality import quality_reasons
from streamproc.config import Config
from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face, embedding_of
from streamproc.rekognition.constants import (
    DEFAULT_USER_THRESHOLD,
    MAX_TARGET_FACES,
    MAX_USER_RESULTS,
)
from streamproc.search.searcher import FaceSearcher, UserHit, in_collection
from streamproc.storage.collections import CollectionStore
from streamproc.storage.users import UserStore


@dataclass
class ImageUserSearch:
    """SearchUsersByImage's outcome.

    The searched face (None if no face qualified), the matches, and every other face with
    the reasons it was not searched.
    """

    width: int
    height: int
    face: Face | None = None
    hits: list[UserHit] = field(default_factory=list)
    unsearched: list[tuple[list[str], Face]] = field(default_factory=list)


class UserSearchService:
    """Searches users by face id, user id or image; raises domain errors only."""

    def __init__(self, users: UserStore, store: CollectionStore, searcher: FaceSearcher,
                 engine: FaceEngine, config: Config) -> None:
        self._users = users
        self._store = store
        self._searcher = searcher
        self._engine = engine
        self._config = config

    def search_users(self, collection_id: str, face_id: str | None, user_id: str | None,
                     threshold: float | None, max_users: int | None) -> list[UserHit]:
        """Users matching a stored face, or matching another user (never itself)."""
        if (face_id is None) == (user_id is None):
            raise InvalidParameterException("SearchUsers needs exactly one of FaceId and UserId")
        self._searcher.check(collection_id)
        if face_id is not None:
            found = in_collection(collection_id, self._store.get_face, face_id)
            if found is None:
                raise InvalidParameterException(
                    f"Face {face_id} was not found in collection {collection_id}")
            vector = found[1]
        else:
            vector = self._user_vector(collection_id, str(user_id))
        return self._searcher.search_users(
            collection_id, vector, max_users or MAX_USER_RESULTS,
            DEFAULT_USER_THRESHOLD if threshold is None else threshold, exclude=user_id)

    def _user_vector(self, collection_id: str, user_id: str) -> np.ndarray:
        if in_collection(collection_id, self._users.get, user_id) is None:
            raise ResourceNotFoundException(
                f"The user id: {user_id} does not exist in collection {collection_id}")
        vector = in_collection(collection_id, self._users.vector, user_id)
        if vector is None:
            raise InvalidParameterException(
                f"User {user_id} has no faces to search with; associate faces first")
        return vector

    def search_users_by_image(self, collection_id: str, image: np.ndarray,
                              threshold: float | None, max_users: int | None,
                              quality_filter: str) -> ImageUserSearch:
        """Search with the largest face that passes ``quality_filter``.

        As documented, an image without such a face is not an error: the result has no
        face and no matches, and lists the faces it saw with their reasons.
        """
        self._searcher.check(collection_id)
        height, width = image.shape[:2]
        result = ImageUserSearch(width, height)
        level = self._config.models.quality.get(quality_filter)
        faces = self._engine.detect(image)
        for face in faces[:MAX_TARGET_FACES]:
            reasons = quality_reasons(face, level)
            if not reasons and result.face is None:
                result.face = face
            else:
                result.unsearched.append((reasons or ["FACE_NOT_LARGEST"], face))
        for face in faces[MAX_TARGET_FACES:]:
            result.unsearched.append((["EXCEEDS_MAX_FACES"], face))
        if result.face is None:
            return result
        self._engine.embed(image, [result.face])
        result.hits = self._searcher.search_users(
            collection_id, embedding_of(result.face), max_users or MAX_USER_RESULTS,
            DEFAULT_USER_THRESHOLD if threshold is None else threshold)
        return result
