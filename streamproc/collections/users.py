"""Users of a collection, API side: CreateUser ... DisassociateFaces submit, ListUsers reads.

Each change becomes a command for the ledger; its applier
(:mod:`streamproc.collections.user_rules`) holds the rules, with the ClientRequestToken
records, so every node that replays the log decides the same.
"""

from __future__ import annotations

from streamproc.collections.commands import (
    AssociateFaces,
    CreateUser,
    DeleteUser,
    DisassociateFaces,
)
from streamproc.collections.membership import Membership
from streamproc.ledger import Ledger
from streamproc.rekognition.constants import MAX_USER_RESULTS
from streamproc.rekognition.tokens import page_by_seq
from streamproc.search.searcher import CollectionNotFound, in_collection
from streamproc.storage.collections import CollectionStore
from streamproc.storage.users import UserStore
from streamproc.storage.usertable import UserRecord


class UserService:
    """What the API calls for users; raises domain errors only."""

    def __init__(self, users: UserStore, store: CollectionStore, ledger: Ledger) -> None:
        self._ledger = ledger
        self._users = users
        self._store = store

    def create_user(self, collection_id: str, user_id: str, token: str | None) -> None:
        """CreateUser: a user without faces (status CREATED)."""
        self._ledger.submit(CreateUser(collection_id, user_id, token))

    def delete_user(self, collection_id: str, user_id: str, token: str | None) -> None:
        """DeleteUser: disassociates the user's faces (they stay indexed), then deletes it."""
        self._ledger.submit(DeleteUser(collection_id, user_id, token))

    def associate_faces(self, collection_id: str, user_id: str, face_ids: list[str],
                        threshold: float | None, token: str | None) -> Membership:
        """AssociateFaces (docs/users.md has the rules)."""
        return self._ledger.submit(AssociateFaces(collection_id, user_id, face_ids, threshold,
                                                  token))

    def disassociate_faces(self, collection_id: str, user_id: str, face_ids: list[str],
                           token: str | None) -> Membership:
        """DisassociateFaces: faces of another user or unknown are reported, not changed."""
        return self._ledger.submit(DisassociateFaces(collection_id, user_id, face_ids, token))

    def list_users(self, collection_id: str, token: str | None, max_results: int | None
                   ) -> tuple[list[UserRecord], str | None]:
        """One page of users in creation order, and the token for the next."""
        if self._store.get(collection_id) is None:
            raise CollectionNotFound(f"The collection id: {collection_id} does not exist")
        return page_by_seq(
            f"users:{collection_id}", token, max_results or MAX_USER_RESULTS,
            lambda after, count: in_collection(collection_id, self._users.page, after, count),
            lambda user: user.seq)
