"""Users of a collection: rows in SQLite, records and user vectors in memory.

Every change runs under the collection's lock in one transaction (with the request's
ClientRequestToken when it has one) and touches memory only once that committed. A change
re-checks what it relies on inside that transaction (the user exists, each face exists and
belongs to whom the caller saw), so a face deleted between the caller's checks and the
change makes it fail with :class:`StaleUserChange` instead of leaving a half-made user.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from streamproc.storage.collections import CollectionStore, Edit
from streamproc.storage.db import Database
from streamproc.storage.requests import RequestLog, SavedRequest
from streamproc.storage.usertable import UserRecord, user_vector


class StaleUserChange(Exception):
    """What a user change relied on changed before it could be made."""


class UserStore:
    """All users of all collections. Construction does no I/O (see :meth:`load`)."""

    def __init__(self, db: Database, collections: CollectionStore, requests: RequestLog) -> None:
        self._db = db
        self._collections = collections
        self._requests = requests

    def load(self) -> None:
        """Read every collection's users and rebuild their vectors (after collections load)."""
        for cid in self._collections.list_ids():
            members: dict[str, list[bytes]] = defaultdict(list)
            for user_id, blob in self._db.query(
                    "SELECT user_id, embedding FROM faces WHERE collection = ? "
                    "AND user_id IS NOT NULL ORDER BY seq", (cid,)):
                members[user_id].append(blob)
            table = self._collections.users(cid)
            info = self._collections.get(cid)
            dim = info.dim if info is not None else 0
            for seq, user_id, created in self._db.query(
                    "SELECT seq, user_id, created FROM users WHERE collection = ?", (cid,)):
                blobs = members.get(user_id, [])
                vectors = _stack(blobs, dim)
                table.put(UserRecord(seq, user_id, created, len(blobs)), user_vector(vectors))

    # ---- reads (KeyError for an unknown collection) -------------------------------------
    def get(self, collection_id: str, user_id: str) -> UserRecord | None:
        """A user, or None."""
        return self._collections.users(collection_id).get(user_id)

    def count(self, collection_id: str) -> int:
        """Number of users in a collection."""
        return len(self._collections.users(collection_id))

    def page(self, collection_id: str, after_seq: int, limit: int) -> list[UserRecord]:
        """Users in creation order after ``after_seq``."""
        return self._collections.users(collection_id).page(after_seq, limit)

    def vector(self, collection_id: str, user_id: str) -> np.ndarray | None:
        """A user's vector (None without faces)."""
        return self._collections.users(collection_id).vector(user_id)

    def search(self, collection_id: str, vectors: np.ndarray, k: int, min_cosine: float
               ) -> list[list[tuple[float, UserRecord]]]:
        """Per query vector, up to ``k`` users with cosine >= ``min_cosine``, best first."""
        return self._collections.users(collection_id).search(vectors, k, min_cosine)

    # ---- changes ----------------------------------------------------------------------------
    def create(self, collection_id: str, user_id: str, saved: SavedRequest | None
               ) -> UserRecord | None:
        """Add a user without faces; None if the id is taken."""
        with self._collections.edit(collection_id) as change:
            if change.state.users.get(user_id) is not None:
                return None
            created = time.time()
            cur = change.conn.execute(
                "INSERT INTO users (collection, user_id, created) VALUES (?, ?, ?)",
                (collection_id, user_id, created))
            record = UserRecord(int(cur.lastrowid or 0), user_id, created)
            self._save(change, saved)
            change.after.append(lambda: change.state.users.put(record, None))
            return record

    def delete(self, collection_id: str, user_id: str, saved: SavedRequest | None) -> bool:
        """Disassociate a user's faces and delete it; False if unknown."""
        with self._collections.edit(collection_id) as change:
            if change.state.users.get(user_id) is None:
                return False
            faces = [row[0] for row in change.conn.execute(
                "SELECT face_id FROM faces WHERE collection = ? AND user_id = ?",
                (collection_id, user_id))]
            change.conn.execute("UPDATE faces SET user_id = NULL WHERE collection = ? AND "
                                "user_id = ?", (collection_id, user_id))
            change.conn.execute("DELETE FROM users WHERE collection = ? AND user_id = ?",
                                (collection_id, user_id))
            self._save(change, saved)

            def forget() -> None:
                for face_id in faces:
                    change.state.relabel(face_id, None)
                change.state.users.remove(user_id)

            change.after.append(forget)
            return True

    def set_faces(self, collection_id: str, user_id: str, add: list[str], remove: list[str],
                  saved: SavedRequest | None) -> UserRecord:
        """Associate ``add`` with the user and disassociate ``remove``; returns the user.

        Raises :class:`StaleUserChange` if the user is gone, a face in ``add`` is gone or
        belongs to another user, or a face in ``remove`` is no longer the user's.
        """
        with self._collections.edit(collection_id) as change:
            record = change.state.users.get(user_id)
            if record is None:
                raise StaleUserChange(user_id)
            _check_owners(change, add, (None, user_id))
            _check_owners(change, remove, (user_id,))
            change.conn.executemany("UPDATE faces SET user_id = ? WHERE collection = ? AND "
                                    "face_id = ?", [(user_id, collection_id, f) for f in add])
            change.conn.executemany("UPDATE faces SET user_id = NULL WHERE collection = ? AND "
                                    "face_id = ?", [(collection_id, f) for f in remove])
            blobs = [row[0] for row in change.conn.execute(
                "SELECT embedding FROM faces WHERE collection = ? AND user_id = ?",
                (collection_id, user_id))]
            vectors = _stack(blobs, change.state.info.dim)
            updated = UserRecord(record.seq, user_id, record.created, len(blobs))
            self._save(change, saved)

            def apply() -> None:
                for face_id in add:
                    change.state.relabel(face_id, user_id)
                for face_id in remove:
                    change.state.relabel(face_id, None)
                change.state.users.put(updated, user_vector(vectors))

            change.after.append(apply)
            return updated

    def _save(self, change: Edit, saved: SavedRequest | None) -> None:
        if saved is not None:
            self._requests.save(change.conn, saved)


def _stack(blobs: list[bytes], dim: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), dim)


def _check_owners(change: Edit, face_ids: list[str], allowed: tuple[str | None, ...]) -> None:
    for face_id in face_ids:
        face = change.state.face(face_id)
        if face is None or face.user_id not in allowed:
            raise StaleUserChange(face_id)
