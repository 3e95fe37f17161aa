"""Project datasets in SQLite: one row per dataset, one per entry, one per entry's label.

The datasets' meaning (statuses, the one-per-type rule, what a line holds) is
:mod:`streamproc.projects`'s; this module stores what it is handed. An entry's ``seq``
orders a dataset's entries (the order ListDatasetEntries pages in); an entry that replaces
one with the same ``source_ref`` keeps its place.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import astuple, dataclass

from streamproc.storage.db import Database

_COLUMNS = "project, project_ms, type, created_ms, updated_ms, status, message, code"


@dataclass(frozen=True)
class StoredDataset:
    """One dataset row."""

    project: str
    project_ms: int
    type: str
    created_ms: int
    updated_ms: int
    status: str
    message: str
    code: str


@dataclass(frozen=True)
class StoredEntry:
    """One entry: its JSON line and what was read out of it."""

    line: str
    source_ref: str | None
    labels: tuple[str, ...]
    labeled: bool
    has_errors: bool


@dataclass(frozen=True)
class EntryFilter:
    """Which entries a listing wants (None: no filter on that)."""

    labels: tuple[str, ...] | None = None
    labeled: bool | None = None
    source_ref_contains: str | None = None
    has_errors: bool | None = None

    def where(self) -> tuple[str, list[object]]:
        """SQL conditions over ``dataset_entries e`` and their parameters."""
        sql: list[str] = []
        args: list[object] = []
        if self.labels is not None:
            marks = ", ".join("?" * len(self.labels))
            sql.append("EXISTS (SELECT 1 FROM dataset_labels l WHERE l.project = e.project "
                       f"AND l.type = e.type AND l.seq = e.seq AND l.label IN ({marks}))")
            args.extend(self.labels)
        if self.labeled is not None:
            sql.append("e.labeled = ?")
            args.append(int(self.labeled))
        if self.source_ref_contains is not None:
            sql.append("instr(e.source_ref, ?) > 0")  # case-sensitive, no LIKE wildcards
            args.append(self.source_ref_contains)
        if self.has_errors is not None:
            sql.append("e.has_errors = ?")
            args.append(int(self.has_errors))
        return "".join(f" AND {s}" for s in sql), args


class DatasetStore:
    """Dataset rows and their entries; every write is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- datasets ---------------------------------------------------------------------------
    def get(self, project: str, type_: str) -> StoredDataset | None:
        """The project's dataset of that type, or None."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM datasets WHERE project = ? AND type = ?",
                              (project, type_))
        return StoredDataset(*rows[0]) if rows else None

    def of_project(self, project: str) -> list[StoredDataset]:
        """The project's datasets, TEST before TRAIN."""
        return [StoredDataset(*row) for row in self._db.query(
            f"SELECT {_COLUMNS} FROM datasets WHERE project = ? ORDER BY type", (project,))]

    def put(self, dataset: StoredDataset) -> None:
        """Insert or replace a dataset row (its entries stay)."""
        with self._db.transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO datasets ({_COLUMNS}) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", astuple(dataset))

    def delete(self, project: str, type_: str) -> None:
        """Remove a dataset and its entries."""
        with self._db.transaction() as conn:
            _delete(conn, project, type_)

    def delete_project(self, project: str) -> None:
        """Remove every dataset of a project, with their entries."""
        with self._db.transaction() as conn:
            for (type_,) in conn.execute("SELECT type FROM datasets WHERE project = ?",
                                         (project,)).fetchall():
                _delete(conn, project, type_)

    # ---- entries ----------------------------------------------------------------------------
    def add(self, project: str, type_: str, entries: Iterable[StoredEntry]) -> int:
        """Append entries; one with a source-ref already there replaces it in its place.

        Returns how many were added or replaced.
        """
        done = 0
        with self._db.transaction() as conn:
            for entry in entries:
                _put_entry(conn, project, type_, entry)
                done += 1
        return done

    def copy(self, source: tuple[str, str], target: tuple[str, str]) -> None:
        """Every entry of ``source`` (project, type) appended to ``target``, in order."""
        with self._db.transaction() as conn:
            for row in _entry_rows(conn, *source):
                _put_entry(conn, *target, row)

    def move(self, source: tuple[str, str], target: tuple[str, str],
             seqs: list[int]) -> None:
        """Move the entries of ``source`` at ``seqs`` to the end of ``target``."""
        with self._db.transaction() as conn:
            for seq in seqs:
                found = _entry_rows(conn, *source, seq)
                if found:
                    _remove_entry(conn, *source, seq)
                    _put_entry(conn, *target, found[0])

    def entries(self, project: str, type_: str, after: int, count: int,
                where: EntryFilter = EntryFilter()) -> list[tuple[int, StoredEntry]]:
        """``(seq, entry)`` after ``seq`` ``after``, in order, at most ``count``."""
        sql, args = where.where()
        rows = self._db.query(
            "SELECT e.seq, e.line, e.source_ref, e.labels, e.labeled, e.has_errors "
            f"FROM dataset_entries e WHERE e.project = ? AND e.type = ? AND e.seq > ?{sql} "
            "ORDER BY e.seq LIMIT ?", (project, type_, after, *args, count))
        return [(row[0], _entry(row[1:])) for row in rows]

    def labels(self, project: str, type_: str) -> list[tuple[str, int]]:
        """``(label, entries holding it)``, by label."""
        return [(str(label), int(n)) for label, n in self._db.query(
            "SELECT label, COUNT(*) FROM dataset_labels WHERE project = ? AND type = ? "
            "GROUP BY label ORDER BY label", (project, type_))]

    def counts(self, project: str, type_: str) -> tuple[int, int, int, int]:
        """(labelled entries, entries, distinct labels, entries in error)."""
        labeled, total, errors = self._db.query(
            "SELECT COALESCE(SUM(labeled), 0), COUNT(*), COALESCE(SUM(has_errors), 0) "
            "FROM dataset_entries WHERE project = ? AND type = ?", (project, type_))[0]
        (labels,) = self._db.query(
            "SELECT COUNT(DISTINCT label) FROM dataset_labels WHERE project = ? AND type = ?",
            (project, type_))[0]
        return int(labeled), int(total), int(labels), int(errors)


def _entry(row: tuple[object, ...]) -> StoredEntry:
    line, source_ref, labels, labeled, has_errors = row
    return StoredEntry(str(line), None if source_ref is None else str(source_ref),
                       tuple(json.loads(str(labels))), bool(labeled),
                       bool(has_errors))


def _entry_rows(conn: sqlite3.Connection, project: str, type_: str,
                seq: int | None = None) -> list[StoredEntry]:
    one = "" if seq is None else " AND seq = ?"
    rows = conn.execute(
        "SELECT line, source_ref, labels, labeled, has_errors FROM dataset_entries "
        f"WHERE project = ? AND type = ?{one} ORDER BY seq",
        (project, type_) if seq is None else (project, type_, seq)).fetchall()
    return [_entry(row) for row in rows]


def _put_entry(conn: sqlite3.Connection, project: str, type_: str, entry: StoredEntry) -> None:
    seq = None
    if entry.source_ref is not None:
        found = conn.execute("SELECT seq FROM dataset_entries WHERE project = ? AND type = ? "
                             "AND source_ref = ?", (project, type_, entry.source_ref)).fetchone()
        seq = None if found is None else int(found[0])
    if seq is None:
        (top,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM dataset_entries "
                              "WHERE project = ? AND type = ?", (project, type_)).fetchone()
        seq = int(top) + 1
    else:
        _remove_entry(conn, project, type_, seq)
    conn.execute("INSERT INTO dataset_entries (project, type, seq, line, source_ref, labels, "
                 "labeled, has_errors) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (project, type_, seq, entry.line, entry.source_ref, json.dumps(list(entry.labels)),
                  int(entry.labeled), int(entry.has_errors)))
    conn.executemany("INSERT INTO dataset_labels (project, type, seq, label) VALUES (?, ?, ?, ?)",
                     [(project, type_, seq, label) for label in entry.labels])


def _remove_entry(conn: sqlite3.Connection, project: str, type_: str, seq: int) -> None:
    for table in ("dataset_entries", "dataset_labels"):
        conn.execute(f"DELETE FROM {table} WHERE project = ? AND type = ? AND seq = ?",
                     (project, type_, seq))


def _delete(conn: sqlite3.Connection, project: str, type_: str) -> None:
    for table in ("datasets", "dataset_entries", "dataset_labels"):
        conn.execute(f"DELETE FROM {table} WHERE project = ? AND type = ?", (project, type_))
