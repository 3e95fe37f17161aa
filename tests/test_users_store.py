"""The user store without models: vectors, races with DeleteFaces, migration to version 3."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from streamproc.storage.collections import CollectionInfo, CollectionStore, NewFace
from streamproc.storage.db import Database
from streamproc.storage.migrations import MAIN
from streamproc.storage.requests import RequestLog
from streamproc.storage.users import StaleUserChange, UserStore
from streamproc.storage.usertable import user_vector


def unit(*values: float) -> np.ndarray:
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def open_stores(path: Path) -> tuple[Database, CollectionStore, UserStore]:
    db = Database(path / "streamproc.db")
    db.open()
    store = CollectionStore(db)
    store.load()
    users = UserStore(db, store, RequestLog(db, 3600.0))
    users.load()
    return db, store, users


def add(store: CollectionStore, cid: str, face_id: str, vector: np.ndarray) -> None:
    store.add_faces(cid, [NewFace(face_id, "img", None, {}, 99.0, vector)])


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Database, CollectionStore, UserStore]:
    db, store, users = open_stores(tmp_path)
    store.create(CollectionInfo("c", "arn", time.time(), "p", 4, "7.0", "r"))
    return db, store, users


def test_user_vector_is_the_unit_mean() -> None:
    vector = user_vector(np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0)]))
    assert vector is not None
    np.testing.assert_allclose(vector, unit(1, 1, 0, 0), atol=1e-6)
    assert user_vector(np.empty((0, 4), np.float32)) is None


def test_search_follows_association(stores: tuple) -> None:
    _, store, users = stores
    add(store, "c", "f1", unit(1, 0, 0, 0))
    add(store, "c", "f2", unit(0, 1, 0, 0))
    assert users.create("c", "u", None) is not None
    assert users.create("c", "u", None) is None
    query = unit(1, 0.2, 0, 0)[None, :]
    assert users.search("c", query, 5, -1.0) == [[]]  # no faces, no vector
    record = users.set_faces("c", "u", ["f1", "f2"], [], None)
    assert record.face_count == 2
    [[(score, hit)]] = users.search("c", query, 5, -1.0)
    assert hit.user_id == "u" and score == pytest.approx(float(unit(1, 1, 0, 0) @ query[0]))
    assert store.face("c", "f1").user_id == "u"
    users.set_faces("c", "u", [], ["f2"], None)
    [[(score, _)]] = users.search("c", query, 5, -1.0)
    assert score == pytest.approx(float(unit(1, 0, 0, 0) @ query[0]))


def test_a_face_deleted_or_taken_meanwhile_makes_the_change_fail_whole(stores: tuple) -> None:
    _, store, users = stores
    for face_id in ("f1", "f2", "f3"):
        add(store, "c", face_id, unit(1, 0, 0, 1))
    users.create("c", "u", None)
    users.create("c", "v", None)
    users.set_faces("c", "v", ["f3"], [], None)
    store.delete_faces("c", ["f2"])  # between the service's checks and the change
    for faces in (["f1", "f2"], ["f1", "f3"]):
        with pytest.raises(StaleUserChange):
            users.set_faces("c", "u", faces, [], None)
        assert store.face("c", "f1").user_id is None  # nothing half-done
    deleted, missing, kept = store.delete_faces("c", ["f3", "f9"])
    assert (deleted, missing, [f.face_id for f in kept]) == ([], ["f9"], ["f3"])


def test_users_and_vectors_are_rebuilt_on_load(stores: tuple, tmp_path: Path) -> None:
    db, store, users = stores
    add(store, "c", "f1", unit(0, 0, 1, 0))
    users.create("c", "u", None)
    users.create("c", "empty", None)
    users.set_faces("c", "u", ["f1"], [], None)
    db.close()
    _, store2, users2 = open_stores(tmp_path)
    assert [u.user_id for u in users2.page("c", 0, 10)] == ["u", "empty"]
    assert users2.get("c", "u").face_count == 1
    np.testing.assert_allclose(users2.vector("c", "u"), unit(0, 0, 1, 0), atol=1e-6)
    assert users2.vector("c", "empty") is None
    assert store2.face("c", "f1").user_id == "u"


def test_a_version_2_database_gains_users(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MAIN[:2]:
        conn.executescript(step.sql)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO collections VALUES ('old', 'arn', 1.0, 'p', 4, '7.0', 'r')")
    conn.execute("INSERT INTO faces (collection, face_id, image_id, bbox, confidence, "
                 "embedding, created) VALUES ('old', 'f', 'i', '{}', 99.0, ?, 1.0)",
                 (unit(1, 0, 0, 0).tobytes(),))
    conn.close()
    db, store, users = open_stores(tmp_path)
    assert db.version >= 3
    assert store.face("old", "f").user_id is None
    users.create("old", "u", None)
    assert users.set_faces("old", "u", ["f"], [], None).face_count == 1
