"""One collection's users in memory: their records and the index of their user vectors.

A user is searched through one *user vector*: the mean of its faces' unit embeddings,
scaled back to unit length (the centroid). On the shared photos and clips it finds the
right person more often than the user's best single face at the same false-match rate
(docs/users.md), it is what Rekognition calls associating face vectors "into one user
vector", and it costs one inner product per user, so the users of a collection are searched
with the same FAISS index type as its faces. A user without faces has no vector and is
never matched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from streamproc.storage.index import FaceIndex, IndexPolicy


@dataclass(frozen=True)
class UserRecord:
    """One user: id, row id (ListUsers order), creation time and how many faces it holds."""

    seq: int
    user_id: str
    created: float
    face_count: int = 0


def user_vector(embeddings: np.ndarray) -> np.ndarray | None:
    """The unit-length mean of a user's face embeddings (None for no faces)."""
    if len(embeddings) == 0:
        return None
    mean = np.asarray(embeddings, np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


class UserTable:
    """Records by id and by row id, plus the vector index keyed by row id. Thread-safe."""

    def __init__(self, dim: int, policy: IndexPolicy) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, UserRecord] = {}
        self._by_seq: dict[int, UserRecord] = {}
        self._vectors: dict[int, np.ndarray] = {}
        self._index = FaceIndex(dim, policy)

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, user_id: str) -> UserRecord | None:
        """A user by id, or None."""
        return self._by_id.get(user_id)

    def put(self, record: UserRecord, vector: np.ndarray | None) -> None:
        """Add or replace a user and its vector."""
        with self._lock:
            self._drop(record.user_id)
            self._by_id[record.user_id] = record
            self._by_seq[record.seq] = record
            if vector is not None:
                self._vectors[record.seq] = vector
                self._index.add(np.array([record.seq], np.int64), vector[None, :])

    def remove(self, user_id: str) -> None:
        """Forget a user (unknown ids are ignored)."""
        with self._lock:
            self._drop(user_id)

    def _drop(self, user_id: str) -> None:
        old = self._by_id.pop(user_id, None)
        if old is not None:
            self._by_seq.pop(old.seq, None)
            if self._vectors.pop(old.seq, None) is not None:
                self._index.remove(np.array([old.seq], np.int64))

    def vector(self, user_id: str) -> np.ndarray | None:
        """The user's vector (None for an unknown user or one without faces)."""
        record = self._by_id.get(user_id)
        return None if record is None else self._vectors.get(record.seq)

    def page(self, after_seq: int, limit: int) -> list[UserRecord]:
        """Users in creation order after row id ``after_seq``, at most ``limit``."""
        with self._lock:
            seqs = sorted(s for s in self._by_seq if s > after_seq)
            return [self._by_seq[s] for s in seqs[:limit]]

    def search(self, vectors: np.ndarray, k: int, min_cosine: float
               ) -> list[list[tuple[float, UserRecord]]]:
        """For each query vector, up to ``k`` users with cosine >= ``min_cosine``, best first."""
        return self._index.search_hits(vectors, k, min_cosine, self._by_seq.get)
