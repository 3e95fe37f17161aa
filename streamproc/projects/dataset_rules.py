"""Every change to datasets, applied in ledger order.

The rules that depend on the state are checked here, once: the project exists (the same
one: name and creation time), it has no dataset of that type yet, a dataset being created or
updated takes no other work, a command names the dataset it was decided for (not one made
again since), and distribution needs an empty TEST dataset of the same project. A dataset's
busy status left by a daemon stopped part-way counts as failed after the window the
command carries (``projects.dataset_stale_s`` of the node that decided it; older records:
this node's), judged by the command's own time from the dataset's last activity (entries
arriving move it on). The filler's own closing status (the same work id) is always taken.
A copy is refused between projects of different Feature, or from a busy dataset.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import replace

from streamproc.config import Config
from streamproc.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceInUseException,
    ResourceNotFoundException,
    ResourceNotReadyException,
)
from streamproc.ledger import Applied, Appliers
from streamproc.projects.dataset_commands import (
    AddDatasetEntries,
    CreateDataset,
    DatasetRef,
    DeleteDataset,
    DistributeEntries,
    SetDatasetStatus,
)
from streamproc.projects.datasets import (
    Dataset,
    DatasetStatus,
    DatasetType,
    StatusCode,
)
from streamproc.projects.types import Project
from streamproc.rekognition.constants import Arns
from streamproc.storage.datasets import DatasetStore, StoredEntry
from streamproc.storage.projects import ProjectStore
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)

# DistributeDatasetEntries moves a fifth of each label set's entries (AWS: "20%").
TEST_SHARE = 5


def dataset_not_found(name: str) -> ResourceNotFoundException:
    """The one error for a dataset that is not here."""
    return ResourceNotFoundException(f"The dataset {name} does not exist")


def cross_feature_copy(source: str, target: str) -> InvalidParameterException:
    """A copy between projects of different Feature: its entries were parsed for another."""
    return InvalidParameterException(
        f"A dataset of a {source} project cannot be copied into a {target} project: its "
        "entries were checked against the other feature's labels; create it from a manifest")


def busy_copy(status: str) -> InvalidParameterException:
    """The dataset to copy is being created or updated (not ResourceInUse: not modelled)."""
    return InvalidParameterException(
        f"The dataset to copy is {status}: try again when it is done")


def check_copy(owner: str | None, target: str, source: Dataset) -> None:
    """The one rule of a copy: a ready dataset, from a project of the target's Feature.

    ``owner`` and ``target`` are the Features (``owner`` None: the source project is gone).
    The service calls it early (a clear answer before the command); the applier enforces it.
    """
    if owner is not None and owner != target:
        raise cross_feature_copy(owner, target)
    if source.status.busy:
        raise busy_copy(source.status.value)


def held_out(entries: list[tuple[int, StoredEntry]]) -> list[int]:
    """The seqs of the usable entries distribution moves: a fifth of each label set.

    Deterministic: within a label set, entries are taken in the order of their source-ref's
    SHA-256 (every node, every run picks the same); ``(n + 2) // 5`` rounds a fifth half up.
    """
    groups: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for seq, entry in entries:
        if not entry.has_errors and entry.source_ref is not None:
            digest = hashlib.sha256(entry.source_ref.encode()).hexdigest()
            groups[entry.labels].append((digest, seq))
    moved: list[int] = []
    for members in groups.values():
        members.sort()
        moved.extend(seq for _, seq in members[:(len(members) + 2) // TEST_SHARE])
    return sorted(moved)


class DatasetRules:
    """Applies the dataset commands to the dataset store."""

    def __init__(self, store: DatasetStore, projects: ProjectStore, tags: TagStore,
                 config: Config) -> None:
        self._store = store
        self._projects = projects
        self._tags = tags
        self._arns = Arns(config.server.region, config.server.account_id)
        self._stale_ms = int(config.projects.dataset_stale_s * 1000)

    def tag_key(self, dataset: Dataset) -> str:
        """The ARN a dataset's tags are kept under (``server.region``'s spelling)."""
        return self._arns.dataset(dataset.key.project, dataset.key.type.value,
                                  dataset.created_ms)

    def tag_key_of(self, resource_id: str) -> str | None:
        """The tag key of the dataset ``NAME/dataset/TYPE/MS`` names (None: no such dataset)."""
        ref = DatasetRef.parse(resource_id)
        row = None if ref is None else self._store.get(ref.project, ref.type.value)
        if ref is None or row is None or row.created_ms != ref.created_ms:
            return None
        return self.tag_key(Dataset.of(row))

    def project_gone(self, project: Project) -> None:
        """A deleted project's datasets go with it, and their tags."""
        for row in self._store.of_project(project.name):
            self._tags.delete_resource(self.tag_key(Dataset.of(row)))
        self._store.delete_project(project.name)

    def register(self, appliers: Appliers) -> None:
        """Declare the dataset commands."""
        appliers.register(CreateDataset, self._create)
        appliers.register(AddDatasetEntries, self._add)
        appliers.register(SetDatasetStatus, self._status)
        appliers.register(DeleteDataset, self._delete)
        appliers.register(DistributeEntries, self._distribute)

    def _raw(self, ref: DatasetRef) -> Dataset:
        """The dataset as stored (its busy work never judged stale)."""
        row = self._store.get(ref.project, ref.type.value)
        if row is None or row.created_ms != ref.created_ms:
            raise dataset_not_found(f"{ref.project}/dataset/{ref.type.value.lower()}/"
                                    f"{ref.created_ms}")
        return Dataset.of(row)

    def _require(self, ref: DatasetRef, at_ms: int, stale_ms: int | None) -> Dataset:
        """The dataset as it stands at ``at_ms``, by the command's window (older: config)."""
        window = self._stale_ms if stale_ms is None else stale_ms
        return self._raw(ref).effective(at_ms, window)

    def _create(self, c: CreateDataset, where: Applied) -> Dataset:
        dataset, key = c.dataset, c.dataset.key
        project = self._projects.get(key.project)
        if project is None or project.created_ms != dataset.project_ms:
            raise ResourceNotFoundException(f"The project {key.project} does not exist")
        if self._store.get(key.project, key.type.value) is not None:
            raise ResourceAlreadyExistsException(
                f"The project {key.project} already has a {key.type.value} dataset")
        source = None
        if c.copy_from is not None:
            source = self._require(c.copy_from, dataset.created_ms, c.stale_ms)
            owner = self._projects.get(c.copy_from.project)
            check_copy(None if owner is None else owner.feature, project.feature, source)
        self._store.put(dataset.stored())
        if c.tags:
            self._tags.set(self.tag_key(dataset), c.tags)
        if source is not None:
            self._store.copy((source.key.project, source.key.type.value),
                             (key.project, key.type.value))
        logger.info("created the %s dataset of %s (%s)", key.type.value, key.project,
                    dataset.status.value)
        return dataset

    def _add(self, c: AddDatasetEntries, where: Applied) -> int:
        dataset = self._raw(c.dataset)  # work under way is never stale to its own filler
        if not dataset.status.busy:
            raise ResourceInUseException(
                f"The dataset is {dataset.status.value}: entries are added only while it is "
                "being created or updated")
        if c.work is not None and c.work != dataset.work:
            raise ResourceInUseException(
                "The work these entries belong to was abandoned: another has started since")
        if c.at_ms is not None and c.at_ms > dataset.updated_ms:
            # Entries arriving are the work's heartbeat: it is not stale while they come.
            self._store.put(replace(dataset, updated_ms=c.at_ms).stored())
        return self._store.add(c.dataset.project, c.dataset.type.value,
                               (e.stored() for e in c.entries))

    def _status(self, c: SetDatasetStatus, where: Applied) -> Dataset:
        raw = self._raw(c.dataset)
        own = not c.status.busy and c.work is not None and raw.status.busy and \
            c.work == raw.work
        # The filler's own closing status ends its work however long it took; any other
        # command sees busy work silent past the window as failed.
        dataset = raw if own else self._require(c.dataset, c.at_ms, c.stale_ms)
        starting = c.status.busy
        if not starting and not own and c.work is not None and dataset.work:
            raise ResourceInUseException(
                "The work this status would end was abandoned: another has started since")
        if starting and dataset.status.busy:
            raise ResourceInUseException(
                f"The dataset is {dataset.status.value}: try again when it is done")
        if not starting and not dataset.status.busy:
            raise ResourceInUseException(f"The dataset is {dataset.status.value} already")
        changed = Dataset(dataset.key, dataset.project_ms, dataset.created_ms, c.at_ms,
                          c.status, c.message, c.code, (c.work or "") if starting else "")
        self._store.put(changed.stored())
        return changed

    def _delete(self, c: DeleteDataset, where: Applied) -> None:
        dataset = self._require(c.dataset, c.at_ms, c.stale_ms)
        if dataset.status.busy:
            raise ResourceInUseException(
                f"The dataset is {dataset.status.value}: it cannot be deleted until that ends")
        self._store.delete(c.dataset.project, c.dataset.type.value)
        self._tags.delete_resource(self.tag_key(dataset))
        logger.info("deleted the %s dataset of %s", c.dataset.type.value, c.dataset.project)

    def _distribute(self, c: DistributeEntries, where: Applied) -> int:
        if c.train.type is not DatasetType.TRAIN or c.test.type is not DatasetType.TEST or \
                c.train.project != c.test.project:
            raise InvalidParameterException(
                "Datasets must be the TRAIN and the TEST dataset of one project")
        train = self._require(c.train, c.at_ms, c.stale_ms)
        test = self._require(c.test, c.at_ms, c.stale_ms)
        for dataset in (train, test):
            if dataset.status.busy:
                raise ResourceNotReadyException(
                    f"The {dataset.key.type.value} dataset is {dataset.status.value}")
        project, tr, te = c.train.project, c.train.type.value, c.test.type.value
        if self._store.counts(project, te)[1]:
            raise InvalidParameterException("The TEST dataset must be empty to distribute")
        moved = held_out(self._store.entries(project, tr, 0, 1 << 62))
        if not moved:
            raise InvalidParameterException(
                "The TRAIN dataset has too few usable entries to move a fifth of any label "
                "set to the TEST dataset (at least 3 with the same labels)")
        self._store.move((project, tr), (project, te), moved)
        for dataset in (train, test):
            self._store.put(Dataset(dataset.key, dataset.project_ms, dataset.created_ms,
                                    c.at_ms, DatasetStatus.UPDATE_COMPLETE, "",
                                    StatusCode.SUCCESS).stored())
        logger.info("distributed %d entries of %s to its TEST dataset", len(moved), project)
        return len(moved)
