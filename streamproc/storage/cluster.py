"""Cluster mode's bookkeeping: which cluster log this data dir mirrors, and how far.

The offset of the last applied command is saved after each batch the node applies, so a
restarted node replays from there; a command applied twice is harmless (every applier
treats a repeat as a no-op or as the error it would be the second time).
"""

from __future__ import annotations

from streamproc.storage.db import Database


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
            conn.execute("INSERT INTO cluster_log (topic, cluster, applied) VALUES (?, ?, ?) "
                         "ON CONFLICT(topic) DO UPDATE SET applied = excluded.applied",
                         (self._topic, self._cluster, offset))
