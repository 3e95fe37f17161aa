"""The gallery: which celebrity a face is, through the one user-search path.

A celebrity is a user of the gallery collection whose UserId is letters and digits (the
celebrity Id's pattern). A face is that celebrity when the user's vector (the mean of its
associated faces, ``storage.usertable``) has Similarity at or above
``celebrities.match_threshold`` with the face, and it is the most similar such user.
Faces of the gallery that belong to no user are not celebrities: only user vectors are
searched. No gallery configured, or a gallery collection not (yet) created, is an empty
gallery: every face is unrecognised, and nothing is an error. A gallery made by another
model pack is InvalidParameterException (the searcher's model rule), so a wrong
configuration shows instead of recognising no one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamproc.celebrities.catalog import Catalog, CelebrityInfo, is_celebrity_id
from streamproc.config import CelebritiesConfig
from streamproc.errors import ResourceNotFoundException
from streamproc.search.searcher import CollectionNotFound, FaceSearcher, UserHit
from streamproc.storage.users import UserStore

# Users asked of the index per face at first; doubled while every hit over the threshold
# is a user whose UserId cannot be a celebrity Id (a "jane-doe" must not hide a "JaneDoe").
CANDIDATES = 5


@dataclass(frozen=True)
class CelebrityMatch:
    """A face recognised: the celebrity's Id, its catalog entry and the Similarity."""

    celebrity_id: str
    info: CelebrityInfo
    confidence: float  # the Similarity (0-100): MatchConfidence / CelebrityDetail.Confidence


class CelebrityNotFound(ResourceNotFoundException):
    """GetCelebrityInfo of an Id that is no celebrity of the gallery."""


class Gallery:
    """Matches faces against the gallery's users; names them from the catalog."""

    def __init__(self, settings: CelebritiesConfig, searcher: FaceSearcher,
                 users: UserStore | None, catalog: Catalog) -> None:
        self._collection = settings.gallery
        self._threshold = settings.match_threshold
        self._searcher = searcher
        self._users = users  # None: no user store (no celebrity can be named)
        self._catalog = catalog

    def active(self) -> bool:
        """Whether there is a gallery to search (configured and created).

        InvalidParameterException if this server's model cannot search it.
        """
        if self._collection is None:
            return False
        try:
            self._searcher.check(self._collection)
        except CollectionNotFound:
            return False
        return True

    def match(self, vectors: Sequence[np.ndarray]) -> list[CelebrityMatch | None]:
        """The celebrity each embedded face is (None: unrecognised), in order."""
        if not vectors or not self.active():
            return [None] * len(vectors)
        return self.search(vectors)

    def search(self, vectors: Sequence[np.ndarray]) -> list[CelebrityMatch | None]:
        """:meth:`match` once :meth:`active` has said there is a gallery (no second check)."""
        return [self._best(v) for v in vectors]

    def _best(self, vector: np.ndarray) -> CelebrityMatch | None:
        if self._collection is None:
            return None
        wanted = CANDIDATES
        while True:
            try:
                hits = self._searcher.search_users(self._collection, vector, wanted,
                                                   self._threshold)
            except CollectionNotFound:  # deleted while it was searched: an empty gallery
                return None
            found = next((h for h in hits if is_celebrity_id(h.user.user_id)), None)
            if found is not None:
                return self._named(found)
            if len(hits) < wanted:  # every user over the threshold was looked at
                return None
            wanted *= 2

    def _named(self, hit: UserHit) -> CelebrityMatch:
        user_id = hit.user.user_id
        return CelebrityMatch(user_id, self._catalog.info(user_id), hit.similarity)

    def info(self, celebrity_id: str) -> CelebrityInfo:
        """GetCelebrityInfo: a user of the gallery; otherwise ResourceNotFoundException."""
        if self._known(celebrity_id):
            return self._catalog.info(celebrity_id)
        msg = f"The celebrity id: {celebrity_id} does not exist"
        raise CelebrityNotFound(msg)

    def _known(self, celebrity_id: str) -> bool:
        if self._collection is None or self._users is None:
            return False
        if not is_celebrity_id(celebrity_id):
            return False
        try:
            return self._users.get(self._collection, celebrity_id) is not None
        except KeyError:  # no gallery collection (yet)
            return False
