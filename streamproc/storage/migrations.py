"""Versioned schema migrations, tracked in SQLite's ``PRAGMA user_version``.

Each migration runs once, in order, in its own transaction together with the version bump,
so a crash leaves the database at the old version or the new one, never between. Version 1
is the schema as first released (``IF NOT EXISTS``, so databases made before versioning
start from it unchanged). A database newer than this code is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step from ``version - 1`` to ``version``."""

    version: int
    description: str
    sql: str


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer streamproc."""


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a new or pre-versioning one)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, steps: list[Migration], path: str) -> int:
    """Apply every step newer than the file's version; returns the version reached."""
    have = current_version(conn)
    latest = steps[-1].version
    if have > latest:
        msg = (f"{path} has schema version {have}, newer than this streamproc knows "
               f"({latest}); run a newer streamproc or restore an older data dir")
        raise SchemaTooNewError(msg)
    for step in steps:
        if step.version <= have:
            continue
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{step.sql}\n"
                               f"PRAGMA user_version = {int(step.version)};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        have = step.version
    return have


_MAIN_V1 = """
CREATE TABLE IF NOT EXISTS collections (
    id TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    created REAL NOT NULL,
    pack TEXT NOT NULL,
    dim INTEGER NOT NULL,
    face_model_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    face_id TEXT NOT NULL,
    image_id TEXT NOT NULL,
    external_image_id TEXT,
    bbox TEXT NOT NULL,
    confidence REAL NOT NULL,
    embedding BLOB NOT NULL,
    created REAL NOT NULL,
    UNIQUE (collection, face_id)
);
CREATE TABLE IF NOT EXISTS processors (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    desired TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
);
"""

_MAIN_V3 = """
CREATE TABLE users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (collection, user_id)
);
ALTER TABLE faces ADD COLUMN user_id TEXT;
CREATE INDEX faces_by_user ON faces (collection, user_id) WHERE user_id IS NOT NULL;
CREATE TABLE request_tokens (
    operation TEXT NOT NULL,
    token TEXT NOT NULL,
    collection TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (operation, token)
);
CREATE INDEX request_tokens_by_age ON request_tokens (created);
"""

# Stored-video jobs. ``state`` is QUEUED/RUNNING/SUCCEEDED/FAILED (the wire's IN_PROGRESS is
# the first two); ``request`` is the canonical Start request that idempotency compares;
# ``attempt`` counts launches (a restart mid-job launches it again). Results are written while
# the job runs and shown only once it SUCCEEDED; ``person`` is GetFaceSearch's Person.Index.
_MAIN_V4 = """
CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    token TEXT,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    video_metadata TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    finished REAL
);
CREATE UNIQUE INDEX jobs_token ON jobs (api, token) WHERE token IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, created);
CREATE TABLE job_results (
    job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    person INTEGER,
    item TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX job_results_person ON job_results (job_id, person, timestamp_ms, seq);
"""

# ``listing`` keeps apart the rows of a kind whose Get lists results more than one way
# (GetContentModeration's AggregateBy: TIMESTAMPS or SEGMENTS rows); ``name`` is what its
# SortBy NAME sorts by. Both are '' for the face jobs' rows (and every row written before).
_MAIN_V9 = """
ALTER TABLE job_results ADD COLUMN listing TEXT NOT NULL DEFAULT '';
ALTER TABLE job_results ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX job_results_time ON job_results (job_id, listing, timestamp_ms, seq);
CREATE INDEX job_results_name ON job_results (job_id, listing, name, timestamp_ms, seq);
"""

# Custom Labels / adapter projects. ``created_ms`` is the creation time in the project's ARN
# (epoch milliseconds); ``auto_update`` is NULL for a Custom Labels project (AWS has none).
_MAIN_V10 = """
CREATE TABLE projects (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    feature TEXT NOT NULL,
    auto_update TEXT,
    status TEXT NOT NULL
);
"""

# A project's datasets (one TRAIN, one TEST at most) and their entries: each entry's JSON line
# as ListDatasetEntries returns it, its source-ref (NULL for a line that named none), its labels
# as a JSON list, and one dataset_labels row per label (for ContainsLabels and
# ListDatasetLabels). ``seq`` orders a dataset's entries.
_MAIN_V11 = """
CREATE TABLE datasets (
    project TEXT NOT NULL,
    project_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (project, type)
);
CREATE TABLE dataset_entries (
    project TEXT NOT NULL,
    type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL,
    source_ref TEXT,
    labels TEXT NOT NULL,
    labeled INTEGER NOT NULL,
    has_errors INTEGER NOT NULL,
    PRIMARY KEY (project, type, seq)
);
CREATE UNIQUE INDEX dataset_entries_ref ON dataset_entries (project, type, source_ref)
    WHERE source_ref IS NOT NULL;
CREATE TABLE dataset_labels (
    project TEXT NOT NULL,
    type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (project, type, seq, label)
);
CREATE INDEX dataset_labels_label ON dataset_labels (project, type, label);
"""

_MAIN_V12 = """
CREATE TABLE project_versions (
    project TEXT NOT NULL,
    project_ms INTEGER NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    feature TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    node TEXT NOT NULL,
    spec TEXT NOT NULL,
    result TEXT NOT NULL,
    min_units INTEGER,
    max_units INTEGER,
    model BLOB,
    PRIMARY KEY (project, name)
);
CREATE INDEX project_versions_status ON project_versions (status);
CREATE TABLE project_policies (
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    revision TEXT NOT NULL,
    document TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (project, name)
);
"""

# The main database: collections, faces (with embeddings), processors, tags.
MAIN: list[Migration] = [
    Migration(1, "collections, faces, processors, tags", _MAIN_V1),
    Migration(2, "collections remember the recogniser (sha256 of its file) they were made "
                 "with, so a collection is searched only with the model that made it",
              "ALTER TABLE collections ADD COLUMN recognizer TEXT;"),
    Migration(3, "users of a collection (faces.user_id says whose a face is) and the "
                 "ClientRequestTokens of user operations, for idempotent retries", _MAIN_V3),
    Migration(4, "stored-video jobs and their results", _MAIN_V4),
    Migration(5, "processors remember the SessionId of their latest Start and the node that "
                 "runs them (cluster mode), so a restarted node resumes the same session",
              "ALTER TABLE processors ADD COLUMN session_id TEXT NOT NULL DEFAULT '';\n"
              "ALTER TABLE processors ADD COLUMN owner TEXT NOT NULL DEFAULT '';"),
    Migration(6, "cluster mode: which cluster's log this data dir mirrors, and how far it "
                 "has applied it",
              "CREATE TABLE IF NOT EXISTS cluster_log (\n"
              "    topic TEXT PRIMARY KEY,\n    cluster TEXT NOT NULL,\n"
              "    applied INTEGER NOT NULL\n);"),
    Migration(7, "cluster mode: the placement group's epoch (a stuck group is replaced by "
                 "a fresh one that every node agrees on through the log)",
              "ALTER TABLE cluster_log ADD COLUMN placement_epoch INTEGER NOT NULL DEFAULT 0;"),
    Migration(8, "stored-video jobs remember the node that runs their current launch (cluster "
                 "mode: a job moves only when that node leaves)",
              "ALTER TABLE jobs ADD COLUMN node TEXT NOT NULL DEFAULT '';"),
    Migration(9, "job results name the listing they belong to and a name to sort by "
                 "(content moderation: per timestamp or per segment, by label name)",
              _MAIN_V9),
    Migration(10, "Custom Labels and adapter projects (CreateProject)", _MAIN_V10),
    Migration(11, "project datasets and their entries (CreateDataset)", _MAIN_V11),
    Migration(12, "project versions (CreateProjectVersion) with their trained model bytes, "
                  "and project policies (PutProjectPolicy)", _MAIN_V12),
]

# The outbox spool (a separate file): records waiting for a destination, in order.
# pos orders records; append(front=True) puts records before everything already spooled.
SPOOL: list[Migration] = [
    Migration(1, "spooled records in arrival order", """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    pos REAL NOT NULL,
    processor TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_order ON spool (cluster, pos);
"""),
    Migration(2, "records a destination refused for good, moved aside (dead letters)", """
CREATE TABLE dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    processor TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX dead_letter_cluster ON dead_letter (cluster, id);
"""),
]
