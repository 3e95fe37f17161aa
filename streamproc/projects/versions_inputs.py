"""What a version trains and tests on: the entries of its manifests or of its datasets.

CreateProjectVersion's ``TrainingData.Assets`` / ``TestingData.Assets`` name Ground Truth
manifests (read now, through the object store and its bucket allowlist, with the dataset
rules of :mod:`.manifests`); without them the project's TRAIN and TEST datasets are used.
``TestingData.AutoCreate`` (or no test data at all) holds out a fifth of each label set of
the training entries, as DistributeDatasetEntries does. Entries in error are counted, and
fail the training past ``projects.dataset_max_error_fraction`` (AWS's 20% rule); the rest
train. An adapter trains on the top-level labels its entries name (``[]``: a safe image);
a Custom Labels classifier on one class per image.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from streamproc.config import ProjectsConfig
from streamproc.errors import StreamprocError
from streamproc.projects.dataset_rules import held_out
from streamproc.projects.datasets import Entry
from streamproc.projects.manifests import LineRules, parse_entry
from streamproc.projects.types import Feature
from streamproc.projects.versions import Version
from streamproc.storage.datasets import DatasetStore, StoredEntry
from streamproc.storage.objects import ObjectRef, ObjectStore


class TrainingFailure(Exception):
    """A training that cannot complete; ``str(error)`` is the StatusMessage."""


@dataclass(frozen=True)
class Sample:
    """One usable image: where it is and its labels (adapter) or its one class."""

    source_ref: str
    labels: tuple[str, ...]
    line: str  # its JSON line, for the output manifests


@dataclass
class Gathered:
    """The usable samples of both sets and what was not usable, for the manifest summary."""

    train: list[Sample] = field(default_factory=list)
    test: list[Sample] = field(default_factory=list)
    lines: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    auto_split: bool = False


def manifest_refs(data: dict[str, Any] | None) -> list[ObjectRef]:
    """The manifests ``TrainingData`` / ``TestingData`` name (TrainingFailure: malformed)."""
    refs = []
    for asset in (data or {}).get("Assets") or []:
        obj = (asset.get("GroundTruthManifest") or {}).get("S3Object") or {}
        if "Bucket" not in obj or "Name" not in obj:
            msg = "An asset's GroundTruthManifest needs an S3Object with Bucket and Name"
            raise TrainingFailure(msg)
        refs.append(ObjectRef(obj["Bucket"], obj["Name"], obj.get("Version")))
    return refs


class InputReader:
    """Reads a version's training and test entries; never raises but TrainingFailure."""

    def __init__(self, datasets: DatasetStore, objects: ObjectStore,
                 config: ProjectsConfig) -> None:
        self._datasets = datasets
        self._objects = objects
        self._config = config

    def gather(self, version: Version, stop: threading.Event) -> Gathered:
        """Both sets' usable samples (TrainingFailure: nothing usable, too many errors)."""
        found = Gathered()
        training, testing = version.spec.get("TrainingData"), version.spec.get("TestingData")
        train = self._entries(version, training, "TRAIN", stop)
        auto = bool((testing or {}).get("AutoCreate"))
        test = [] if auto else self._entries(version, testing, "TEST", stop)
        found.lines = len(train) + len(test)
        train_ok = self._usable(version.feature, train, found)
        test_ok = self._usable(version.feature, test, found)
        share = self._config.dataset_max_error_fraction
        if found.lines and len(found.errors) > share * found.lines:
            first = found.errors[0]
            msg = (f"{len(found.errors)} of {found.lines} JSON lines have errors (more than "
                   f"{share:.0%}): line {first['line-number']}: {first['code']}: "
                   f"{first['message']}")
            raise TrainingFailure(msg)
        if not test_ok:
            train_ok, test_ok = _split(train_ok)
            found.auto_split = True
        found.train, found.test = train_ok, test_ok
        if not train_ok or not test_ok:
            msg = (f"too few usable images: {len(train_ok)} to train and {len(test_ok)} to "
                   "test; a version needs both")
            raise TrainingFailure(msg)
        return found

    def _entries(self, version: Version, data: dict[str, Any] | None, type_: str,
                 stop: threading.Event) -> list[Entry]:
        refs = manifest_refs(data)
        if not refs:
            rows = self._datasets.entries(version.ref.project, type_, 0, 1 << 62)
            return [Entry.of(row) for _, row in rows]
        entries: list[Entry] = []
        rules = LineRules(version.feature, self._objects.readable,
                          self._config.dataset_max_line_bytes)
        for ref in refs:
            if not self._objects.readable(ref.bucket):
                msg = (f"The manifest's bucket {ref.bucket} is not one this server reads S3 "
                       "objects from (objects.buckets)")
                raise TrainingFailure(msg)
            try:
                for line in self._objects.lines(ref, rules.max_line_bytes, stop):
                    entry = parse_entry(line.number, line.data, rules)
                    if entry is not None:
                        entries.append(entry)
            except StreamprocError as error:
                msg = f"The manifest {ref.shown} cannot be read: {error.message}"
                raise TrainingFailure(msg) from error
        return entries

    def _usable(self, feature: Feature, entries: list[Entry], found: Gathered) -> list[Sample]:
        usable = []
        for number, entry in enumerate(entries, 1):
            reason = _unusable(feature, entry)
            if reason is not None:
                found.errors.append({"line-number": number, "line-numer": number,
                                     "source-ref": entry.source_ref, **reason})
            elif entry.labeled and entry.source_ref is not None:
                usable.append(Sample(entry.source_ref, entry.labels, entry.line))
        return usable


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
