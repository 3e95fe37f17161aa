"""The dataset commands (appliers: :mod:`streamproc.projects.dataset_rules`), as the log holds them.

A manifest's entries travel in :class:`AddDatasetEntries` commands of about
``projects.dataset_chunk_bytes`` each, between a :class:`CreateDataset` (or a
:class:`SetDatasetStatus` to UPDATE_IN_PROGRESS) and the :class:`SetDatasetStatus` that ends
the work: every node gets the entries through the log, none needs the manifest (which may
have changed since), and no record outgrows what Kafka takes. Each command names its
dataset by project, type and creation time, so a command about a dataset deleted (and made
again) since is refused rather than applied to the new one.

Busy work is judged stale by the window its commands carry (``stale_ms``, the deciding
node's ``projects.dataset_stale_s``), so every node judges alike; entries carry their time
(``at_ms``: the work is alive) and the work's id, as does the status that ends it. Records
written before these keys replay as they did (the node's own window, no id).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from streamproc.ledger import Command
from streamproc.projects.datasets import (
    Dataset,
    DatasetKey,
    DatasetStatus,
    DatasetType,
    Entry,
    StatusCode,
)
from streamproc.storage.datasets import StoredDataset

_ID = re.compile(r"^([a-zA-Z0-9_.\-]{1,255})/dataset/(train|test)/([0-9]+)$")


@dataclass(frozen=True)
class DatasetRef:
    """One dataset as a command names it: project, type and creation time."""

    project: str
    type: DatasetType
    created_ms: int

    @property
    def key(self) -> DatasetKey:
        """The project and type (what the store keys by)."""
        return DatasetKey(self.project, self.type)

    def payload(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"project": self.project, "type": self.type.value, "created_ms": self.created_ms}

    @classmethod
    def of(cls, payload: dict[str, Any]) -> DatasetRef:
        """Inverse of :meth:`payload`."""
        return cls(str(payload["project"]), DatasetType(payload["type"]),
                   int(payload["created_ms"]))

    @classmethod
    def parse(cls, resource_id: str) -> DatasetRef | None:
        """``NAME/dataset/train/MS`` (a DatasetArn's id) as a reference, or None."""
        match = _ID.fullmatch(resource_id)
        if match is None:
            return None
        return cls(match.group(1), DatasetType(match.group(2).upper()), int(match.group(3)))


@dataclass(frozen=True)
class CreateDataset(Command[Dataset]):
    """Create a dataset (refused if its project has one of that type), maybe as a copy."""

    kind: ClassVar[str] = "dataset.create"
    dataset: Dataset
    copy_from: DatasetRef | None = None  # the entries of this dataset are copied, at once
    tags: dict[str, str] = field(default_factory=dict)
    stale_ms: int | None = None  # the window the copy's source is judged by (None: config)

    def payload(self) -> dict[str, Any]:
        """The dataset as its stored row's fields, the copy's source and the tags."""
        return {"dataset": asdict(self.dataset.stored()),
                "copy_from": None if self.copy_from is None else self.copy_from.payload(),
                "tags": dict(self.tags), **_set(stale_ms=self.stale_ms)}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """Its fields; ``stale_ms`` only in records written since it was added."""
        return frozenset({"dataset", "copy_from", "tags", "stale_ms"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> CreateDataset:
        """Inverse of :meth:`payload`."""
        source = payload["copy_from"]
        return cls(Dataset.of(StoredDataset(**payload["dataset"])),
                   None if source is None else DatasetRef.of(source), dict(payload["tags"]),
                   _int(payload.get("stale_ms")))


@dataclass(frozen=True)
class AddDatasetEntries(Command[int]):
    """Entries added to a dataset at work; one with a known source-ref replaces it."""

    kind: ClassVar[str] = "dataset.entries"
    dataset: DatasetRef
    entries: tuple[Entry, ...]
    at_ms: int | None = None  # when sent: the dataset's updated_ms moves on (work is alive)
    work: str | None = None  # the work they belong to (refused once another has started)

    def payload(self) -> dict[str, Any]:
        """Entries as ``[line, source_ref, labels, labeled, has_errors]`` lists."""
        return {"dataset": self.dataset.payload(),
                "entries": [[e.line, e.source_ref, list(e.labels), e.labeled, e.has_errors]
                            for e in self.entries], **_set(at_ms=self.at_ms, work=self.work)}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """Its fields; ``at_ms`` and ``work`` only in records written since they were added."""
        return frozenset({"dataset", "entries", "at_ms", "work"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> AddDatasetEntries:
        """Back from the lists."""
        entries = tuple(Entry(str(line), None if ref is None else str(ref),
                              tuple(map(str, labels)), bool(labeled), bool(errors))
                        for line, ref, labels, labeled, errors in payload["entries"])
        return cls(DatasetRef.of(payload["dataset"]), entries, _int(payload.get("at_ms")),
                   _str(payload.get("work")))


@dataclass(frozen=True)
class SetDatasetStatus(Command[Dataset]):
    """A dataset's work begins (UPDATE_IN_PROGRESS: refused while busy) or ends."""

    kind: ClassVar[str] = "dataset.status"
    dataset: DatasetRef
    status: DatasetStatus
    message: str
    code: StatusCode
    at_ms: int
    # A busy status starts this work; an ending one ends it, accepted however long it took.
    work: str | None = None
    stale_ms: int | None = None  # the window busy work is judged by (None: node config)

    def payload(self) -> dict[str, Any]:
        """The enums as their wire strings."""
        return {"dataset": self.dataset.payload(), "status": self.status.value,
                "message": self.message, "code": self.code.value, "at_ms": self.at_ms,
                **_set(work=self.work, stale_ms=self.stale_ms)}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """Its fields; ``work`` and ``stale_ms`` only in records written since."""
        return frozenset({"dataset", "status", "message", "code", "at_ms", "work",
                          "stale_ms"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> SetDatasetStatus:
        """Inverse of :meth:`payload`."""
        return cls(DatasetRef.of(payload["dataset"]), DatasetStatus(payload["status"]),
                   str(payload["message"]), StatusCode(payload["code"]), int(payload["at_ms"]),
                   _str(payload.get("work")), _int(payload.get("stale_ms")))


@dataclass(frozen=True)
class DeleteDataset(Command[None]):
    """Delete a dataset and its entries (refused while it is being created or updated)."""

    kind: ClassVar[str] = "dataset.delete"
    dataset: DatasetRef
    at_ms: int
    stale_ms: int | None = None  # the window busy work is judged by (None: node config)

    def payload(self) -> dict[str, Any]:
        """The dataset named, and the time."""
        return {"dataset": self.dataset.payload(), "at_ms": self.at_ms,
                **_set(stale_ms=self.stale_ms)}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """Its fields; ``stale_ms`` only in records written since it was added."""
        return frozenset({"dataset", "at_ms", "stale_ms"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> DeleteDataset:
        """Inverse of :meth:`payload`."""
        return cls(DatasetRef.of(payload["dataset"]), int(payload["at_ms"]),
                   _int(payload.get("stale_ms")))


@dataclass(frozen=True)
class DistributeEntries(Command[int]):
    """Move about 20% of a TRAIN dataset's usable entries to its empty TEST dataset."""

    kind: ClassVar[str] = "dataset.distribute"
    train: DatasetRef
    test: DatasetRef
    at_ms: int
    stale_ms: int | None = None  # the window busy work is judged by (None: node config)

    def payload(self) -> dict[str, Any]:
        """Both datasets named, and the time."""
        return {"train": self.train.payload(), "test": self.test.payload(),
                "at_ms": self.at_ms, **_set(stale_ms=self.stale_ms)}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """Its fields; ``stale_ms`` only in records written since it was added."""
        return frozenset({"train", "test", "at_ms", "stale_ms"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> DistributeEntries:
        """Inverse of :meth:`payload`."""
        return cls(DatasetRef.of(payload["train"]), DatasetRef.of(payload["test"]),
                   int(payload["at_ms"]), _int(payload.get("stale_ms")))


def _set(**values: object) -> dict[str, object]:
    """The optional keys that are set: a record without them reads as an older node's did."""
    return {key: value for key, value in values.items() if value is not None}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
