"""Versioned schema migrations (no models)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from streamproc.storage.collections import CollectionStore
from streamproc.storage.db import Database
from streamproc.storage.migrations import MAIN, Migration, SchemaTooNewError, migrate

# The schema as the first release wrote it, before versions were recorded: frozen here, so
# an edit to migration 1 (which would not reach existing databases) shows up as a failure.
_UNVERSIONED = """
CREATE TABLE collections (id TEXT PRIMARY KEY, arn TEXT NOT NULL, created REAL NOT NULL,
    pack TEXT NOT NULL, dim INTEGER NOT NULL, face_model_version TEXT NOT NULL);
CREATE TABLE faces (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    face_id TEXT NOT NULL, image_id TEXT NOT NULL, external_image_id TEXT, bbox TEXT NOT NULL,
    confidence REAL NOT NULL, embedding BLOB NOT NULL, created REAL NOT NULL,
    UNIQUE (collection, face_id));
CREATE TABLE processors (name TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL,
    status_message TEXT NOT NULL, desired TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE tags (arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (arn, key));
"""


def test_a_database_from_before_versioning_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_UNVERSIONED)
        conn.execute("INSERT INTO collections VALUES ('old', 'arn', 1.0, 'test_mfn', 128, '7.0')")
    db = Database(path)
    db.open()
    assert db.version == MAIN[-1].version
    store = CollectionStore(db)
    store.load()
    info = store.get("old")
    assert info is not None and info.pack == "test_mfn" and info.recognizer is None
    db.close()
    again = Database(path)
    again.open()  # nothing left to do, nothing redone
    assert again.version == MAIN[-1].version
    again.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {MAIN[-1].version + 1}")
    with pytest.raises(SchemaTooNewError, match="newer than this streamproc knows"):
        Database(path).open()


def test_a_failing_step_leaves_the_previous_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    steps = [Migration(1, "t", "CREATE TABLE t (a INTEGER);"),
             Migration(2, "broken", "ALTER TABLE t ADD COLUMN b TEXT; SELECT * FROM nowhere;")]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, steps, "x.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(t)")]
    assert columns == ["a"]  # the half-applied step was rolled back
    conn.close()
