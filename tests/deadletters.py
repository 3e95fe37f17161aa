"""The records a spool moved aside, read the way an operator reads them: SQL on its file.

The daemon only writes the ``dead_letter`` table (``streamproc.storage.spool``); nothing in it
reads the table back, so the reader the tests need lives here, not on the production class.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass

from streamproc.storage.spool import Spool


@dataclass(frozen=True)
class DeadLetter:
    """A record moved aside: what it was, why it was refused and when (epoch seconds)."""

    processor: str
    topic: str
    key: bytes
    value: bytes
    error: str
    at: float


def dead_letters(spool: Spool, cluster: str, limit: int = 100) -> list[DeadLetter]:
    """The oldest ``limit`` records kept aside for a cluster."""
    with closing(sqlite3.connect(spool.path)) as db:
        rows = db.execute("SELECT processor, topic, key, value, error, at FROM dead_letter "
                          "WHERE cluster = ? ORDER BY id LIMIT ?", (cluster, limit)).fetchall()
    return [DeadLetter(*row) for row in rows]
