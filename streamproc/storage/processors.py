"""Stream processors in SQLite: each one's definition (as a JSON object), status and desired state.

The definition is stored as the processors package hands it over (a plain dict), so this
module knows nothing of its fields. The database file is 0600: input URLs may hold
credentials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streamproc.storage.db import Database


@dataclass(frozen=True)
class StoredProcessor:
    """A definition plus the persisted status and desired state."""

    name: str
    spec: dict[str, Any]
    status: str
    status_message: str
    desired: str
    updated: float
    session_id: str = ""
    owner: str = ""


class ProcessorStore:
    """Processor rows; every write is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self) -> list[StoredProcessor]:
        """All processors, in name order."""
        rows = self._db.query("SELECT name, spec, status, status_message, desired, updated, "
                              "session_id, owner FROM processors ORDER BY name")
        return [StoredProcessor(r[0], json.loads(r[1]), *r[2:]) for r in rows]

    def insert(self, name: str, spec: dict[str, Any], status: str, desired: str,
               updated: float) -> None:
        """Persist a new processor."""
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO processors (name, spec, status, status_message, desired, "
                         "updated) VALUES (?, ?, ?, '', ?, ?)",
                         (name, json.dumps(spec), status, desired, updated))

    def save_spec(self, name: str, spec: dict[str, Any]) -> None:
        """Overwrite the definition (UpdateStreamProcessor)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE processors SET spec = ? WHERE name = ?",
                         (json.dumps(spec), name))

    def save_status(self, name: str, status: str, message: str, updated: float) -> None:
        """Record the latest status."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE processors SET status = ?, status_message = ?, updated = ? "
                         "WHERE name = ?", (status, message, updated, name))

    def save_desired(self, name: str, desired: str, session_id: str | None = None) -> None:
        """Record whether the processor should run (and, on Start, its SessionId)."""
        with self._db.transaction() as conn:
            if session_id is None:
                conn.execute("UPDATE processors SET desired = ? WHERE name = ?",
                             (desired, name))
            else:
                conn.execute("UPDATE processors SET desired = ?, session_id = ? WHERE name = ?",
                             (desired, session_id, name))

    def save_owner(self, name: str, owner: str) -> None:
        """Record the node that runs the processor."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE processors SET owner = ? WHERE name = ?", (owner, name))

    def delete(self, name: str) -> None:
        """Forget a processor."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM processors WHERE name = ?", (name,))
