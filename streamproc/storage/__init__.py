"""Persistent state: SQLite (WAL, migrations) and FAISS indexes under the data dir, and S3 objects.

Owns every table and index file (collections, faces, users, processors, jobs, tags, the
outbox spool, cluster bookkeeping) and the one reader of ``S3Object`` references. Layer:
beside faces (imports neither); imports only the base modules (config, errors, metrics,
...), nothing above.
"""
