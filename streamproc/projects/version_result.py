"""What a version's training produced, as typed values: files, evaluation, timing, starts.

Training builds a :class:`TrainingOutcome` (:mod:`.versions_training`), the ledger's
:class:`~.versions_commands.SetVersionStatus` carries it, a copy relocates its files
(:meth:`TrainingOutcome.relocated`), serving reads its thresholds and the API renders it
(:func:`streamproc.api.project_handlers.version_description`). A version's ``result`` is
still stored, and logged, in the wire's field names (EvaluationResult, ManifestSummary, ...,
and ``_training``, never on the wire): :meth:`TrainingOutcome.payload` writes exactly the
keys, nesting and values today's trainings write, and :meth:`TrainingOutcome.parse` reads
them back, so records and rows written before these types existed replay.

A part a result lacks is ``None`` here and stays out of :meth:`~TrainingOutcome.payload`
(a failed training's result is its timing only). Numbers are kept as they were stored (an
int stays an int) so re-written bytes do not change. A top-level key not modelled here (a
newer node's) is kept in :attr:`TrainingOutcome.other` and written back after the known
ones; inside a part, every key is one this server writes, so a part is parsed whole and an
unknown key there (only a newer node could write one) is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from streamproc.projects.version_spec import TrainingInput
from streamproc.storage.object_keys import ObjectRef

# A copy's relocation: a file pointer of the source's result -> the copy's (or itself).
Rename = Callable[[ObjectRef], ObjectRef]
TRAINING_KEY = "_training"  # the record of a training's starts (never on the wire)


class ResultError(ValueError):
    """A stored result part that does not fit its type; ``str(error)`` says which."""


@dataclass(frozen=True)
class Evaluation:
    """EvaluationResult: the F1 score and where the evaluation summary file is."""

    f1: float | None = None  # F1Score, as computed (an int stays an int)
    summary: ObjectRef | None = None  # Summary.S3Object

    def payload(self) -> dict[str, Any]:
        """EvaluationResult as stored."""
        out: dict[str, Any] = {}
        if self.f1 is not None:
            out["F1Score"] = self.f1
        if self.summary is not None:
            out["Summary"] = s3_object(self.summary)
        return out

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Evaluation:
        """Inverse of :meth:`payload`."""
        f1, summary = data.get("F1Score"), data.get("Summary")
        return cls(None if f1 is None else _number(f1, "F1Score"),
                   None if summary is None else object_ref(summary))

    def relocated(self, rename: Rename) -> Evaluation:
        """The evaluation with its summary file renamed."""
        return replace(self, summary=None if self.summary is None else rename(self.summary))


@dataclass(frozen=True)
class DataResult:
    """TrainingDataResult / TestingDataResult: the data asked, used and validated on."""

    input: TrainingInput | None = None  # the request's data, echoed (never relocated)
    output: TrainingInput | None = None  # the manifests the training wrote
    validation: TrainingInput | None = None  # Validation (never written here; kept if read)

    def payload(self) -> dict[str, Any]:
        """The data result as stored (Input, Output, Validation: those given)."""
        parts = (("Input", self.input), ("Output", self.output),
                 ("Validation", self.validation))
        return {key: part.stored() for key, part in parts if part is not None}

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> DataResult:
        """Inverse of :meth:`payload` (ResultError: an asset without Bucket and Name)."""
        def part(key: str) -> TrainingInput | None:
            value = data.get(key)
            if value is None:
                return None
            try:
                return TrainingInput.parse(dict(value))
            except (ValueError, TypeError) as error:
                raise ResultError(f"{key}: {error}") from error
        return cls(part("Input"), part("Output"), part("Validation"))

    def relocated(self, rename: Rename) -> DataResult:
        """The result with the training's own manifests renamed (Input stays the request's)."""
        return replace(self, output=_renamed(self.output, rename),
                       validation=_renamed(self.validation, rename))


@dataclass(frozen=True)
class TrainingRecord:
    """The starts of a version's training (``_training``): how many, and the last window."""

    attempts: int = 0
    stale_ms: int | None = None  # the window the last start gave (None: none recorded)

    def payload(self) -> dict[str, Any]:
        """``{"attempts": n, "stale_ms": window}`` (the window when there is one)."""
        window = {} if self.stale_ms is None else {"stale_ms": self.stale_ms}
        return {"attempts": self.attempts, **window}

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> TrainingRecord:
        """Inverse of :meth:`payload` (no ``attempts``: none recorded)."""
        window = data.get("stale_ms")
        return cls(int(data.get("attempts", 0)), None if window is None else int(window))


# Field -> its stored key, in the order today's trainings write them (the row is stored
# with sorted keys; this order is what a new ledger record holds).
_KEYS: tuple[tuple[str, str], ...] = (
    ("manifest_summary", "ManifestSummary"), ("training_data", "TrainingDataResult"),
    ("testing_data", "TestingDataResult"), ("evaluation", "EvaluationResult"),
    ("base_model", "BaseModelVersion"), ("assumed_thresholds", "AssumedThresholds"),
    ("billable_s", "BillableTrainingTimeInSeconds"), ("ended_at", "TrainingEndTimestamp"),
    ("source_arn", "SourceProjectVersionArn"), ("attempt", TRAINING_KEY))
_KNOWN = frozenset(key for _, key in _KEYS)


@dataclass(frozen=True)
class TrainingOutcome:
    """A version's result: what its training (or its copy) produced, and its starts."""

    manifest_summary: ObjectRef | None = None  # ManifestSummary.S3Object
    training_data: DataResult | None = None
    testing_data: DataResult | None = None
    evaluation: Evaluation | None = None
    base_model: str | None = None  # an adapter's BaseModelVersion (the pack it trained on)
    # A Custom Labels model's class -> assumed threshold, in its classes' order.
    assumed_thresholds: tuple[tuple[str, float], ...] | None = None
    billable_s: int | None = None  # BillableTrainingTimeInSeconds
    ended_at: float | None = None  # TrainingEndTimestamp, seconds (as the clock gave it)
    source_arn: str | None = None  # SourceProjectVersionArn (a copy's source)
    attempt: TrainingRecord | None = None  # the starts recorded (no copy takes them)
    other: tuple[tuple[str, Any], ...] = ()  # keys not modelled here, kept as stored

    @property
    def thresholds(self) -> dict[str, float] | None:
        """The assumed thresholds by class (None: not a trained Custom Labels model)."""
        return None if self.assumed_thresholds is None else dict(self.assumed_thresholds)

    @property
    def attempts(self) -> int:
        """How many starts of its training are recorded."""
        return 0 if self.attempt is None else self.attempt.attempts

    def trained(self) -> TrainingOutcome:
        """The outcome without its record of starts (what a copy takes)."""
        return replace(self, attempt=None)

    def merged(self, newer: TrainingOutcome | None) -> TrainingOutcome:
        """``newer``'s parts over this one's, a part at a time (as the stored keys merge)."""
        if newer is None:
            return self
        parts = {f.name: getattr(newer, f.name) for f in fields(self) if f.name != "other"}
        other = dict(self.other) | dict(newer.other)
        return replace(self, **{k: v for k, v in parts.items() if v is not None},
                       other=tuple(other.items()))

    def relocated(self, rename: Rename) -> TrainingOutcome:
        """The outcome with every file its training wrote renamed by ``rename``.

        The files are the manifest summary, the evaluation summary and the data results'
        Output (and Validation) manifests; the Input manifests are the request's and stay,
        as do the parts that are no files and :attr:`other` (no key this server writes).
        """
        def moved(part: Any) -> Any:
            return None if part is None else part.relocated(rename)
        return replace(self, manifest_summary=None if self.manifest_summary is None else
                       rename(self.manifest_summary), training_data=moved(self.training_data),
                       testing_data=moved(self.testing_data), evaluation=moved(self.evaluation))

    def payload(self) -> dict[str, Any]:
        """The result as stored: the wire's field names, ``_training``, then other keys."""
        out: dict[str, Any] = {}
        for name, key in _KEYS:
            value = getattr(self, name)
            if value is not None:
                out[key] = _stored(value)
        return out | {k: v for k, v in self.other if k not in out}

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> TrainingOutcome:
        """Inverse of :meth:`payload` (a ValueError: a part that does not fit)."""
        def get(key: str, parse: Callable[[Any], Any]) -> Any:
            value = data.get(key)
            try:
                return None if value is None else parse(value)
            except (AttributeError, TypeError) as error:  # a part that is not an object
                raise ResultError(f"{key}: {error}") from error
        thresholds = get("AssumedThresholds", lambda v: tuple(
            (str(label), _number(cut, "AssumedThresholds")) for label, cut in v.items()))
        return cls(get("ManifestSummary", object_ref),
                   get("TrainingDataResult", DataResult.parse),
                   get("TestingDataResult", DataResult.parse),
                   get("EvaluationResult", Evaluation.parse),
                   get("BaseModelVersion", str), thresholds,
                   get("BillableTrainingTimeInSeconds", int),
                   get("TrainingEndTimestamp", lambda v: _number(v, "TrainingEndTimestamp")),
                   get("SourceProjectVersionArn", str),
                   get(TRAINING_KEY, TrainingRecord.parse),
                   tuple((k, v) for k, v in data.items() if k not in _KNOWN))


def s3_object(ref: ObjectRef) -> dict[str, Any]:
    """``{"S3Object": {Bucket, Name[, Version]}}``: a file pointer as stored."""
    version = {} if ref.version is None else {"Version": ref.version}
    return {"S3Object": {"Bucket": ref.bucket, "Name": ref.name, **version}}


def object_ref(data: Mapping[str, Any]) -> ObjectRef:
    """Inverse of :func:`s3_object` (ResultError: no S3Object with Bucket and Name)."""
    obj = data.get("S3Object") or {}
    if "Bucket" not in obj or "Name" not in obj:
        msg = "a result's file pointer needs an S3Object with Bucket and Name"
        raise ResultError(msg)
    version = obj.get("Version")
    return ObjectRef(str(obj["Bucket"]), str(obj["Name"]),
                     None if version is None else str(version))


def _stored(value: Any) -> Any:
    if isinstance(value, ObjectRef):
        return s3_object(value)
    if isinstance(value, tuple):  # the assumed thresholds
        return dict(value)
    if isinstance(value, Evaluation | DataResult | TrainingRecord):
        return value.payload()
    return value


def _renamed(data: TrainingInput | None, rename: Rename) -> TrainingInput | None:
    if data is None or data.assets is None:
        return data
    return replace(data, assets=tuple(rename(ref) for ref in data.assets))


def _number(value: Any, key: str) -> float:
    """``value`` unchanged when it is a number (an int stays an int: the bytes stay)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{key} is {value!r}, not a number"
        raise ResultError(msg)
    return value
