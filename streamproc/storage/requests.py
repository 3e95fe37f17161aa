"""ClientRequestTokens of the user operations and the responses they got.

A token is recorded in the same transaction as the change it made, so a retry after a
crash or a lost response either finds the change and its response, or neither.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from streamproc.storage.db import Database


@dataclass(frozen=True)
class SavedRequest:
    """One operation done under a token: what was asked (a digest) and what was answered."""

    operation: str
    token: str
    collection: str
    request: str
    response: dict[str, Any]


class RequestLog:
    """Remembered tokens, forgotten ``window_s`` after their request."""

    def __init__(self, db: Database, window_s: float) -> None:
        self._db = db
        self._window_s = window_s

    def find(self, operation: str, token: str) -> SavedRequest | None:
        """The request a token was used for within the window, or None."""
        rows = self._db.query(
            "SELECT collection, request, response FROM request_tokens "
            "WHERE operation = ? AND token = ? AND created >= ?",
            (operation, token, time.time() - self._window_s))
        if not rows:
            return None
        collection, request, response = rows[0]
        return SavedRequest(operation, token, collection, request, json.loads(response))

    def save(self, conn: sqlite3.Connection, saved: SavedRequest) -> None:
        """Record a request inside the caller's transaction, dropping expired ones."""
        now = time.time()
        conn.execute("DELETE FROM request_tokens WHERE created < ?", (now - self._window_s,))
        conn.execute("INSERT OR REPLACE INTO request_tokens VALUES (?, ?, ?, ?, ?, ?)",
                     (saved.operation, saved.token, saved.collection, saved.request,
                      json.dumps(saved.response), now))
