"""Project versions (models and adapters) and project policies in SQLite, as plain values.

A version's meaning (statuses, the transitions between them, what training wrote) is
:mod:`streamproc.projects`'s; this module stores what it is handed. ``spec`` (what
CreateProjectVersion asked) and ``result`` (what training produced) are JSON objects in
the wire's own field names; ``model`` is the trained model's bytes
(:func:`streamproc.training.serial.dumps`), kept apart from the row listings read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streamproc.storage.db import Database

_COLUMNS = ("project, project_ms, name, created_ms, feature, status, message, updated_ms, "
            "node, spec, result, min_units, max_units")
_POLICY_COLUMNS = "project, name, revision, document, created_ms, updated_ms"


@dataclass(frozen=True)
class StoredVersion:
    """One version row (without its model bytes)."""

    project: str
    project_ms: int
    name: str
    created_ms: int
    feature: str
    status: str
    message: str
    updated_ms: int
    node: str  # the node that trains it (its restart retrains it)
    spec: dict[str, Any]
    result: dict[str, Any]
    min_units: int | None
    max_units: int | None


@dataclass(frozen=True)
class StoredPolicy:
    """One project policy."""

    project: str
    name: str
    revision: str
    document: str
    created_ms: int
    updated_ms: int


def _version(row: tuple[Any, ...]) -> StoredVersion:
    values = list(row)
    values[9], values[10] = json.loads(values[9]), json.loads(values[10])
    return StoredVersion(*values)


class VersionStore:
    """Version and policy rows; every write is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, project: str, name: str) -> StoredVersion | None:
        """The project's version called ``name``, or None."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM project_versions "
                              "WHERE project = ? AND name = ?", (project, name))
        return _version(rows[0]) if rows else None

    def of_project(self, project: str) -> list[StoredVersion]:
        """The project's versions, newest first (as AWS lists them)."""
        return [_version(row) for row in self._db.query(
            f"SELECT {_COLUMNS} FROM project_versions WHERE project = ? "
            "ORDER BY created_ms DESC, name", (project,))]

    def with_status(self, status: str) -> list[StoredVersion]:
        """Every version in ``status``, oldest first."""
        return [_version(row) for row in self._db.query(
            f"SELECT {_COLUMNS} FROM project_versions WHERE status = ? "
            "ORDER BY created_ms, project, name", (status,))]

    def count(self, project: str) -> int:
        """How many versions the project has."""
        return int(self._db.query("SELECT COUNT(*) FROM project_versions WHERE project = ?",
                                  (project,))[0][0])

    def put(self, v: StoredVersion, model: bytes | None = None) -> None:
        """Insert or replace a version row; its model bytes are replaced only when given."""
        with self._db.transaction() as conn:
            old = conn.execute("SELECT model FROM project_versions WHERE project = ? AND "
                               "name = ?", (v.project, v.name)).fetchone()
            keep = model if model is not None else (None if old is None else old[0])
            conn.execute(f"INSERT OR REPLACE INTO project_versions ({_COLUMNS}, model) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (v.project, v.project_ms, v.name, v.created_ms, v.feature, v.status,
                          v.message, v.updated_ms, v.node, json.dumps(v.spec, sort_keys=True),
                          json.dumps(v.result, sort_keys=True), v.min_units, v.max_units,
                          keep))

    def model(self, project: str, name: str) -> bytes | None:
        """The version's trained model bytes, or None (not trained, or no such version)."""
        rows = self._db.query("SELECT model FROM project_versions WHERE project = ? AND "
                              "name = ?", (project, name))
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])

    def add_model(self, project: str, name: str, offset: int, data: bytes) -> int:
        """Write a part of the model at ``offset`` (0 replaces it); its length after.

        ValueError when ``offset`` is not the model's current length (a part missed).
        """
        with self._db.transaction() as conn:
            row = conn.execute("SELECT model FROM project_versions WHERE project = ? AND "
                               "name = ?", (project, name)).fetchone()
            held = b"" if row is None or row[0] is None or offset == 0 else bytes(row[0])
            if len(held) != offset:
                msg = f"a model part at {offset}, but {len(held)} bytes are held"
                raise ValueError(msg)
            conn.execute("UPDATE project_versions SET model = ? WHERE project = ? AND "
                         "name = ?", (held + data, project, name))
            return len(held) + len(data)

    def delete(self, project: str, name: str) -> bool:
        """Remove a version; False if there was none."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM project_versions WHERE project = ? AND name = ?",
                                (project, name)).rowcount == 1

    # ---- policies ---------------------------------------------------------------------------
    def policies(self, project: str) -> list[StoredPolicy]:
        """The project's policies, by name."""
        return [StoredPolicy(*row) for row in self._db.query(
            f"SELECT {_POLICY_COLUMNS} FROM project_policies WHERE project = ? ORDER BY name",
            (project,))]

    def put_policy(self, policy: StoredPolicy) -> None:
        """Insert or replace a policy."""
        with self._db.transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO project_policies ({_POLICY_COLUMNS}) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (policy.project, policy.name, policy.revision, policy.document,
                          policy.created_ms, policy.updated_ms))

    def delete_policy(self, project: str, name: str) -> None:
        """Remove a policy (nothing if there is none)."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM project_policies WHERE project = ? AND name = ?",
                         (project, name))

    def delete_project(self, project: str) -> None:
        """Remove a (deleted) project's policies (it has no versions by then)."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM project_policies WHERE project = ?", (project,))
