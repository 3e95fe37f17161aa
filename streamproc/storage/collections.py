"""Collections and their faces: metadata in SQLite, vectors in per-collection FAISS indexes."""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from streamproc.storage.builder import IndexBuilder
from streamproc.storage.db import Database
from streamproc.storage.index import FaceIndex, IndexPolicy
from streamproc.storage.usertable import UserTable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectionInfo:
    """One collection's metadata."""

    collection_id: str
    arn: str
    created: float
    pack: str
    dim: int
    face_model_version: str
    recognizer: str | None = None  # sha256 of the recogniser file; None before schema v2


@dataclass(frozen=True)
class StoredFace:
    """A face as indexed: the Rekognition ``Face`` fields plus its row id."""

    seq: int
    face_id: str
    image_id: str
    external_image_id: str | None
    bbox: dict[str, float]
    confidence: float
    user_id: str | None = None  # the user the face is associated with (AssociateFaces)


@dataclass(frozen=True)
class NewFace:
    """A face to add to a collection."""

    face_id: str
    image_id: str
    external_image_id: str | None
    bbox: dict[str, float]
    confidence: float
    embedding: np.ndarray


class Loaded:
    """In-memory state of one collection: its indexes, row-id -> face map and users."""

    def __init__(self, info: CollectionInfo, policy: IndexPolicy) -> None:
        self.info = info
        self.index = FaceIndex(info.dim, policy)
        self.faces: dict[int, StoredFace] = {}
        self.by_face_id: dict[str, int] = {}
        self.users = UserTable(info.dim, policy)

    def face(self, face_id: str) -> StoredFace | None:
        """A face by id, or None."""
        seq = self.by_face_id.get(face_id)
        return None if seq is None else self.faces.get(seq)

    def relabel(self, face_id: str, user_id: str | None) -> None:
        """Record which user a face belongs to (after the change is committed)."""
        face = self.face(face_id)
        if face is not None:
            self.faces[face.seq] = replace(face, user_id=user_id)

    def remember(self, face: StoredFace) -> None:
        """Add a face to the maps."""
        self.faces[face.seq] = face
        self.by_face_id[face.face_id] = face.seq

    def forget(self, seq: int) -> None:
        """Drop a face from the maps."""
        face = self.faces.pop(seq, None)
        if face is not None:
            self.by_face_id.pop(face.face_id, None)


@dataclass
class Edit:
    """A change to one collection.

    Its SQL runs in ``conn``'s transaction; the ``after`` callbacks update memory once that
    transaction committed (the collection's lock still held).
    """

    conn: sqlite3.Connection
    state: Loaded
    after: list[Callable[[], None]] = field(default_factory=list)


_FACE_COLUMNS = "seq, face_id, image_id, external_image_id, bbox, confidence, user_id"


def _row_face(row: tuple) -> StoredFace:
    seq, face_id, image_id, external, bbox, confidence, user_id = row[:7]
    return StoredFace(seq, face_id, image_id, external, json.loads(bbox), confidence, user_id)


class CollectionStore:
    """All collections. Thread-safe; construction does no I/O (see :meth:`load`)."""

    def __init__(self, db: Database, builder: IndexBuilder | None = None,
                 policy: IndexPolicy | None = None) -> None:
        self._db = db
        self._builder = builder
        self._policy = policy or IndexPolicy()
        self._collections: dict[str, Loaded] = {}
        self._lock = threading.RLock()

    def load(self) -> None:
        """Rebuild every collection's index from the database."""
        rows = self._db.query("SELECT id, arn, created, pack, dim, face_model_version, "
                              "recognizer FROM collections")
        for row in rows:
            loaded = Loaded(CollectionInfo(*row), self._policy)
            faces = self._db.query(
                f"SELECT {_FACE_COLUMNS}, embedding FROM faces WHERE collection = ? ORDER BY seq",
                (loaded.info.collection_id,))
            self._index_rows(loaded, faces)
            self._collections[loaded.info.collection_id] = loaded
            logger.info("collection %s: %d faces", loaded.info.collection_id, len(faces))
            self._maybe_rebuild(loaded)

    def _maybe_rebuild(self, loaded: Loaded) -> None:
        if self._builder is not None and loaded.index.wants_rebuild():
            cid = loaded.info.collection_id
            self._builder.submit(cid, loaded.index, lambda: self._snapshot(cid))

    def _snapshot(self, collection_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Every (row id, embedding) of a collection, read on the builder's own connection."""
        ids, chunks = [], []
        for seq, blob in self._db.read_rows(
                "SELECT seq, embedding FROM faces WHERE collection = ? ORDER BY seq",
                (collection_id,)):
            ids.append(seq)
            chunks.append(blob)
        dim = self._collections[collection_id].info.dim if collection_id in \
            self._collections else 0
        vectors = np.frombuffer(b"".join(chunks), np.float32).reshape(len(ids), dim)
        return np.array(ids, np.int64), vectors

    def index_kind(self, collection_id: str) -> str:
        """"flat" or "ivf" (tests and benchmarks)."""
        return self._loaded(collection_id).index.kind

    @staticmethod
    def _index_rows(loaded: Loaded, rows: list) -> None:
        if not rows:
            return
        vectors = np.frombuffer(b"".join(r[7] for r in rows), np.float32).reshape(len(rows), -1)
        loaded.index.add(np.array([r[0] for r in rows], np.int64), vectors)
        for row in rows:
            loaded.remember(_row_face(row))

    def create(self, info: CollectionInfo) -> bool:
        """Create a collection; False if the id is taken."""
        with self._lock:
            if info.collection_id in self._collections:
                return False
            with self._db.transaction() as conn:
                conn.execute("INSERT INTO collections (id, arn, created, pack, dim, "
                             "face_model_version, recognizer) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (info.collection_id, info.arn, info.created, info.pack, info.dim,
                              info.face_model_version, info.recognizer))
            self._collections[info.collection_id] = Loaded(info, self._policy)
            return True

    def delete(self, collection_id: str) -> bool:
        """Delete a collection and its faces; False if unknown."""
        with self._lock:
            if collection_id not in self._collections:
                return False
            with self._db.transaction() as conn:
                for table in ("faces", "users", "request_tokens"):
                    conn.execute(f"DELETE FROM {table} WHERE collection = ?", (collection_id,))
                conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
            del self._collections[collection_id]
            return True

    def get(self, collection_id: str) -> CollectionInfo | None:
        """Metadata of one collection, or None."""
        loaded = self._collections.get(collection_id)
        return loaded.info if loaded else None

    def face_count(self, collection_id: str) -> int:
        """Number of faces in a collection (0 if unknown)."""
        loaded = self._collections.get(collection_id)
        return len(loaded.faces) if loaded else 0

    def list_ids(self) -> list[str]:
        """All collection ids, sorted."""
        with self._lock:
            return sorted(self._collections)

    def _loaded(self, collection_id: str) -> Loaded:
        loaded = self._collections.get(collection_id)
        if loaded is None:
            raise KeyError(collection_id)
        return loaded

    def add_faces(self, collection_id: str, faces: list[NewFace]) -> list[StoredFace]:
        """Persist then index faces; a face id already present is returned, not duplicated."""
        with self._lock:
            loaded = self._loaded(collection_id)
            stored, fresh, vectors = [], [], []
            with self._db.transaction() as conn:
                for face in faces:
                    seq = loaded.by_face_id.get(face.face_id)
                    if seq is not None:
                        stored.append(loaded.faces[seq])
                        continue
                    vector = np.ascontiguousarray(face.embedding, np.float32)
                    cur = conn.execute(
                        "INSERT INTO faces (collection, face_id, image_id, external_image_id, "
                        "bbox, confidence, embedding, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (collection_id, face.face_id, face.image_id, face.external_image_id,
                         json.dumps(face.bbox), face.confidence, vector.tobytes(), time.time()))
                    assert cur.lastrowid is not None  # set by every INSERT
                    row = StoredFace(cur.lastrowid, face.face_id, face.image_id,
                                     face.external_image_id, face.bbox, face.confidence)
                    stored.append(row)
                    fresh.append(row)
                    vectors.append(vector)
            # Committed: now visible to searches (processors search this same index).
            if fresh:
                loaded.index.add(np.array([f.seq for f in fresh], np.int64), np.vstack(vectors))
                for row in fresh:
                    loaded.remember(row)
                self._maybe_rebuild(loaded)
            return stored

    def delete_faces(self, collection_id: str, face_ids: list[str]
                     ) -> tuple[list[str], list[str], list[StoredFace]]:
        """Delete faces by id; returns (deleted, not found, kept: associated with a user)."""
        with self._lock:
            loaded = self._loaded(collection_id)
            wanted = list(dict.fromkeys(face_ids))
            kept = [f for f in map(loaded.face, wanted) if f is not None and f.user_id]
            found = [f for f in wanted if f in loaded.by_face_id
                     and loaded.faces[loaded.by_face_id[f]].user_id is None]
            missing = [f for f in wanted if f not in loaded.by_face_id]
            seqs = [loaded.by_face_id[f] for f in found]
            with self._db.transaction() as conn:
                conn.executemany("DELETE FROM faces WHERE seq = ?", [(s,) for s in seqs])
            loaded.index.remove(np.array(seqs, np.int64))
            for seq in seqs:
                loaded.forget(seq)
            self._maybe_rebuild(loaded)
            return found, missing, kept

    @contextmanager
    def edit(self, collection_id: str) -> Iterator[Edit]:
        """Change a collection in one transaction under its lock (KeyError if unknown)."""
        with self._lock:
            state = self._loaded(collection_id)
            with self._db.transaction() as conn:
                change = Edit(conn, state)
                yield change
            for apply in change.after:
                apply()

    def users(self, collection_id: str) -> UserTable:
        """The collection's users (KeyError if the collection is unknown)."""
        return self._loaded(collection_id).users

    def face(self, collection_id: str, face_id: str) -> StoredFace | None:
        """A face by id, or None (KeyError if the collection is unknown)."""
        return self._loaded(collection_id).face(face_id)

    def embeddings(self, collection_id: str, face_ids: list[str]) -> np.ndarray:
        """The stored embeddings of ``face_ids`` in that order, one row each.

        Callers pass ids they just looked up; a face deleted since gives fewer rows.
        """
        loaded = self._loaded(collection_id)
        seqs = [s for s in (loaded.by_face_id.get(f) for f in face_ids) if s is not None]
        if not seqs:
            return np.empty((0, loaded.info.dim), np.float32)
        marks = ",".join("?" * len(seqs))
        blobs = dict(self._db.query(f"SELECT seq, embedding FROM faces WHERE seq IN ({marks})",
                                    tuple(seqs)))
        found = [blobs[s] for s in seqs if s in blobs]
        return np.frombuffer(b"".join(found), np.float32).reshape(len(found), loaded.info.dim)

    def list_faces(self, collection_id: str, after_seq: int, limit: int,
                   face_ids: list[str] | None = None,
                   user_id: str | None = None) -> list[StoredFace]:
        """Faces in insertion order after ``after_seq``, at most ``limit``.

        Optionally only those in ``face_ids`` and only those of ``user_id``.
        """
        loaded = self._loaded(collection_id)
        with self._lock:
            if face_ids is not None:
                wanted = {loaded.by_face_id[f] for f in face_ids if f in loaded.by_face_id}
                seqs = sorted(s for s in wanted if s > after_seq)
            else:
                seqs = sorted(s for s in loaded.faces if s > after_seq)
            faces = (loaded.faces[s] for s in seqs)
            if user_id is not None:
                faces = (f for f in faces if f.user_id == user_id)
            return list(itertools.islice(faces, limit))

    def get_face(self, collection_id: str, face_id: str) -> tuple[StoredFace, np.ndarray] | None:
        """A stored face and its embedding, or None."""
        loaded = self._loaded(collection_id)
        seq = loaded.by_face_id.get(face_id)
        if seq is None:
            return None
        rows = self._db.query("SELECT embedding FROM faces WHERE seq = ?", (seq,))
        if not rows:
            return None
        return loaded.faces[seq], np.frombuffer(rows[0][0], np.float32)

    def search(self, collection_id: str, vectors: np.ndarray, k: int,
               min_cosine: float) -> list[list[tuple[float, StoredFace]]]:
        """For each query vector, up to ``k`` faces with cosine >= ``min_cosine``, best first."""
        loaded = self._loaded(collection_id)
        return loaded.index.search_hits(vectors, k, min_cosine, loaded.faces.get)
