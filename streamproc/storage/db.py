"""SQLite access: one connection, WAL, every write in one transaction under a lock.

SQLite is the source of truth for collections and faces (embeddings included); the
FAISS indexes are rebuilt from it, so an acknowledged write is never lost by a crash
and indexes and metadata cannot disagree after a restart.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamproc.storage.migrations import MAIN, Migration, migrate


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """Open a WAL-mode SQLite file readable by its owner only (inside a 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    os.chmod(path, 0o600)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


class Database:
    """Thread-safe wrapper around one SQLite connection. :meth:`open` does the I/O."""

    def __init__(self, path: Path, migrations: list[Migration] | None = None,
                 synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._migrations = migrations if migrations is not None else MAIN
        # FULL (the default): a face acknowledged to the client survives power loss.
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self.version = 0
        self.lock = threading.RLock()
        # Per thread: a statement every transaction of that thread runs before it commits
        # (see :meth:`stamped`); thread-local, so other threads' writes never carry it.
        self._stamp = threading.local()

    def open(self) -> None:
        """Create the data dir (owner-only) and bring the schema to the latest version."""
        conn = connect(self.path, self._synchronous)
        conn.execute("PRAGMA foreign_keys=ON")
        try:
            self.version = migrate(conn, self._migrations, str(self.path))
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection."""
        if self._conn is None:
            msg = "database is not open"
            raise RuntimeError(msg)
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically: all of them commit, or none."""
        with self.lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                stamp = getattr(self._stamp, "statement", None)
                if stamp is not None:
                    conn.execute(*stamp)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def stamped(self, sql: str, params: tuple) -> Iterator[None]:
        """Within the block, every transaction this thread commits also runs ``sql``.

        The cluster's ledger records a command's log offset this way, in the very
        transactions that hold the command's effects: a crash keeps both or neither.
        """
        self._stamp.statement = (sql, params)
        try:
            yield
        finally:
            self._stamp.statement = None

    def read_rows(self, sql: str, params: tuple = ()) -> Iterator[tuple]:
        """Stream a read on a fresh connection: WAL lets it run beside writes, unlocked."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            yield from conn.execute(sql, params)
        finally:
            conn.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return all rows (plain tuples: no row factory is set)."""
        with self.lock:
            cur = self.conn.execute(sql, params)
            return cur.fetchall()
