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
so the copy's result points at its files, not its source's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    OutputNotWritable,
    StreamprocError,
)
from streamproc.moderation import taxonomy
from streamproc.projects.version_spec import OutputTarget, TrainingInput
from streamproc.projects.versions import BASE_MODEL, Version
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

    def _put(self, version: Version, name: str, data: bytes) -> dict[str, Any]:
        output = version.output
        ref = ObjectRef(output.bucket, output.key(version.ref.project, version.ref.name, name))
        try:
            self._objects.put_bytes(ref, data)
        except OutputNotWritable as error:
            msg = f"The output {ref.shown} cannot be written: {error}"
            raise TrainingFailure(msg) from error
        return {"S3Object": {"Bucket": ref.bucket, "Name": ref.name}}

    def _common(self, version: Version, gathered: Gathered, train_rows: list[dict[str, Any]],
                test_rows: list[dict[str, Any]], unreadable: list[dict[str, Any]]
                ) -> dict[str, Any]:
        errors = gathered.errors + unreadable
        summary = {"version": "1.0", "statistics": {
            "total-json-lines": gathered.lines,
            "valid-json-lines": gathered.lines - len(gathered.errors),
            "invalid-json-lines": len(gathered.errors),
            "unreadable-images": len(unreadable)}, "errors": errors}
        train_out = self._put(version, "train/output.manifest", _lines(train_rows))
        test_out = self._put(version, "test/output.manifest", _lines(test_rows))
        asked_train, asked = version.training or TrainingInput(), version.testing or TrainingInput()
        training = {"Assets": asked_train.stored_assets()}
        # Input echoes the request; Output says whether a test set was split off.
        testing = {"Assets": asked.stored_assets(), "AutoCreate": asked.auto}
        return {"ManifestSummary": self._put(version, "manifest-summary.json",
                                             json.dumps(summary).encode()),
                "TrainingDataResult": {"Input": training, "Output": {"Assets": [
                    {"GroundTruthManifest": train_out}]}},
                "TestingDataResult": {"Input": testing, "Output": {
                    "Assets": [{"GroundTruthManifest": test_out}],
                    "AutoCreate": gathered.auto_split}}}

    def adapter(self, version: Version, details: Details, threshold: float,
                scores: list[LabelScores], p: Predictions) -> dict[str, Any]:
        """An adapter's files; the result fields that point at them."""
        arn = details.version_arn
        test_rows = [{**_line(s), "detect-moderation-labels": _labels(p.adapter, i,
                                                                     self._model_version, arn),
                      "detect-moderation-labels-base-model": _labels(
                          p.base, i, self._model_version, None)}
                     for i, s in enumerate(p.test)]
        out = self._common(version, p.gathered, [_line(s) for s in p.train], test_rows,
                           p.unreadable)
        summary = adapter_summary(scores, threshold, details)
        out["EvaluationResult"] = {"Summary": self._put(version, "evaluation-summary.json",
                                                        json.dumps(summary).encode())}
        out[BASE_MODEL] = self._model_version  # what it was trained on, not today's pack
        return out

    def classifier(self, version: Version, details: Details, truth: list[str],
                   predicted: list[str], confidences: np.ndarray, classes: list[str],
                   thresholds: list[float], gathered: Gathered,
                   unreadable: list[dict[str, Any]]) -> dict[str, Any]:
        """A Custom Labels model's files; the result fields that point at them."""
        out = self._common(version, gathered, [_line(s) for s in gathered.train],
                           [_line(s) for s in gathered.test], unreadable)
        summary = custom_labels_summary(truth, predicted, confidences, classes, thresholds,
                                        details)
        name = f"EvaluationSummary-{version.ref.project}-{version.ref.name}.json"
        out["EvaluationResult"] = {
            "F1Score": float(summary["AggregatedEvaluationResults"]["F1Score"]),
            "Summary": self._put(version, name, json.dumps(summary).encode())}
        return out


COPY_MAX_BYTES = 256 << 20  # one output file a copy reads whole (the test manifest is largest)


@dataclass(frozen=True)
class CopyTarget:
    """Where a CopyProjectVersion's files go: its OutputConfig, project and version name."""

    output: OutputTarget
    project: str
    name: str


def copy_outputs(objects: ObjectStore, source: Version, target: CopyTarget
                 ) -> dict[str, Any]:
    """The source's result with each file its training wrote copied to the target's output.

    A file keeps its name below ``{prefix}{project}/{version}/`` (a Custom Labels
    evaluation summary is renamed for the target, as its training would name it); the
    ``Input`` manifests the request named are not the training's and stay as they are.
    Raises AccessDeniedException (a bucket not read or written here) or
    InvalidParameterException (a source file gone or too large).
    """
    base = source.output.key(source.ref.project, source.ref.name)
    into = target.output.key(target.project, target.name)
    renames = {f"EvaluationSummary-{source.ref.project}-{source.ref.name}.json":
               f"EvaluationSummary-{target.project}-{target.name}.json"}

    def copied(obj: dict[str, Any]) -> dict[str, Any]:
        name = str(obj["Name"])
        if not name.startswith(base):
            return obj
        relative = name[len(base):]
        ref = ObjectRef(target.output.bucket, into + renames.get(relative, relative))
        _put(objects, ref, _read(objects, ObjectRef(str(obj["Bucket"]), name)))
        return {"Bucket": ref.bucket, "Name": ref.name}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if k == "Input" else copied(v) if k == "S3Object" else walk(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return {k: walk(v) for k, v in source.trained_result().items()}


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
