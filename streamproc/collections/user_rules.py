"""Every change to users, applied in ledger order: CreateUser ... DisassociateFaces.

The API side (:mod:`streamproc.collections.users`) only submits the commands; the rules
live here, once. Changes to users are serialised by one lock, so a ClientRequestToken's
lookup, the change and its record cannot interleave with another change; the store
re-checks the faces inside its transaction, which catches a concurrent DeleteFaces (then:
ConflictException).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from streamproc.collections.commands import (
    AssociateFaces,
    CreateUser,
    DeleteUser,
    DisassociateFaces,
)
from streamproc.collections.idempotency import Idempotency
from streamproc.collections.membership import (
    ASSOCIATED_TO_A_DIFFERENT_USER,
    FACE_NOT_FOUND,
    LOW_MATCH_CONFIDENCE,
    FaceOutcome,
    Membership,
)
from streamproc.config import Config
from streamproc.errors import (
    ConflictException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.ledger import Applied, Appliers
from streamproc.rekognition.constants import (
    DEFAULT_ASSOCIATE_THRESHOLD,
    MAX_FACES_PER_USER,
    UserStatus,
)
from streamproc.search.searcher import CollectionNotFound, FaceSearcher, in_collection
from streamproc.storage.collections import CollectionStore
from streamproc.storage.users import StaleUserChange, UserStore
from streamproc.storage.usertable import UserRecord

logger = logging.getLogger(__name__)


class UserRules:
    """Applies the user commands to the user store."""

    def __init__(self, users: UserStore, store: CollectionStore, searcher: FaceSearcher,
                 idempotency: Idempotency, config: Config) -> None:
        self._users = users
        self._store = store
        self._searcher = searcher
        self._idempotency = idempotency
        self._max_users = config.storage.max_users_per_collection
        self._lock = threading.Lock()

    def register(self, appliers: Appliers) -> None:
        """Declare the user commands."""
        appliers.register(CreateUser, self._create_user)
        appliers.register(DeleteUser, self._delete_user)
        appliers.register(AssociateFaces, self._associate_faces)
        appliers.register(DisassociateFaces, self._disassociate_faces)

    # ---- users -------------------------------------------------------------------------
    def _create_user(self, c: CreateUser, where: Applied) -> None:
        request = {"CollectionId": c.collection_id, "UserId": c.user_id}
        with self._lock:
            if self._idempotency.replay("CreateUser", c.token, request) is not None:
                return
            self._require_collection(c.collection_id)
            if in_collection(c.collection_id, self._users.count) >= self._max_users:
                raise ServiceQuotaExceededException(
                    f"Collection {c.collection_id} already has {self._max_users} users")
            saved = self._idempotency.record("CreateUser", c.token, c.collection_id, request,
                                             {})
            if in_collection(c.collection_id, self._users.create, c.user_id, saved) is None:
                raise ConflictException(f"A user with id {c.user_id} already exists in "
                                        f"collection {c.collection_id}")
        logger.info("created user %s in %s", c.user_id, c.collection_id)

    def _delete_user(self, c: DeleteUser, where: Applied) -> None:
        request = {"CollectionId": c.collection_id, "UserId": c.user_id}
        with self._lock:
            if self._idempotency.replay("DeleteUser", c.token, request) is not None:
                return
            self._require_collection(c.collection_id)
            saved = self._idempotency.record("DeleteUser", c.token, c.collection_id, request,
                                             {})
            if not in_collection(c.collection_id, self._users.delete, c.user_id, saved):
                raise no_user(c.collection_id, c.user_id)

    # ---- faces of a user -------------------------------------------------------------------
    def _associate_faces(self, c: AssociateFaces, where: Applied) -> Membership:
        cut = DEFAULT_ASSOCIATE_THRESHOLD if c.threshold is None else float(c.threshold)
        request = {"CollectionId": c.collection_id, "UserId": c.user_id,
                   "FaceIds": c.face_ids, "UserMatchThreshold": cut}
        with self._lock:
            replay = self._idempotency.replay("AssociateFaces", c.token, request)
            if replay is not None:
                return Membership.from_saved(replay)
            self._searcher.check(c.collection_id)
            user = self._user(c.collection_id, c.user_id)
            accepted, failed = self._sort_faces(c.collection_id, c.user_id, c.face_ids)
            accepted, low = self._match_user(c.collection_id, c.user_id, accepted, cut)
            total = user.face_count + len(accepted)
            if total > MAX_FACES_PER_USER:
                raise ServiceQuotaExceededException(
                    f"User {c.user_id} has {user.face_count} faces; associating "
                    f"{len(accepted)} more would exceed the limit of {MAX_FACES_PER_USER} "
                    "faces per user")
            result = Membership(accepted, failed + low, UserStatus.of(total))
            self._apply("AssociateFaces", c.token, request, result, accepted, [])
            return result

    def _disassociate_faces(self, c: DisassociateFaces, where: Applied) -> Membership:
        request = {"CollectionId": c.collection_id, "UserId": c.user_id,
                   "FaceIds": c.face_ids}
        with self._lock:
            replay = self._idempotency.replay("DisassociateFaces", c.token, request)
            if replay is not None:
                return Membership.from_saved(replay)
            self._require_collection(c.collection_id)
            user = self._user(c.collection_id, c.user_id)
            done, failed = self._own_faces(c.collection_id, c.user_id, c.face_ids)
            result = Membership(done, failed, UserStatus.of(user.face_count - len(done)))
            self._apply("DisassociateFaces", c.token, request, result, [], done)
            return result

    def _own_faces(self, collection_id: str, user_id: str, face_ids: list[str]
                   ) -> tuple[list[str], list[FaceOutcome]]:
        """Faces that may leave the user, and those that are not its own (unknown, another's)."""
        done: list[str] = []
        failed: list[FaceOutcome] = []
        for face_id in dict.fromkeys(face_ids):
            face = in_collection(collection_id, self._store.face, face_id)
            if face is None:
                failed.append(FaceOutcome(face_id, [FACE_NOT_FOUND], user_id))
            elif face.user_id == user_id:
                done.append(face_id)
            elif face.user_id is not None:
                failed.append(FaceOutcome(face_id, [ASSOCIATED_TO_A_DIFFERENT_USER],
                                          face.user_id))
        return done, failed

    def _sort_faces(self, collection_id: str, user_id: str, face_ids: list[str]
                    ) -> tuple[list[str], list[FaceOutcome]]:
        """Faces that may join the user, and those that may not (already its own: neither)."""
        accepted: list[str] = []
        failed: list[FaceOutcome] = []
        for face_id in dict.fromkeys(face_ids):
            face = in_collection(collection_id, self._store.face, face_id)
            if face is None:
                failed.append(FaceOutcome(face_id, [FACE_NOT_FOUND], user_id))
            elif face.user_id is None:
                accepted.append(face_id)
            elif face.user_id != user_id:
                failed.append(FaceOutcome(face_id, [ASSOCIATED_TO_A_DIFFERENT_USER],
                                          face.user_id))
        return accepted, failed

    def _match_user(self, collection_id: str, user_id: str, face_ids: list[str],
                    threshold: float) -> tuple[list[str], list[FaceOutcome]]:
        """Split faces by whether they match the user's vector.

        A user without faces takes any: UserMatchThreshold applies once "at least one
        FaceID" is associated.
        """
        vector = in_collection(collection_id, self._users.vector, user_id)
        if vector is None or not face_ids:
            return face_ids, []
        embeddings = in_collection(collection_id, self._store.embeddings, face_ids)
        if len(embeddings) != len(face_ids):
            raise ConflictException(f"Faces of user {user_id} changed during the request")
        sims = [float(s) for s in np.atleast_1d(self._searcher.similarity(embeddings @ vector))]
        keep = [f for f, s in zip(face_ids, sims, strict=True) if s >= threshold]
        low = [FaceOutcome(f, [LOW_MATCH_CONFIDENCE], user_id, round(s, 6))
               for f, s in zip(face_ids, sims, strict=True) if s < threshold]
        return keep, low

    def _apply(self, operation: str, token: str | None, request: dict[str, Any],
               result: Membership, add: list[str], remove: list[str]) -> None:
        collection_id, user_id = request["CollectionId"], request["UserId"]
        saved = self._idempotency.record(operation, token, collection_id, request,
                                         result.to_saved())
        try:
            in_collection(collection_id, self._users.set_faces, user_id, add, remove, saved)
        except StaleUserChange as exc:
            raise ConflictException(
                f"User {user_id} or face {exc} changed while {operation} ran; "
                "nothing was changed, retry the request") from None

    # ---- helpers -------------------------------------------------------------------------------
    def _user(self, collection_id: str, user_id: str) -> UserRecord:
        user = in_collection(collection_id, self._users.get, user_id)
        if user is None:
            raise no_user(collection_id, user_id)
        return user

    def _require_collection(self, collection_id: str) -> None:
        if self._store.get(collection_id) is None:
            raise CollectionNotFound(f"The collection id: {collection_id} does not exist")


def no_user(collection_id: str, user_id: str) -> ResourceNotFoundException:
    """The error for a user that is not there, naming it."""
    return ResourceNotFoundException(
        f"The user id: {user_id} does not exist in collection {collection_id}")
