"""A project's datasets as the domain sees them: their type, status, entries and requests.

A project has at most one TRAIN and one TEST dataset, named by the project, the type and
its creation time (the DatasetArn ``project/NAME/dataset/train/CREATED_MS``).
An entry is one JSON line of the dataset: what ListDatasetEntries returns, with the labels
it holds and whether it is labelled or in error read out of it once, when it was parsed
(:mod:`streamproc.projects.manifests`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from streamproc.storage.datasets import StoredDataset, StoredEntry

_WORK = "work:"  # a busy row's message column: the id of its work


class DatasetType(str, Enum):
    """TRAIN or TEST (DatasetType); the ARN spells it in lower case."""

    TRAIN = "TRAIN"
    TEST = "TEST"


class DatasetStatus(str, Enum):
    """A dataset's Status. Work is synchronous here, so *_IN_PROGRESS lasts one call."""

    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    CREATE_COMPLETE = "CREATE_COMPLETE"
    CREATE_FAILED = "CREATE_FAILED"
    UPDATE_IN_PROGRESS = "UPDATE_IN_PROGRESS"
    UPDATE_COMPLETE = "UPDATE_COMPLETE"
    UPDATE_FAILED = "UPDATE_FAILED"
    DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"

    @property
    def busy(self) -> bool:
        """True while a create, update or delete is under way (nothing else may start)."""
        return self.value.endswith("_IN_PROGRESS")


class StatusCode(str, Enum):
    """StatusMessageCode: who a failure is down to."""

    SUCCESS = "SUCCESS"
    SERVICE_ERROR = "SERVICE_ERROR"
    CLIENT_ERROR = "CLIENT_ERROR"


@dataclass(frozen=True)
class DatasetKey:
    """Which dataset: its project's name and its type (one of each type per project)."""

    project: str
    type: DatasetType

    @property
    def resource_id(self) -> str:
        """``NAME/dataset/train/CREATED_MS`` without the time: what its ARN starts with."""
        return f"{self.project}/dataset/{self.type.value.lower()}"


@dataclass(frozen=True)
class Dataset:
    """One dataset's metadata (its entries are kept apart: there may be 10,000s)."""

    key: DatasetKey
    project_ms: int  # the project's creation time: a project made again later is another
    created_ms: int  # the creation time in its ARN, epoch milliseconds
    updated_ms: int
    status: DatasetStatus
    message: str
    code: StatusCode
    # While busy: the id of the work under way (its filler's commands carry it), so the
    # filler's own closing status is accepted even once the work reads as stale, and no
    # other filler's is. Kept in the message column, which is "" while busy.
    work: str = ""

    @property
    def resource_id(self) -> str:
        """``NAME/dataset/TYPE/CREATED_MS``: what follows ``project/`` in its ARN."""
        return f"{self.key.resource_id}/{self.created_ms}"

    def effective(self, now_ms: int, stale_ms: int) -> Dataset:
        """The dataset as it stands at ``now_ms``: work silent for ``stale_ms`` has failed.

        A create or update runs inside one call; a daemon stopped part-way leaves the
        dataset *_IN_PROGRESS. Reads and later commands (with the time they were decided)
        see it *_FAILED with the reason, so it can be deleted or updated again.
        """
        if not self.status.busy or now_ms - self.updated_ms < stale_ms:
            return self
        failed = DatasetStatus.CREATE_FAILED if self.status is \
            DatasetStatus.CREATE_IN_PROGRESS else DatasetStatus.UPDATE_FAILED
        return replace(self, status=failed, code=StatusCode.SERVICE_ERROR, work="", message=(
            "The work on this dataset was interrupted (the server stopped part-way)"))

    def stored(self) -> StoredDataset:
        """The row the store keeps."""
        k = self.key
        message = f"{_WORK}{self.work}" if self.status.busy and self.work else self.message
        return StoredDataset(k.project, self.project_ms, k.type.value, self.created_ms,
                             self.updated_ms, self.status.value, message, self.code.value)

    @classmethod
    def of(cls, row: StoredDataset) -> Dataset:
        """Inverse of :meth:`stored`."""
        status = DatasetStatus(row.status)
        message, work = row.message, ""
        if status.busy and message.startswith(_WORK):
            message, work = "", message[len(_WORK):]
        return cls(DatasetKey(row.project, DatasetType(row.type)), row.project_ms,
                   row.created_ms, row.updated_ms, status, message, StatusCode(row.code), work)


@dataclass(frozen=True)
class Entry:
    """One dataset entry: a JSON line and what was read out of it."""

    line: str  # the JSON object ListDatasetEntries returns (an ``errors`` list when in error)
    source_ref: str | None  # None: the line named no usable one (then it is in error)
    labels: tuple[str, ...] = ()  # sorted, unique
    labeled: bool = False  # it carries a label annotation (an adapter's ``[]`` counts)
    has_errors: bool = False

    def stored(self) -> StoredEntry:
        """The row the store keeps."""
        return StoredEntry(self.line, self.source_ref, self.labels, self.labeled,
                           self.has_errors)

    @classmethod
    def of(cls, row: StoredEntry) -> Entry:
        """Inverse of :meth:`stored`."""
        return cls(row.line, row.source_ref, tuple(row.labels), row.labeled, row.has_errors)


@dataclass(frozen=True)
class DatasetStats:
    """DatasetStats, counted from the entries."""

    labeled: int
    total: int
    labels: int
    errors: int


@dataclass(frozen=True)
class EntryQuery:
    """A ListDatasetEntries request, parsed: its filters and the page asked for."""

    contains_labels: tuple[str, ...] | None = None  # entries with any of these
    labeled: bool | None = None
    source_ref_contains: str | None = None
    has_errors: bool | None = None
    token: str | None = None
    max_results: int | None = None
