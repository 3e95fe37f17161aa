"""Custom Labels and adapter projects in SQLite, one row each, as plain values.

The project's meaning (its feature, status and the rules over them) is
:mod:`streamproc.projects`'s; this module stores what it is handed.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from streamproc.storage.db import Database

_COLUMNS = "name, arn, created_ms, feature, auto_update, status"


@dataclass(frozen=True)
class StoredProject:
    """One project row."""

    name: str
    arn: str  # as first written (the region it was created in): its tags' key
    created_ms: int
    feature: str
    auto_update: str | None
    status: str


class ProjectStore:
    """Project rows; every write is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> StoredProject | None:
        """The project called ``name``, or None."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM projects WHERE name = ?", (name,))
        return StoredProject(*rows[0]) if rows else None

    def all(self) -> list[StoredProject]:
        """Every project, in name order."""
        return [StoredProject(*row)
                for row in self._db.query(f"SELECT {_COLUMNS} FROM projects ORDER BY name")]

    def count(self) -> int:
        """How many projects there are."""
        return int(self._db.query("SELECT COUNT(*) FROM projects")[0][0])

    def create(self, project: StoredProject) -> bool:
        """Insert a project; False if the name is taken."""
        with self._db.transaction() as conn:
            cur = conn.execute(f"INSERT OR IGNORE INTO projects ({_COLUMNS}) "
                               "VALUES (?, ?, ?, ?, ?, ?)", astuple(project))
            return cur.rowcount == 1

    def delete(self, name: str) -> bool:
        """Remove a project; False if there was none."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM projects WHERE name = ?", (name,)).rowcount == 1
