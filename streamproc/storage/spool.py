"""The disk part of the outbox: records waiting for a cluster, in arrival order, in SQLite.

A separate database file from the main one, so outage writes never wait on API writes.
WAL with synchronous=NORMAL: spooled records survive a process crash (kill -9); a power
cut may lose the last few. Records a cluster refused for good (an illegal topic, a record
too large) are moved aside to the ``dead_letter`` table, newest ``keep`` per cluster.

A cluster's rows are one sequence by position, but order only has to hold per topic: the
outbox reads a parked topic's rows (a topic the cluster cannot take records for now) apart
from the rest (:meth:`Spool.read` skips them, :meth:`Spool.read_topic` catches up on them).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from streamproc.storage.db import Database
from streamproc.storage.migrations import SPOOL


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
        self._db = Database(self.path, SPOOL, synchronous="NORMAL")
        self._high: dict[str, float] = {}  # highest position ever appended, per cluster

    def open(self) -> None:
        """Create the file (0600) and table."""
        self._db.open()

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def append(self, cluster: str, rows: list[tuple[str, str, bytes, bytes]],
               front: bool = False, replacing: Iterable[int] = ()) -> None:
        """Add (processor, topic, key, value) rows after (or, ``front``, before) the rest.

        ``replacing``: ids of rows deleted in the same transaction (records moved to the
        front keep their place in no crash window: either the old rows or the new ones).
        """
        replaced = [(i,) for i in replacing]
        if not rows and not replaced:
            return
        with self._db.transaction() as db:
            db.executemany("DELETE FROM spool WHERE id = ?", replaced)
            if not rows:
                return
            agg = "MIN(pos)" if front else "MAX(pos)"
            edge = db.execute(f"SELECT {agg} FROM spool WHERE cluster = ?",  # noqa: S608
                              (cluster,)).fetchone()[0] or 0.0
            if front:
                start = edge - len(rows)
            else:
                # Never reuse a position, even after every row was delivered and deleted:
                # a reader's cursor may already be past it.
                start = max(edge, self._high.get(cluster, 0.0)) + 1
            db.executemany("INSERT INTO spool (cluster, pos, processor, topic, key, value) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(cluster, start + i, *row) for i, row in enumerate(rows)])
        if not front:
            self._high[cluster] = start + len(rows) - 1

    def read(self, cluster: str, after_pos: float, limit: int,
             skip: Collection[str] = ()) -> list[SpooledRecord]:
        """The oldest ``limit`` records of a cluster after ``after_pos``, but none of ``skip``."""
        if not skip:
            rows = self._db.query(
                "SELECT id, pos, processor, topic, key, value FROM spool WHERE cluster = ? "
                "AND pos > ? ORDER BY pos LIMIT ?", (cluster, after_pos, limit))
        else:
            rows = self._db.query(
                "SELECT id, pos, processor, topic, key, value FROM spool WHERE cluster = ? "
                "AND pos > ? AND topic NOT IN (SELECT value FROM json_each(?)) ORDER BY pos "
                "LIMIT ?", (cluster, after_pos, json.dumps(sorted(skip)), limit))
        return [SpooledRecord(*row) for row in rows]

    def read_topic(self, cluster: str, topic: str, after_pos: float, upto_pos: float,
                   limit: int) -> list[SpooledRecord]:
        """The oldest ``limit`` records of one topic in (``after_pos``, ``upto_pos``]."""
        rows = self._db.query(
            "SELECT id, pos, processor, topic, key, value FROM spool WHERE cluster = ? "
            "AND topic = ? AND pos > ? AND pos <= ? ORDER BY pos LIMIT ?",
            (cluster, topic, after_pos, upto_pos, limit))
        return [SpooledRecord(*row) for row in rows]

    def delete(self, ids: list[int]) -> None:
        """Forget delivered records."""
        if not ids:
            return
        with self._db.transaction() as db:
            db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])

    def clusters(self) -> dict[str, int]:
        """Clusters with spooled records, and how many each."""
        return dict(self._db.query("SELECT cluster, COUNT(*) FROM spool GROUP BY cluster"))

    def owners(self, cluster: str) -> dict[str, int]:
        """Spooled records of a cluster per processor (the name records are keyed by)."""
        return dict(self._db.query("SELECT processor, COUNT(*) FROM spool WHERE cluster = ? "
                                   "GROUP BY processor", (cluster,)))

    def held(self, cluster: str) -> dict[tuple[str, str], int]:
        """Spooled records of a cluster per (processor, topic)."""
        rows = self._db.query("SELECT processor, topic, COUNT(*) FROM spool WHERE cluster = ? "
                              "GROUP BY processor, topic", (cluster,))
        return {(processor, topic): count for processor, topic, count in rows}

    def delete_owners(self, cluster: str, processors: set[str], after_pos: float,
                      behind: dict[str, float] | None = None,
                      keep: Collection[int] = ()) -> Counter[str]:
        """Delete the records of ``processors`` not read back yet; how many per topic.

        Those are the rows after ``after_pos``, and for each topic in ``behind`` (topics
        read apart, see :meth:`read_topic`) its rows after ``behind[topic]`` too; never the
        rows whose ids are in ``keep`` (records in flight).
        """
        if not processors:
            return Counter()
        clauses = " OR ".join(["pos > ?"] + ["(topic = ? AND pos > ?)"] * len(behind or {}))
        where = (f"cluster = ? AND processor IN (SELECT value FROM json_each(?)) AND "
                 f"({clauses}) AND id NOT IN (SELECT value FROM json_each(?))")
        params = (cluster, json.dumps(sorted(processors)), after_pos,
                  *[v for item in sorted((behind or {}).items()) for v in item],
                  json.dumps(sorted(keep)))
        with self._db.transaction() as db:
            counts = Counter(dict(db.execute(
                f"SELECT topic, COUNT(*) FROM spool WHERE {where} GROUP BY topic",  # noqa: S608
                params).fetchall()))
            db.execute(f"DELETE FROM spool WHERE {where}", params)  # noqa: S608
        return counts

    def set_aside(self, cluster: str, rows: list[tuple[str, str, bytes, bytes, str]],
                  keep: int) -> None:
        """Keep (processor, topic, key, value, error) rows aside; only the newest ``keep``."""
        if not rows:
            return
        now = time.time()
        with self._db.transaction() as db:
            db.executemany("INSERT INTO dead_letter (cluster, processor, topic, key, value, "
                           "error, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(cluster, *row, now) for row in rows])
            db.execute("DELETE FROM dead_letter WHERE cluster = ? AND id <= (SELECT id FROM "
                       "dead_letter WHERE cluster = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                       (cluster, cluster, keep))
