"""Stored-video jobs and their results in SQLite (schema versions 4, 8 and 9).

A job's request is kept as the JSON object the jobs package hands over, so this module knows
nothing of its fields, nor of its results' elements. Writes that belong to one launch of a
job (results, metadata, the end state) name the launch's ``attempt`` and change nothing once
another launch took over, so a worker abandoned at shutdown can never write into its
successor's results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from streamproc.storage.db import Database

QUEUED, RUNNING, SUCCEEDED, FAILED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED"
_COLUMNS = ("job_id, api, token, request, state, status_message, video_metadata, attempt, "
            "created, finished, node")


class ResultOrder(Enum):
    """The orders result rows are read in; values are the SQL ``ORDER BY``.

    A job kind maps its Get operation's ``SortBy`` values to these.
    """

    SEQUENCE = "seq"  # as written: results are written in timestamp order
    PERSON = "person, timestamp_ms, seq"  # by the row's person index, then time
    TIME = "timestamp_ms, seq"  # by timestamp (rows written out of time order too)
    # By timestamp, then the row's person index: held rows are written as tracks are
    # confirmed, so one timestamp's persons are not written in Index order.
    TIME_PERSON = "timestamp_ms, person, seq"
    NAME = "name, timestamp_ms, seq"  # by the row's name, then time


@dataclass(frozen=True)
class StoredJob:
    """One job row."""

    job_id: str
    api: str
    token: str | None
    request: dict[str, Any]
    state: str
    status_message: str
    video_metadata: dict[str, Any] | None
    attempt: int
    created: float
    finished: float | None
    node: str = ""  # the node running its current launch ('' before the first)


@dataclass(frozen=True)
class ResultRow:
    """One result element: its order, timestamp, person index and wire JSON.

    A kind whose Get lists its results more than one way (content moderation: per
    timestamp or per segment) keeps each listing's rows apart by ``listing``; ``name`` is
    the key :attr:`ResultOrder.NAME` sorts by. Both are ``""`` for the face jobs.
    """

    seq: int
    timestamp_ms: int
    person: int | None
    item: dict[str, Any]
    listing: str = ""
    name: str = ""


def _job(row: tuple[Any, ...]) -> StoredJob:
    return StoredJob(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5],
                     json.loads(row[6]) if row[6] else None, row[7], row[8], row[9], row[10])


class JobStore:
    """Job rows and result rows; every write is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[StoredJob]:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM jobs {where}", params)
        return [_job(r) for r in rows]

    # ---- reads --------------------------------------------------------------------------------
    def get(self, job_id: str) -> StoredJob | None:
        """The job, or None."""
        found = self._select("WHERE job_id = ?", (job_id,))
        return found[0] if found else None

    def exists(self, job_id: str) -> bool:
        """Whether the job is stored (its row only, nothing parsed)."""
        return bool(self._db.query("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)))

    def by_token(self, api: str, token: str) -> StoredJob | None:
        """The job started with this ClientRequestToken, or None."""
        found = self._select("WHERE api = ? AND token = ?", (api, token))
        return found[0] if found else None

    def in_state(self, *states: str) -> list[StoredJob]:
        """Jobs in any of ``states``, oldest first."""
        marks = ",".join("?" * len(states))
        return self._select(f"WHERE state IN ({marks}) ORDER BY created, job_id", states)

    def newest(self, api: str, before: tuple[float, str] | None, limit: int
               ) -> list[StoredJob]:
        """Up to ``limit`` jobs of ``api``, newest first (by created, then JobId, descending).

        ``before`` (created, JobId) lists those after that job in this order (the next page).
        """
        if before is None:
            return self._select("WHERE api = ? ORDER BY created DESC, job_id DESC LIMIT ?",
                                (api, limit))
        created, job_id = before
        return self._select(
            "WHERE api = ? AND (created < ? OR (created = ? AND job_id < ?)) "
            "ORDER BY created DESC, job_id DESC LIMIT ?",
            (api, created, created, job_id, limit))

    def results(self, job_id: str, order: ResultOrder, offset: int, limit: int,
                listing: str = "") -> list[dict[str, Any]]:
        """One page of a job's results of ``listing`` in ``order``."""
        rows = self._db.query(
            f"SELECT item FROM job_results WHERE job_id = ? AND listing = ? "
            f"ORDER BY {order.value} LIMIT ? OFFSET ?", (job_id, listing, limit, offset))
        return [json.loads(r[0]) for r in rows]

    # ---- writes -------------------------------------------------------------------------------
    def insert(self, job_id: str, api: str, token: str | None, request: dict[str, Any],
               created: float) -> None:
        """A new QUEUED job."""
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO jobs (job_id, api, token, request, state, created) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (job_id, api, token, json.dumps(request, sort_keys=True), QUEUED,
                          created))

    def launch(self, job_id: str, node: str = "", message: str = "") -> int:
        """-> RUNNING on ``node`` with a new attempt number; earlier partial results go."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM job_results WHERE job_id = ?", (job_id,))
            conn.execute("UPDATE jobs SET state = ?, attempt = attempt + 1, node = ?, "
                         "status_message = ? WHERE job_id = ?", (RUNNING, node, message, job_id))
            return int(conn.execute("SELECT attempt FROM jobs WHERE job_id = ?",
                                    (job_id,)).fetchone()[0])

    def set_metadata(self, job_id: str, attempt: int, metadata: dict[str, Any]) -> None:
        """Record the probed VideoMetadata of the current launch."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE jobs SET video_metadata = ? WHERE job_id = ? AND attempt = ? "
                         "AND state = ?", (json.dumps(metadata), job_id, attempt, RUNNING))

    def add_results(self, job_id: str, attempt: int, rows: list[ResultRow]) -> bool:
        """Append results of the current launch; False (nothing written) for a stale one.

        A row written twice (a command applied again after a crash) replaces itself.
        """
        with self._db.transaction() as conn:
            live = conn.execute("SELECT 1 FROM jobs WHERE job_id = ? AND attempt = ? AND "
                                "state = ?", (job_id, attempt, RUNNING)).fetchone()
            if live is None:
                return False
            conn.executemany(
                "INSERT OR REPLACE INTO job_results (job_id, seq, timestamp_ms, person, item, "
                "listing, name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(job_id, r.seq, r.timestamp_ms, r.person,
                  json.dumps(r.item, separators=(",", ":")), r.listing, r.name) for r in rows])
            return True

    def finish(self, job_id: str, attempt: int | None, state: str, message: str,
               finished: float) -> bool:
        """End a job (``attempt`` None: whatever launch, or none); FAILED drops its results.

        False when the job is already finished or another launch owns it.
        """
        with self._db.transaction() as conn:
            where = "job_id = ? AND state IN (?, ?)"
            params: tuple[Any, ...] = (job_id, QUEUED, RUNNING)
            if attempt is not None:
                where += " AND attempt = ?"
                params += (attempt,)
            changed = conn.execute(
                f"UPDATE jobs SET state = ?, status_message = ?, finished = ? WHERE {where}",
                (state, message, finished, *params)).rowcount
            if changed and state == FAILED:
                conn.execute("DELETE FROM job_results WHERE job_id = ?", (job_id,))
            return bool(changed)

    def delete(self, job_id: str) -> None:
        """Delete one job and its results."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM job_results WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def purge(self, finished_before: float) -> int:
        """Delete jobs (and their results) that finished before the cut-off."""
        with self._db.transaction() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT job_id FROM jobs WHERE finished IS NOT NULL AND finished < ?",
                (finished_before,))]
            for job_id in ids:
                conn.execute("DELETE FROM job_results WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            return len(ids)
