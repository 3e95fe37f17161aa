"""Resource tags (collections and stream processors), keyed by ARN."""

from __future__ import annotations

from streamproc.storage.db import Database


class TagStore:
    """Tags persisted in SQLite."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, arn: str) -> dict[str, str]:
        """All tags of one resource."""
        return dict(self._db.query("SELECT key, value FROM tags WHERE arn = ? ORDER BY key",
                                   (arn,)))

    def set(self, arn: str, tags: dict[str, str]) -> None:
        """Add or overwrite tags."""
        with self._db.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                             [(arn, k, v) for k, v in tags.items()])

    def remove(self, arn: str, keys: list[str]) -> None:
        """Remove tags by key (unknown keys are ignored)."""
        with self._db.transaction() as conn:
            conn.executemany("DELETE FROM tags WHERE arn = ? AND key = ?",
                             [(arn, k) for k in keys])

    def delete_resource(self, arn: str) -> None:
        """Drop every tag of a deleted resource."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM tags WHERE arn = ?", (arn,))
