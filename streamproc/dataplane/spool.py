"""The disk part of the outbox: records waiting for a cluster, in arrival order, in SQLite.

A separate database file from the main one, so outage writes never wait on API writes.
WAL with synchronous=NORMAL: spooled records survive a process crash (kill -9); a power
cut may lose the last few.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from streamproc.storage.db import connect


@dataclass(frozen=True)
class SpooledRecord:
    """A record as stored on disk."""

    row_id: int
    pos: float
    processor: str
    topic: str
    key: bytes
    value: bytes


class Spool:
    """Append, read in order, delete once delivered. Thread-safe; :meth:`open` does the I/O."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._high: dict[str, float] = {}  # highest position ever appended, per cluster

    def open(self) -> None:
        """Create the file (0600) and table."""
        conn = connect(self.path, "NORMAL")
        # pos orders records; prepend() puts records before everything already spooled.
        conn.execute("CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "cluster TEXT NOT NULL, pos REAL NOT NULL, processor TEXT NOT NULL, "
                     "topic TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL)")
        conn.execute("CREATE INDEX IF NOT EXISTS spool_order ON spool (cluster, pos)")
        self._conn = conn

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            msg = "spool is not open"
            raise RuntimeError(msg)
        return self._conn

    def append(self, cluster: str, rows: list[tuple[str, str, bytes, bytes]],
               front: bool = False) -> None:
        """Add (processor, topic, key, value) rows after (or, ``front``, before) the rest."""
        if not rows:
            return
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            agg = "MIN(pos)" if front else "MAX(pos)"
            edge = db.execute(f"SELECT {agg} FROM spool WHERE cluster = ?",  # noqa: S608
                              (cluster,)).fetchone()[0] or 0.0
            if front:
                start = edge - len(rows)
            else:
                # Never reuse a position, even after every row was delivered and deleted:
                # a reader's cursor may already be past it.
                start = max(edge, self._high.get(cluster, 0.0)) + 1
                self._high[cluster] = start + len(rows) - 1
            db.executemany("INSERT INTO spool (cluster, pos, processor, topic, key, value) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(cluster, start + i, *row) for i, row in enumerate(rows)])
            db.execute("COMMIT")

    def read(self, cluster: str, after_pos: float, limit: int) -> list[SpooledRecord]:
        """The oldest ``limit`` records of a cluster after position ``after_pos``."""
        with self._lock:
            rows = self._db().execute(
                "SELECT id, pos, processor, topic, key, value FROM spool WHERE cluster = ? "
                "AND pos > ? ORDER BY pos LIMIT ?", (cluster, after_pos, limit)).fetchall()
        return [SpooledRecord(*row) for row in rows]

    def delete(self, ids: list[int]) -> None:
        """Forget delivered records."""
        if not ids:
            return
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])
            db.execute("COMMIT")

    def clusters(self) -> dict[str, int]:
        """Clusters with spooled records, and how many each."""
        with self._lock:
            rows = self._db().execute(
                "SELECT cluster, COUNT(*) FROM spool GROUP BY cluster").fetchall()
        return dict(rows)
