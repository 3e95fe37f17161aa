"""The files a training writes to its OutputConfig, and where DescribeProjectVersions says.

Every file goes through the object store's atomic put (``objects.output_buckets`` decides
where it may go) under ``{S3KeyPrefix}{project}/{version}/``:

- ``train/output.manifest`` and ``test/output.manifest``: the images used, as JSON lines; an
  adapter's test lines also hold ``detect-moderation-labels`` (the adapter's predictions)
  and ``detect-moderation-labels-base-model``, at Confidence 5 and up, as AWS writes them;
- an adapter's ``evaluation-summary.json`` (:func:`streamproc.training.summaries.adapter_summary`),
  or Custom Labels' ``EvaluationSummary-PROJECT-VERSION.json``;
- ``manifest-summary.json``: line counts and the lines and images that could not be used.

CopyProjectVersion copies these files to the copy's own OutputConfig (:func:`copy_outputs`),
so the copy's result points at its files, not its source's
(:meth:`~.version_result.TrainingOutcome.relocated`). Each writer returns the
:class:`~.version_result.TrainingOutcome` parts that point at its files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    OutputNotWritable,
    StreamprocError,
)
from streamproc.moderation import taxonomy
from streamproc.projects.version_result import DataResult, Evaluation, TrainingOutcome
from streamproc.projects.version_spec import OutputTarget, TrainingInput
from streamproc.projects.versions import Version
from streamproc.projects.versions_inputs import Gathered, Sample, TrainingFailure
from streamproc.storage.object_keys import ObjectRef
from streamproc.storage.objects import ObjectStore
from streamproc.training.summaries import (
    Details,
    LabelScores,
    adapter_summary,
    custom_labels_summary,
)

PREDICTION_FLOOR = 5.0  # output manifests list predictions at Confidence 5 and up (AWS)


@dataclass(frozen=True)
class Predictions:
    """An adapter's test-set predictions, for its output manifests."""

    gathered: Gathered
    train: list[Sample]
    test: list[Sample]
    adapter: dict[str, np.ndarray]  # label -> Confidence per test image
    base: dict[str, np.ndarray]
    unreadable: list[dict[str, Any]]


def _labels(scores: dict[str, np.ndarray], row: int, model_version: str,
            arn: str | None) -> dict[str, Any]:
    # The inputs admit top-level taxonomy labels only; a name outside it (never a KeyError
    # after a whole training) is written with no parent.
    found = [{"Confidence": round(float(v[row]), 3), "Name": label,
              "ParentName": taxonomy.parent_of(label) if taxonomy.is_label(label) else ""}
             for label, v in sorted(scores.items()) if float(v[row]) >= PREDICTION_FLOOR]
    out: dict[str, Any] = {"ModerationLabels": found, "ModerationModelVersion": model_version}
    if arn is not None:
        out["ProjectVersion"] = arn
    return out


def _lines(rows: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()


def _line(sample: Sample) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(sample.line)
    return parsed


class OutputWriter:
    """Writes a training's files; raises TrainingFailure when the output is not writable."""

    def __init__(self, objects: ObjectStore, model_version: str) -> None:
        self._objects = objects
        self._model_version = model_version

    def _put(self, version: Version, name: str, data: bytes) -> ObjectRef:
        output = version.output
        ref = ObjectRef(output.bucket, output.key(version.ref.project, version.ref.name, name))
        try:
            self._objects.put_bytes(ref, data)
        except OutputNotWritable as error:
            msg = f"The output {ref.shown} cannot be written: {error}"
            raise TrainingFailure(msg) from error
        return ref

    def _common(self, version: Version, gathered: Gathered, train_rows: list[dict[str, Any]],
                test_rows: list[dict[str, Any]], unreadable: list[dict[str, Any]]
                ) -> TrainingOutcome:
        errors = gathered.errors + unreadable
        summary = {"version": "1.0", "statistics": {
            "total-json-lines": gathered.lines,
            "valid-json-lines": gathered.lines - len(gathered.errors),
            "invalid-json-lines": len(gathered.errors),
            "unreadable-images": len(unreadable)}, "errors": errors}
        train_out = self._put(version, "train/output.manifest", _lines(train_rows))
        test_out = self._put(version, "test/output.manifest", _lines(test_rows))
        asked_train, asked = version.training or TrainingInput(), version.testing or TrainingInput()
        # Input echoes the request (its Assets always, [] for none; the test side's
        # AutoCreate too); Output says whether a test set was split off.
        training = DataResult(TrainingInput(asked_train.manifests),
                              TrainingInput((train_out,)))
        testing = DataResult(TrainingInput(asked.manifests, asked.auto),
                             TrainingInput((test_out,), gathered.auto_split))
        return TrainingOutcome(self._put(version, "manifest-summary.json",
                                         json.dumps(summary).encode()), training, testing)

    def adapter(self, version: Version, details: Details, threshold: float,
                scores: list[LabelScores], p: Predictions, f1: float) -> TrainingOutcome:
        """An adapter's files; the outcome that points at them (``f1``: its F1Score)."""
        arn = details.version_arn
        test_rows = [{**_line(s), "detect-moderation-labels": _labels(p.adapter, i,
                                                                     self._model_version, arn),
                      "detect-moderation-labels-base-model": _labels(
                          p.base, i, self._model_version, None)}
                     for i, s in enumerate(p.test)]
        out = self._common(version, p.gathered, [_line(s) for s in p.train], test_rows,
                           p.unreadable)
        summary = adapter_summary(scores, threshold, details)
        written = self._put(version, "evaluation-summary.json", json.dumps(summary).encode())
        # BaseModelVersion: what it was trained on, not the pack a later read finds.
        return replace(out, evaluation=Evaluation(f1, written), base_model=self._model_version)

    def classifier(self, version: Version, details: Details, truth: list[str],
                   predicted: list[str], confidences: np.ndarray, classes: list[str],
                   thresholds: list[float], gathered: Gathered,
                   unreadable: list[dict[str, Any]]) -> TrainingOutcome:
        """A Custom Labels model's files; the outcome that points at them."""
        out = self._common(version, gathered, [_line(s) for s in gathered.train],
                           [_line(s) for s in gathered.test], unreadable)
        summary = custom_labels_summary(truth, predicted, confidences, classes, thresholds,
                                        details)
        name = f"EvaluationSummary-{version.ref.project}-{version.ref.name}.json"
        f1 = float(summary["AggregatedEvaluationResults"]["F1Score"])
        written = self._put(version, name, json.dumps(summary).encode())
        return replace(out, evaluation=Evaluation(f1, written))


COPY_MAX_BYTES = 256 << 20  # one output file a copy reads whole (the test manifest is largest)


@dataclass(frozen=True)
class CopyTarget:
    """Where a CopyProjectVersion's files go: its OutputConfig, project and version name."""

    output: OutputTarget
    project: str
    name: str


def copy_outputs(objects: ObjectStore, source: Version, target: CopyTarget
                 ) -> TrainingOutcome:
    """The source's outcome with each file its training wrote copied to the target's output.

    A file keeps its name below ``{prefix}{project}/{version}/`` (a Custom Labels
    evaluation summary is renamed for the target, as its training would name it); a file
    elsewhere, and the ``Input`` manifests the request named, are not the training's and
    stay as they are (:meth:`TrainingOutcome.relocated`). The record of the source's
    training starts is not copied. Raises AccessDeniedException (a bucket not read or
    written here) or InvalidParameterException (a source file gone or too large).
    """
    base = source.output.key(source.ref.project, source.ref.name)
    into = target.output.key(target.project, target.name)
    renames = {f"EvaluationSummary-{source.ref.project}-{source.ref.name}.json":
               f"EvaluationSummary-{target.project}-{target.name}.json"}

    def copied(ref: ObjectRef) -> ObjectRef:
        if not ref.name.startswith(base):
            return ref
        relative = ref.name[len(base):]
        to = ObjectRef(target.output.bucket, into + renames.get(relative, relative))
        _put(objects, to, _read(objects, ref))
        return to

    return source.trained_result().relocated(copied)


def _read(objects: ObjectStore, ref: ObjectRef) -> bytes:
    if not objects.readable(ref.bucket):
        msg = (f"The source version's output {ref.shown} is in a bucket this server does not "
               "read (objects.buckets): its files cannot be copied")
        raise AccessDeniedException(msg)
    try:
        data = objects.read(ref, COPY_MAX_BYTES)
    except StreamprocError as error:
        msg = f"The source version's output {ref.shown} cannot be read: {error.message}"
        raise InvalidParameterException(msg) from error
    if data is None:
        msg = f"The source version's output {ref.shown} holds more than {COPY_MAX_BYTES} bytes"
        raise InvalidParameterException(msg)
    return data


def _put(objects: ObjectStore, ref: ObjectRef, data: bytes) -> None:
    try:
        objects.put_bytes(ref, data)
    except OutputNotWritable as error:
        raise AccessDeniedException(f"OutputConfig: {error.message}") from error
