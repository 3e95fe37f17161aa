"""Users of a collection: the rules behind CreateUser ... SearchUsersByImage.

Changes to users are serialised by one lock, so a ClientRequestToken's lookup, the change
and its record cannot interleave with another change; the store re-checks the faces inside
its transaction, which catches a concurrent DeleteFaces (then: ConflictException).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from streamproc.collections.idempotency import Idempotency
from streamproc.config import Config
from streamproc.errors import (
    ConflictException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.ledger import Appliers, Ledger
from streamproc.rekognition.constants import (
    DEFAULT_ASSOCIATE_THRESHOLD,
    MAX_FACES_PER_USER,
    MAX_USER_RESULTS,
    UserStatus,
)
from streamproc.rekognition.tokens import page_by_seq
from streamproc.search.searcher import CollectionNotFound, FaceSearcher, in_collection
from streamproc.storage.collections import CollectionStore
from streamproc.storage.users import StaleUserChange, UserStore
from streamproc.storage.usertable import UserRecord

logger = logging.getLogger(__name__)

FACE_NOT_FOUND = "FACE_NOT_FOUND"
ASSOCIATED_TO_A_DIFFERENT_USER = "ASSOCIATED_TO_A_DIFFERENT_USER"
LOW_MATCH_CONFIDENCE = "LOW_MATCH_CONFIDENCE"


@dataclass(frozen=True)
class FaceOutcome:
    """A face AssociateFaces or DisassociateFaces could not change, and why."""

    face_id: str
    reasons: list[str]
    user_id: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class Membership:
    """What AssociateFaces / DisassociateFaces did."""

    done: list[str]
    failed: list[FaceOutcome] = field(default_factory=list)
    status: UserStatus = UserStatus.CREATED

    def to_saved(self) -> dict[str, Any]:
        """A JSON-able form, remembered with the ClientRequestToken."""
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> Membership:
        """Inverse of :meth:`to_saved`."""
        return cls(data["done"], [FaceOutcome(**f) for f in data["failed"]],
                   UserStatus(data["status"]))


class UserService:
    """Rules for users and their faces; raises domain errors only."""

    def __init__(self, users: UserStore, store: CollectionStore, searcher: FaceSearcher,
                 idempotency: Idempotency, config: Config, ledger: Ledger) -> None:
        self._ledger = ledger
        self._users = users
        self._store = store
        self._searcher = searcher
        self._idempotency = idempotency
        self._max_users = config.storage.max_users_per_collection
        self._lock = threading.Lock()

    # ---- commands: what the API calls submits; the appliers below hold the rules ---------
    def register(self, appliers: Appliers) -> None:
        """Declare the user commands."""
        for kind, fn in (("user.create", self._create_user),
                         ("user.delete", self._delete_user),
                         ("user.associate", self._associate_faces),
                         ("user.disassociate", self._disassociate_faces)):
            appliers.register(kind, lambda p, where, fn=fn: fn(**p))

    def create_user(self, collection_id: str, user_id: str, token: str | None) -> None:
        """CreateUser: a user without faces (status CREATED)."""
        self._ledger.submit("user.create", {"collection_id": collection_id,
                                            "user_id": user_id, "token": token})

    def delete_user(self, collection_id: str, user_id: str, token: str | None) -> None:
        """DeleteUser: disassociates the user's faces (they stay indexed), then deletes it."""
        self._ledger.submit("user.delete", {"collection_id": collection_id,
                                            "user_id": user_id, "token": token})

    def associate_faces(self, collection_id: str, user_id: str, face_ids: list[str],
                        threshold: float | None, token: str | None) -> Membership:
        """AssociateFaces (see the README for the rules)."""
        return self._ledger.submit("user.associate", {
            "collection_id": collection_id, "user_id": user_id, "face_ids": face_ids,
            "threshold": threshold, "token": token})

    def disassociate_faces(self, collection_id: str, user_id: str, face_ids: list[str],
                           token: str | None) -> Membership:
        """DisassociateFaces: faces of another user or unknown are reported, not changed."""
        return self._ledger.submit("user.disassociate", {
            "collection_id": collection_id, "user_id": user_id, "face_ids": face_ids,
            "token": token})

    # ---- users -------------------------------------------------------------------------
    def _create_user(self, collection_id: str, user_id: str, token: str | None) -> None:
        """CreateUser: a user without faces (status CREATED)."""
        request = {"CollectionId": collection_id, "UserId": user_id}
        with self._lock:
            if self._idempotency.replay("CreateUser", token, request) is not None:
                return
            self._require_collection(collection_id)
            if in_collection(collection_id, self._users.count) >= self._max_users:
                raise ServiceQuotaExceededException(
                    f"Collection {collection_id} already has {self._max_users} users")
            saved = self._idempotency.record("CreateUser", token, collection_id, request, {})
            if in_collection(collection_id, self._users.create, user_id, saved) is None:
                raise ConflictException(
                    f"A user with id {user_id} already exists in collection {collection_id}")
        logger.info("created user %s in %s", user_id, collection_id)

    def _delete_user(self, collection_id: str, user_id: str, token: str | None) -> None:
        """DeleteUser: disassociates the user's faces (they stay indexed), then deletes it."""
        request = {"CollectionId": collection_id, "UserId": user_id}
        with self._lock:
            if self._idempotency.replay("DeleteUser", token, request) is not None:
                return
            self._require_collection(collection_id)
            saved = self._idempotency.record("DeleteUser", token, collection_id, request, {})
            if not in_collection(collection_id, self._users.delete, user_id, saved):
                raise self._no_user(collection_id, user_id)

    def list_users(self, collection_id: str, token: str | None, max_results: int | None
                   ) -> tuple[list[UserRecord], str | None]:
        """One page of users in creation order, and the token for the next."""
        self._require_collection(collection_id)
        return page_by_seq(
            f"users:{collection_id}", token, max_results or MAX_USER_RESULTS,
            lambda after, count: in_collection(collection_id, self._users.page, after, count),
            lambda user: user.seq)

    def user_count(self, collection_id: str) -> int:
        """How many users a collection has (DescribeCollection's UserCount)."""
        return in_collection(collection_id, self._users.count)

    # ---- faces of a user -------------------------------------------------------------------
    def _associate_faces(self, collection_id: str, user_id: str, face_ids: list[str],
                         threshold: float | None, token: str | None) -> Membership:
        """AssociateFaces (see the README for the rules)."""
        cut = DEFAULT_ASSOCIATE_THRESHOLD if threshold is None else float(threshold)
        request = {"CollectionId": collection_id, "UserId": user_id, "FaceIds": face_ids,
                   "UserMatchThreshold": cut}
        with self._lock:
            replay = self._idempotency.replay("AssociateFaces", token, request)
            if replay is not None:
                return Membership.from_saved(replay)
            self._searcher.check(collection_id)
            user = self.user(collection_id, user_id)
            accepted, failed = self._sort_faces(collection_id, user_id, face_ids)
            accepted, low = self._match_user(collection_id, user_id, accepted, cut)
            total = user.face_count + len(accepted)
            if total > MAX_FACES_PER_USER:
                raise ServiceQuotaExceededException(
                    f"User {user_id} has {user.face_count} faces; associating {len(accepted)} "
                    f"more would exceed the limit of {MAX_FACES_PER_USER} faces per user")
            result = Membership(accepted, failed + low, UserStatus.of(total))
            self._apply("AssociateFaces", token, request, result, accepted, [])
            return result

    def _disassociate_faces(self, collection_id: str, user_id: str, face_ids: list[str],
                            token: str | None) -> Membership:
        """DisassociateFaces: faces of another user or unknown are reported, not changed."""
        request = {"CollectionId": collection_id, "UserId": user_id, "FaceIds": face_ids}
        with self._lock:
            replay = self._idempotency.replay("DisassociateFaces", token, request)
            if replay is not None:
                return Membership.from_saved(replay)
            self._require_collection(collection_id)
            user = self.user(collection_id, user_id)
            done, failed = [], []
            for face_id in dict.fromkeys(face_ids):
                face = in_collection(collection_id, self._store.face, face_id)
                if face is None:
                    failed.append(FaceOutcome(face_id, [FACE_NOT_FOUND], user_id))
                elif face.user_id == user_id:
                    done.append(face_id)
                elif face.user_id is not None:
                    failed.append(FaceOutcome(face_id, [ASSOCIATED_TO_A_DIFFERENT_USER],
                                              face.user_id))
            result = Membership(done, failed, UserStatus.of(user.face_count - len(done)))
            self._apply("DisassociateFaces", token, request, result, [], done)
            return result

    def _sort_faces(self, collection_id: str, user_id: str, face_ids: list[str]
                    ) -> tuple[list[str], list[FaceOutcome]]:
        """Faces that may join the user, and those that may not (already its own: neither)."""
        accepted, failed = [], []
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
        sims = [float(s) for s in self._searcher.similarity(embeddings @ vector)]
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
    def user(self, collection_id: str, user_id: str) -> UserRecord:
        """A user, or ResourceNotFoundException naming it."""
        user = in_collection(collection_id, self._users.get, user_id)
        if user is None:
            raise self._no_user(collection_id, user_id)
        return user

    @staticmethod
    def _no_user(collection_id: str, user_id: str) -> ResourceNotFoundException:
        return ResourceNotFoundException(
            f"The user id: {user_id} does not exist in collection {collection_id}")

    def _require_collection(self, collection_id: str) -> None:
        if self._store.get(collection_id) is None:
            raise CollectionNotFound(f"The collection id: {collection_id} does not exist")
