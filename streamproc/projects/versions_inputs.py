"""What a version trains and tests on: the entries of its manifests or of its datasets.

CreateProjectVersion's ``TrainingData.Assets`` / ``TestingData.Assets`` name Ground Truth
manifests (read now, through the object store and its bucket allowlist, with the dataset
rules of :mod:`.manifests`); without them the project's TRAIN and TEST datasets are used,
as they were when the version was created (a dataset changed since fails the training).
``TestingData.AutoCreate`` holds out a fifth of each label set of the training entries, as
DistributeDatasetEntries does; so does a request with no test data at all (no test Assets
and no TEST dataset: a deviation, AWS refuses it). A test set given with nothing usable in
it fails the training ("the test set has no usable images"), never silently split.
Entries in error are counted, and fail the training past
``projects.dataset_max_error_fraction`` (AWS's 20% rule); the rest train. An adapter
trains on the top-level labels its entries name (``[]``: a safe image); a Custom Labels
classifier on one class per image.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from streamproc.config import ProjectsConfig
from streamproc.errors import StreamprocError
from streamproc.moderation import taxonomy
from streamproc.projects.dataset_rules import held_out
from streamproc.projects.datasets import Dataset, Entry
from streamproc.projects.manifests import LineRules, parse_entry
from streamproc.projects.types import Feature
from streamproc.projects.version_spec import SpecError, TrainingInput
from streamproc.projects.versions import Version
from streamproc.storage.datasets import DatasetStore, StoredEntry
from streamproc.storage.objects import ObjectRef, ObjectStore
from streamproc.training.errors import TrainingError
from streamproc.training.limits import Deadline

# Assets one TrainingData / TestingData may name (botocore gives no bound; AWS takes one
# manifest a set): each is a manifest read whole, so their number bounds a training's reads.
MAX_ASSETS = 10


class TrainingFailure(Exception):
    """A training that cannot complete; ``str(error)`` is the StatusMessage."""


@dataclass(frozen=True)
class Sample:
    """One usable image: where it is and its labels (adapter) or its one class."""

    source_ref: str
    labels: tuple[str, ...]
    line: str  # its JSON line, for the output manifests


@dataclass(frozen=True)
class Read:
    """One entry read and where it came from: its line number, and its asset's index."""

    entry: Entry
    line: int  # the manifest's own 1-based line number (a dataset: the entry's position)
    asset: int | None = None  # the index in Assets (None: the project's dataset)


@dataclass
class Gathered:
    """The usable samples of both sets and what was not usable, for the manifest summary."""

    train: list[Sample] = field(default_factory=list)
    test: list[Sample] = field(default_factory=list)
    lines: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    auto_split: bool = False


def manifest_refs(data: TrainingInput | None) -> list[ObjectRef]:
    """The manifests a set names (TrainingFailure: more than :data:`MAX_ASSETS`)."""
    refs = [] if data is None else list(data.manifests)
    if len(refs) > MAX_ASSETS:
        msg = f"Assets names {len(refs)} manifests: at most {MAX_ASSETS} are read"
        raise TrainingFailure(msg)
    return refs


class InputReader:
    """Reads a version's training and test entries; never raises but TrainingFailure."""

    def __init__(self, datasets: DatasetStore, objects: ObjectStore,
                 config: ProjectsConfig) -> None:
        self._datasets = datasets
        self._objects = objects
        self._config = config

    def gather(self, version: Version, stop: threading.Event,
               deadline: Deadline | None = None) -> Gathered:
        """Both sets' usable samples (TrainingFailure: nothing usable, too many errors).

        ``deadline`` (default: ``projects.training_deadline_s`` from now) is checked while
        the manifests are read; a set ``stop`` ends the reading with a TrainingFailure.
        """
        deadline = deadline or Deadline(self._config.training_deadline_s, stopped=stop.is_set)
        found = Gathered()
        try:
            training, testing = version.training, version.testing
        except SpecError as error:  # refused at creation: only a damaged record has one
            raise TrainingFailure(str(error)) from error
        budget = _Budget(self._config.training_max_images)
        try:
            train = self._entries(version, training, "TRAIN", (stop, deadline), budget)
            auto = testing is not None and testing.auto
            test = [] if auto else self._entries(version, testing, "TEST", (stop, deadline),
                                                 budget)
        except TrainingError as error:
            raise TrainingFailure(str(error)) from error
        if stop.is_set():
            msg = "the training was stopped (the server is shutting down)"
            raise TrainingFailure(msg)
        found.lines = len(train) + len(test)
        train_ok = self._usable(version.feature, train, found)
        test_ok = self._usable(version.feature, test, found)
        share = self._config.dataset_max_error_fraction
        if found.lines and len(found.errors) > share * found.lines:
            first = found.errors[0]
            msg = (f"{len(found.errors)} of {found.lines} JSON lines have errors (more than "
                   f"{share:.0%}): {_where(first)}: {first['code']}: {first['message']}")
            raise TrainingFailure(msg)
        if auto or not (test or manifest_refs(testing)):
            train_ok, test_ok = _split(train_ok)
            found.auto_split = True
        elif not test_ok:
            msg = (f"the test set has no usable images ({len(test)} JSON lines): label some, "
                   "or ask TestingData.AutoCreate to split the training data")
            raise TrainingFailure(msg)
        if version.feature is Feature.CONTENT_MODERATION:
            _check_taxonomy(train_ok + test_ok)
        found.train, found.test = train_ok, test_ok
        if not train_ok or not test_ok:
            msg = (f"too few usable images: {len(train_ok)} to train and {len(test_ok)} to "
                   "test; a version needs both")
            raise TrainingFailure(msg)
        return found

    def _entries(self, version: Version, data: TrainingInput | None, type_: str,
                 until: tuple[threading.Event, Deadline], budget: _Budget) -> list[Read]:
        stop, deadline = until
        refs = manifest_refs(data)
        if not refs:
            if not self._unchanged(version, type_):
                return []
            rows = self._datasets.entries(version.ref.project, type_, 0, 1 << 62)
            read = [Read(Entry.of(row), n) for n, (_, row) in enumerate(rows, 1)]
            for item in read:
                budget.take(item.entry)
            return read
        self._check_sizes(refs)
        found = _Found(self._config.dataset_max_entries, type_)
        rules = LineRules(version.feature, self._objects.readable,
                          self._config.dataset_max_line_bytes)
        for index, ref in enumerate(refs):
            asset = index if len(refs) > 1 else None
            try:
                for line in self._objects.lines(ref, rules.max_line_bytes, stop):
                    deadline.check()
                    entry = parse_entry(line.number, line.data, rules)
                    if entry is not None:
                        found.add(Read(entry, line.number, asset))
                        budget.take(entry)
            except StreamprocError as error:
                msg = f"The manifest {ref.shown} cannot be read: {error.message}"
                raise TrainingFailure(msg) from error
        return found.reads()

    def _unchanged(self, version: Version, type_: str) -> bool:
        """Whether the project's ``type_`` dataset is read (TrainingFailure: it changed).

        A version pins the datasets it reads when it is created (:data:`.versions.PINNED`):
        one not pinned then is not read now (a test set is then split off), and one
        updated, being updated or deleted since fails the training rather than train on
        other data than the request's. Older versions pinned nothing: read as they are.
        """
        pins = version.pins
        if pins is None:
            return True
        if type_ not in pins:
            return False
        row = self._datasets.get(version.ref.project, type_)
        # Busy by the datasets' own rule: work under way, or a stale one cut short (its
        # entries may be half-written either way).
        if row is None or row.updated_ms != pins[type_] or Dataset.of(row).status.busy:
            msg = (f"the project's {type_} dataset changed after the version was created "
                   "(its entries were updated, it was deleted, or work on it is under way or "
                   "was cut short by a stopped server): create the version again")
            raise TrainingFailure(msg)
        return True

    def _check_sizes(self, refs: list[ObjectRef]) -> None:
        """Each manifest, and all of a set together, within dataset_max_manifest_bytes."""
        limit = self._config.dataset_max_manifest_bytes
        total = 0
        for ref in refs:
            if not self._objects.readable(ref.bucket):
                msg = (f"The manifest's bucket {ref.bucket} is not one this server reads S3 "
                       "objects from (objects.buckets)")
                raise TrainingFailure(msg)
            try:
                total += self._objects.size(ref)
            except StreamprocError as error:
                msg = f"The manifest {ref.shown} cannot be read: {error.message}"
                raise TrainingFailure(msg) from error
            if total > limit:
                msg = (f"The manifests of one set hold more than {limit} bytes "
                       f"(projects.dataset_max_manifest_bytes), {ref.shown} included")
                raise TrainingFailure(msg)

    def _usable(self, feature: Feature, reads: list[Read], found: Gathered) -> list[Sample]:
        usable = []
        for read in reads:
            entry = read.entry
            reason = _unusable(feature, entry)
            if reason is not None:
                where: dict[str, Any] = {"line-number": read.line, "line-numer": read.line}
                if read.asset is not None:
                    where["asset"] = read.asset
                if entry.source_ref is not None:  # a line without one has no key at all
                    where["source-ref"] = entry.source_ref
                found.errors.append({**where, **reason})
            elif entry.labeled and entry.source_ref is not None:
                usable.append(Sample(entry.source_ref, entry.labels, entry.line))
        return usable


class _Budget:
    """Usable entries across both sets: one past ``most`` ends the reading."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.taken = 0

    def take(self, entry: Entry) -> None:
        if entry.has_errors or not entry.labeled or entry.source_ref is None:
            return
        self.taken += 1
        if self.taken > self.most:
            msg = (f"the training data holds more than {self.most} usable images "
                   f"(projects.training_max_images: {self.most})")
            raise TrainingFailure(msg)


class _Found:
    """One set's entries as a dataset would hold them: a source-ref again replaces its entry."""

    def __init__(self, most: int, type_: str) -> None:
        self._most = most
        self._type = type_
        self._reads: list[Read] = []
        self._at: dict[str, int] = {}

    def add(self, read: Read) -> None:
        ref = read.entry.source_ref
        if ref is not None and ref in self._at:
            self._reads[self._at[ref]] = read
            return
        if len(self._reads) == self._most:
            msg = (f"The {self._type} manifests hold more than {self._most} JSON lines "
                   "(projects.dataset_max_entries)")
            raise TrainingFailure(msg)
        if ref is not None:
            self._at[ref] = len(self._reads)
        self._reads.append(read)

    def reads(self) -> list[Read]:
        return self._reads


def _where(error: dict[str, Any]) -> str:
    asset = error.get("asset")
    line = f"line {error['line-number']}"
    return line if asset is None else f"asset {asset}, {line}"


def _check_taxonomy(samples: list[Sample]) -> None:
    """Fail, naming one, on a label no adapter trains on: not top-level in the taxonomy.

    A dataset copied from a Custom Labels project, or kept from before the check, may hold
    such labels; a head for one could never be served or written out.
    """
    for sample in samples:
        for label in sample.labels:
            if not taxonomy.is_label(label) or taxonomy.level_of(label) != 1:
                msg = (f"{label!r} (image {sample.source_ref}) is not a top-level label of "
                       f"the moderation taxonomy {taxonomy.VERSION}: an adapter trains on "
                       "those only")
                raise TrainingFailure(msg)


def _unusable(feature: Feature, entry: Entry) -> dict[str, str] | None:
    if entry.has_errors:
        errors = json.loads(entry.line).get("errors") or [{}]
        return {"code": str(errors[0].get("code", "ERROR")),
                "message": str(errors[0].get("message", "the line is in error"))}
    if feature is Feature.CUSTOM_LABELS and entry.labeled and len(entry.labels) != 1:
        return {"code": "ERROR_MULTIPLE_CLASSES",
                "message": "a Custom Labels classifier takes exactly one class per image"}
    return None


def _split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """A fifth of each label set held out for testing (TestingData.AutoCreate)."""
    rows = [(i, StoredEntry(s.line, s.source_ref, s.labels, True, False))
            for i, s in enumerate(samples)]
    moved = set(held_out(rows))
    return ([s for i, s in enumerate(samples) if i not in moved],
            [s for i, s in enumerate(samples) if i in moved])
