"""Dataset operations, API side: read the manifest, submit the changes, read datasets.

CreateDataset and UpdateDatasetEntries run inside the call, bounded by
``projects.dataset_max_entries`` / ``dataset_max_manifest_bytes``: the manifest (or the
Changes blob) is read and parsed here, before anything is submitted, so a manifest that
cannot be read creates nothing (AccessDeniedException for a bucket ``objects.buckets``
does not allow, InvalidS3ObjectException for a missing one, InvalidParameterException when
it is empty or too large). The entries then go through the ledger in bounded chunks
(:mod:`streamproc.projects.dataset_commands`), between the status that starts the work and
the one that ends it. Images are not read (AWS validates them when it trains).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from streamproc.config import Config
from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    ResourceNotReadyException,
    StreamprocError,
)
from streamproc.ledger import Ledger
from streamproc.projects.dataset_commands import (
    AddDatasetEntries,
    CreateDataset,
    DatasetRef,
    DeleteDataset,
    DistributeEntries,
    SetDatasetStatus,
)
from streamproc.projects.dataset_rules import check_copy, dataset_not_found
from streamproc.projects.datasets import (
    Dataset,
    DatasetKey,
    DatasetStats,
    DatasetStatus,
    DatasetType,
    Entry,
    EntryQuery,
    StatusCode,
)
from streamproc.projects.manifests import LineRules, parse_entry
from streamproc.projects.service import ProjectService
from streamproc.projects.types import Project
from streamproc.rekognition.constants import MAX_DATASET_RESULTS
from streamproc.rekognition.tokens import page_by_seq, page_of_keys
from streamproc.storage.datasets import DatasetStore, EntryFilter
from streamproc.storage.object_lines import ManifestLine, split_lines
from streamproc.storage.objects import ObjectRef, ObjectStore


@dataclass(frozen=True)
class NewDataset:
    """A CreateDataset request, parsed."""

    project_id: str  # NAME/CREATION_MS
    type: DatasetType
    manifest: ObjectRef | None = None  # DatasetSource.GroundTruthManifest.S3Object
    copy_from: str | None = None  # DatasetSource.DatasetArn's id
    tags: dict[str, str] | None = None


def chunks(entries: list[Entry], max_bytes: int) -> Iterator[tuple[Entry, ...]]:
    """``entries`` in runs of at most ``max_bytes`` as the log writes them (one at least).

    Each entry is measured as its command's JSON holds it (the line escaped again, its
    source-ref and labels beside it), so a record stays near ``max_bytes`` whatever the lines.
    """
    run: list[Entry] = []
    size = 0
    for entry in entries:
        cost = len(json.dumps([entry.line, entry.source_ref, list(entry.labels)])) + 13
        if run and size + cost > max_bytes:
            yield tuple(run)
            run, size = [], 0
        run.append(entry)
        size += cost
    if run:
        yield tuple(run)


class DatasetService:
    """What the API calls for datasets; raises domain errors only."""

    def __init__(self, store: DatasetStore, projects: ProjectService, objects: ObjectStore,
                 ledger: Ledger, config: Config,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._projects = projects
        self._objects = objects
        self._ledger = ledger
        self._limits = config.projects
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ---- reads ------------------------------------------------------------------------------
    def of_project(self, project: Project) -> list[Dataset]:
        """A project's datasets (ProjectDescription.Datasets)."""
        return [self._effective(Dataset.of(row)) for row in self._store.of_project(project.name)
                if row.project_ms == project.created_ms]

    @property
    def _stale_ms(self) -> int:
        """The node's window, written into the commands it decides (every node applies it)."""
        return int(self._limits.dataset_stale_s * 1000)

    def _effective(self, dataset: Dataset) -> Dataset:
        return dataset.effective(self._now_ms(), self._stale_ms)

    def require(self, resource_id: str) -> Dataset:
        """The dataset ``NAME/dataset/TYPE/MS`` names, or ResourceNotFoundException."""
        ref = DatasetRef.parse(resource_id)
        row = None if ref is None else self._store.get(ref.project, ref.type.value)
        if ref is None or row is None or row.created_ms != ref.created_ms:
            raise dataset_not_found(resource_id)
        return self._effective(Dataset.of(row))

    def describe(self, resource_id: str) -> tuple[Dataset, DatasetStats]:
        """The dataset and its DatasetStats."""
        dataset = self.require(resource_id)
        return dataset, DatasetStats(*self._store.counts(dataset.key.project,
                                                         dataset.key.type.value))

    def _listable(self, resource_id: str) -> Dataset:
        dataset = self.require(resource_id)
        if dataset.status.busy:
            raise ResourceNotReadyException(f"The dataset is {dataset.status.value}")
        return dataset

    def entries(self, resource_id: str, query: EntryQuery) -> tuple[list[str], str | None]:
        """One page of the JSON lines that pass the filters, in dataset order."""
        key = self._listable(resource_id).key
        where = EntryFilter(query.contains_labels, query.labeled, query.source_ref_contains,
                            query.has_errors)

        def fetch(after: int, count: int) -> list[tuple[int, str]]:
            return [(seq, e.line) for seq, e in self._store.entries(
                key.project, key.type.value, after, count, where)]

        rows, token = page_by_seq(f"entries:{resource_id}", query.token,
                                  query.max_results or MAX_DATASET_RESULTS, fetch,
                                  lambda row: row[0])
        return [line for _, line in rows], token

    def labels(self, resource_id: str, token: str | None, max_results: int | None
               ) -> tuple[list[tuple[str, int]], str | None]:
        """One page of ``(label, entries holding it)``, by label."""
        key = self._listable(resource_id).key
        counts = dict(self._store.labels(key.project, key.type.value))
        names, next_token = page_of_keys(f"labels:{resource_id}", sorted(counts), token,
                                         max_results or MAX_DATASET_RESULTS)
        return [(name, counts[name]) for name in names], next_token

    # ---- changes ----------------------------------------------------------------------------
    def create(self, request: NewDataset) -> Dataset:
        """Create a dataset: empty, from a manifest, or a copy of another dataset."""
        project = self._projects.require(request.project_id)
        source = None if request.copy_from is None else self._source(request.copy_from,
                                                                     project)
        entries = None if request.manifest is None else self._manifest(request.manifest,
                                                                       project)
        now = self._now_ms()
        status = DatasetStatus.CREATE_IN_PROGRESS if entries else DatasetStatus.CREATE_COMPLETE
        dataset = Dataset(DatasetKey(project.name, request.type), project.created_ms, now, now,
                          status, "" if entries else "The dataset was created",
                          StatusCode.SUCCESS, uuid.uuid4().hex if entries else "")
        copy = None if source is None else DatasetRef(source.key.project, source.key.type,
                                                      source.created_ms)
        made = self._ledger.submit(CreateDataset(dataset, copy, dict(request.tags or {}),
                                                 self._stale_ms))
        if entries:
            return self._fill(made, entries, DatasetStatus.CREATE_COMPLETE,
                              DatasetStatus.CREATE_FAILED, "created")
        return made

    def _source(self, resource_id: str, project: Project) -> Dataset:
        """The dataset a copy is made of: ready, and of a project of the same Feature.

        Its entries were parsed under their project's rules (an adapter's taxonomy labels,
        a Custom Labels project's classes): copied across they would bypass the target's.
        Both refusals are InvalidParameterException, an error botocore models for
        CreateDataset (ResourceInUseException is not one).
        """
        source = self.require(resource_id)
        owner = self._projects.get(source.key.project)
        check_copy(None if owner is None else owner.feature.value, project.feature.value,
                   source)
        return source

    def update(self, resource_id: str, changes: bytes) -> Dataset:
        """UpdateDatasetEntries: JSON lines added, or replacing those with their source-ref."""
        dataset = self.require(resource_id)
        project = self._projects.get(dataset.key.project)
        if project is None:  # deleted with its datasets since: the dataset is gone too
            raise dataset_not_found(dataset.key.project)
        lines = split_lines([changes], self._limits.dataset_max_line_bytes, threading.Event())
        entries = self._parse(lines, project, "Changes.GroundTruth")
        self._check_room(dataset, len(entries))
        ref = _ref(dataset)
        started = self._ledger.submit(SetDatasetStatus(
            ref, DatasetStatus.UPDATE_IN_PROGRESS, "", StatusCode.SUCCESS, self._now_ms(),
            uuid.uuid4().hex, self._stale_ms))
        return self._fill(started, entries, DatasetStatus.UPDATE_COMPLETE,
                          DatasetStatus.UPDATE_FAILED, "updated")

    def delete(self, resource_id: str) -> None:
        """DeleteDataset: gone at once (AWS answers while DELETE_IN_PROGRESS)."""
        dataset = self.require(resource_id)
        self._ledger.submit(DeleteDataset(_ref(dataset), self._now_ms(), self._stale_ms))

    def distribute(self, resource_ids: list[str]) -> int:
        """DistributeDatasetEntries over a TRAIN and a TEST dataset (either order)."""
        found = [self.require(r) for r in resource_ids]
        by_type = {d.key.type: d for d in found}
        if len(by_type) != 2:
            raise InvalidParameterException(
                "Datasets must be the TRAIN and the TEST dataset of one project")
        return self._ledger.submit(DistributeEntries(
            _ref(by_type[DatasetType.TRAIN]), _ref(by_type[DatasetType.TEST]), self._now_ms(),
            self._stale_ms))

    # ---- work -------------------------------------------------------------------------------
    def _manifest(self, ref: ObjectRef, project: Project) -> list[Entry]:
        if not self._objects.readable(ref.bucket):
            raise AccessDeniedException(
                f"The manifest's bucket {ref.bucket} is not one this server reads S3 objects "
                "from (objects.buckets)")
        limit = self._limits.dataset_max_manifest_bytes
        if self._objects.size(ref) > limit:
            raise InvalidParameterException(
                f"The manifest is larger than {limit} bytes (projects.dataset_max_manifest_bytes)")
        lines = self._objects.lines(ref, self._limits.dataset_max_line_bytes, threading.Event())
        return self._parse(lines, project, "The manifest")

    def _parse(self, lines: Iterable[ManifestLine], project: Project,
               what: str) -> list[Entry]:
        rules = LineRules(project.feature, self._objects.readable,
                          self._limits.dataset_max_line_bytes)
        most = self._limits.dataset_max_entries
        entries: list[Entry] = []
        for line in lines:
            entry = parse_entry(line.number, line.data, rules)
            if entry is None:
                continue
            if len(entries) == most:
                raise InvalidParameterException(
                    f"{what} holds more than {most} JSON lines (projects.dataset_max_entries)")
            entries.append(entry)
        if not entries:
            raise InvalidParameterException(f"{what} holds no JSON lines")
        return entries

    def _check_room(self, dataset: Dataset, adding: int) -> None:
        held = self._store.counts(dataset.key.project, dataset.key.type.value)[1]
        most = self._limits.dataset_max_entries
        if held + adding > most:
            raise InvalidParameterException(
                f"The dataset holds {held} entries: {adding} more would pass {most} "
                "(projects.dataset_max_entries)")

    def _fill(self, dataset: Dataset, entries: list[Entry], done: DatasetStatus,
              failed: DatasetStatus, verb: str) -> Dataset:
        """Submit the entries in chunks, then the status that ends the work."""
        ref, work = _ref(dataset), dataset.work or None
        try:
            for run in chunks(entries, self._limits.dataset_chunk_bytes):
                self._ledger.submit(AddDatasetEntries(ref, run, self._now_ms(), work))
        except Exception:
            # The dataset may be gone (its project deleted meanwhile): the first error stands.
            with contextlib.suppress(StreamprocError):
                self._ledger.submit(SetDatasetStatus(
                    ref, failed, f"The dataset could not be {verb}: a server error",
                    StatusCode.SERVICE_ERROR, self._now_ms(), work, self._stale_ms))
            raise
        errors = sum(e.has_errors for e in entries)
        share = self._limits.dataset_max_error_fraction
        if errors > share * len(entries):
            status, code = failed, StatusCode.CLIENT_ERROR
            message = (f"ERROR_TOO_MANY_RECORDS_IN_ERROR: {errors} of {len(entries)} JSON "
                       f"lines have errors (more than {share:.0%}); ListDatasetEntries with "
                       "HasErrors lists them")
        else:
            status, code, message = done, StatusCode.SUCCESS, f"The dataset was {verb}"
        return self._ledger.submit(SetDatasetStatus(ref, status, message, code, self._now_ms(),
                                                    work, self._stale_ms))


def _ref(dataset: Dataset) -> DatasetRef:
    return DatasetRef(dataset.key.project, dataset.key.type, dataset.created_ms)
