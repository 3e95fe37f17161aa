"""A stream processor's definition (what CreateStreamProcessor was given) and its storage."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from streamproc.storage.db import Database


@dataclass(frozen=True)
class ProcessorSpec:
    """Everything that defines a processor, as given by the client (secrets included)."""

    name: str
    arn: str
    input_arn: str
    output_arn: str
    collection_id: str
    threshold: float
    role_arn: str
    created: float
    regions: list[dict[str, Any]] = field(default_factory=list)
    data_sharing: bool | None = None
    notification: dict[str, Any] | None = None
    kms_key_id: str | None = None

    def with_updates(self, **changes: Any) -> ProcessorSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class StoredProcessor:
    """A spec plus the persisted status and desired state."""

    spec: ProcessorSpec
    status: str
    status_message: str
    desired: str
    updated: float


class ProcessorStore:
    """Processors in SQLite (the database file is 0600: input URLs may hold credentials)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self) -> list[StoredProcessor]:
        """All processors."""
        rows = self._db.query("SELECT spec, status, status_message, desired, updated "
                              "FROM processors ORDER BY name")
        return [StoredProcessor(ProcessorSpec(**json.loads(r[0])), r[1], r[2], r[3], r[4])
                for r in rows]

    def insert(self, spec: ProcessorSpec, status: str, updated: float) -> None:
        """Persist a new processor."""
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO processors VALUES (?, ?, ?, '', 'STOPPED', ?)",
                         (spec.name, json.dumps(asdict(spec)), status, updated))

    def save_spec(self, spec: ProcessorSpec) -> None:
        """Overwrite the definition (UpdateStreamProcessor)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE processors SET spec = ? WHERE name = ?",
                         (json.dumps(asdict(spec)), spec.name))

    def save_status(self, name: str, status: str, message: str, updated: float) -> None:
        """Record the latest status."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE processors SET status = ?, status_message = ?, updated = ? "
                         "WHERE name = ?", (status, message, updated, name))

    def save_desired(self, name: str, desired: str) -> None:
        """Record whether the processor should run after a restart."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE processors SET desired = ? WHERE name = ?", (desired, name))

    def delete(self, name: str) -> None:
        """Forget a processor."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM processors WHERE name = ?", (name,))
