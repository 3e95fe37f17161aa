"""Cluster mode's bookkeeping: which cluster log this data dir mirrors, and how far.

A command's offset is written in the same SQLite transaction as its effects
(:meth:`ClusterLog.applying`), so a node that dies at any point has either both or neither,
and a restarted node goes on at exactly the next command: none applied twice, none skipped.
Commands that change nothing are recorded after each batch; replaying them is harmless
because they meet the same state again and change nothing again. An applier that writes in
more than one transaction (a processor's status, then its desired state) records the offset
in each: a crash between them keeps the first part, as a replay refusing the repeat did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from streamproc.storage.db import Database

_SAVE = ("INSERT INTO cluster_log (topic, cluster, applied) VALUES (?, ?, ?) "
         "ON CONFLICT(topic) DO UPDATE SET applied = excluded.applied")


class ClusterLog:
    """The ``cluster_log`` row of one state topic."""

    def __init__(self, db: Database, topic: str, cluster: str) -> None:
        self._db = db
        self._topic = topic
        self._cluster = cluster

    def applied(self) -> int | None:
        """Offset of the last command applied here, None if this data dir never joined."""
        rows = self._db.query("SELECT cluster, applied FROM cluster_log WHERE topic = ?",
                              (self._topic,))
        return int(rows[0][1]) if rows else None

    def joined_cluster(self) -> str | None:
        """The cluster this data dir belongs to (None: never joined one)."""
        rows = self._db.query("SELECT cluster FROM cluster_log LIMIT 1")
        return str(rows[0][0]) if rows else None

    def holds_local_state(self) -> bool:
        """True if single-node state (collections, processors or jobs) lives here."""
        for table in ("collections", "processors", "jobs"):
            if self._db.query(f"SELECT 1 FROM {table} LIMIT 1"):  # noqa: S608
                return True
        return False

    def epoch(self) -> int:
        """The placement group's epoch (0 until a stuck group was ever replaced)."""
        rows = self._db.query("SELECT placement_epoch FROM cluster_log WHERE topic = ?",
                              (self._topic,))
        return int(rows[0][0]) if rows else 0

    def save_epoch(self, epoch: int) -> None:
        """Record a new placement epoch (applied from the log, like every shared change)."""
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO cluster_log (topic, cluster, applied, placement_epoch) "
                         "VALUES (?, ?, -1, ?) ON CONFLICT(topic) DO UPDATE SET "
                         "placement_epoch = excluded.placement_epoch",
                         (self._topic, self._cluster, epoch))

    def save(self, offset: int) -> None:
        """Record that every command up to ``offset`` was applied."""
        with self._db.transaction() as conn:
            conn.execute(_SAVE, (self._topic, self._cluster, offset))

    @contextmanager
    def applying(self, offset: int) -> Iterator[None]:
        """While the command at ``offset`` is applied: its writes record ``offset`` too."""
        with self._db.stamped(_SAVE, (self._topic, self._cluster, offset)):
            yield
