"""A version's result as typed values (projects/version_result.py) against its stored JSON.

The literals below are what the code before these types wrote (versions_outputs.py's
``_common``, ``adapter`` and ``classifier``, the trainer's timing, the copy's source ARN and
``Version.attempted``'s ``_training``), key order included: a stored row and a logged
SetVersionStatus keep their bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamproc.projects.version_result import (
    DataResult,
    Evaluation,
    ResultError,
    TrainingOutcome,
    TrainingRecord,
)
from streamproc.projects.version_spec import TrainingInput
from streamproc.projects.versions import VersionRef, VersionStatus
from streamproc.projects.versions_commands import SetVersionStatus
from streamproc.storage.object_keys import ObjectRef


def _at(name: str) -> dict[str, Any]:
    return {"S3Object": {"Bucket": "out", "Name": f"pre/p/v1/{name}"}}


def _manifest(name: str) -> dict[str, Any]:
    return {"GroundTruthManifest": _at(name)}


ASKED = {"GroundTruthManifest": {"S3Object": {"Bucket": "in", "Name": "train.manifest",
                                              "Version": "3"}}}
# A Custom Labels training's end (EvaluationResult: F1Score, then Summary).
CLASSIFIER: dict[str, Any] = {
    "ManifestSummary": _at("manifest-summary.json"),
    "TrainingDataResult": {"Input": {"Assets": [ASKED]},
                           "Output": {"Assets": [_manifest("train/output.manifest")]}},
    "TestingDataResult": {"Input": {"Assets": [], "AutoCreate": True},
                          "Output": {"Assets": [_manifest("test/output.manifest")],
                                     "AutoCreate": True}},
    "EvaluationResult": {"F1Score": 0.75, "Summary": _at("EvaluationSummary-p-v1.json")},
    "AssumedThresholds": {"dog": 41.5, "cat": 60},
    "BillableTrainingTimeInSeconds": 12,
    "TrainingEndTimestamp": 1718001060.25}
ADAPTER: dict[str, Any] = {
    "ManifestSummary": _at("manifest-summary.json"),
    "TrainingDataResult": {"Input": {"Assets": [ASKED]},
                           "Output": {"Assets": [_manifest("train/output.manifest")]}},
    "TestingDataResult": {"Input": {"Assets": [], "AutoCreate": False},
                          "Output": {"Assets": [_manifest("test/output.manifest")],
                                     "AutoCreate": False}},
    "EvaluationResult": {"F1Score": 1, "Summary": _at("evaluation-summary.json")},
    "BaseModelVersion": "7.0",
    "BillableTrainingTimeInSeconds": 1,
    "TrainingEndTimestamp": 100,
    "_training": {"attempts": 2, "stale_ms": 2100000}}


def _bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize("stored", [CLASSIFIER, ADAPTER], ids=["classifier", "adapter"])
def test_a_stored_result_round_trips_byte_for_byte(stored: dict[str, Any]) -> None:
    outcome = TrainingOutcome.parse(stored)
    assert _bytes(outcome.payload()) == _bytes(stored)
    assert TrainingOutcome.parse(outcome.payload()) == outcome


def test_every_field_of_a_classifier_result_is_typed() -> None:
    outcome = TrainingOutcome.parse(CLASSIFIER)
    out = "pre/p/v1/"
    assert outcome == TrainingOutcome(
        manifest_summary=ObjectRef("out", out + "manifest-summary.json"),
        training_data=DataResult(TrainingInput((ObjectRef("in", "train.manifest", "3"),)),
                                 TrainingInput((ObjectRef("out", out + "train/output.manifest"),
                                                ))),
        testing_data=DataResult(TrainingInput((), True), TrainingInput(
            (ObjectRef("out", out + "test/output.manifest"),), True)),
        evaluation=Evaluation(0.75, ObjectRef("out", out + "EvaluationSummary-p-v1.json")),
        assumed_thresholds=(("dog", 41.5), ("cat", 60)),
        billable_s=12, ended_at=1718001060.25)
    assert outcome.thresholds == {"dog": 41.5, "cat": 60}
    assert outcome.attempt is None and outcome.attempts == 0 and outcome.base_model is None


def test_an_adapter_result_keeps_its_base_model_and_its_starts() -> None:
    outcome = TrainingOutcome.parse(ADAPTER)
    assert outcome.base_model == "7.0" and outcome.thresholds is None
    assert outcome.attempt == TrainingRecord(2, 2100000) and outcome.attempts == 2
    assert outcome.evaluation is not None and outcome.evaluation.f1 == 1
    assert isinstance(outcome.evaluation.f1, int)  # kept as stored: the bytes stay "1"
    assert outcome.trained().attempt is None
    assert "_training" not in outcome.trained().payload()


def test_the_adapters_older_evaluation_order_keeps_its_keys_and_values() -> None:
    """Adapters wrote Summary before F1Score; a re-written record orders them F1Score first."""
    older = {"EvaluationResult": {"Summary": _at("evaluation-summary.json"), "F1Score": 0.5}}
    again = TrainingOutcome.parse(older).payload()
    assert again == older and list(again["EvaluationResult"]) == ["F1Score", "Summary"]


@pytest.mark.parametrize("stored", [
    {}, {"BillableTrainingTimeInSeconds": 3, "TrainingEndTimestamp": 9.5},
    {"EvaluationResult": {"F1Score": 0.9}}, {"EvaluationResult": {}},
    {"TrainingDataResult": {"Input": {}}}, {"_training": {"attempts": 1}},
], ids=["empty", "failed", "f1-only", "empty-evaluation", "input-only", "no-window"])
def test_a_result_missing_parts_parses_and_writes_back_what_it_had(
        stored: dict[str, Any]) -> None:
    outcome = TrainingOutcome.parse(stored)
    assert outcome.payload() == stored


def test_missing_parts_are_none() -> None:
    failed = TrainingOutcome.parse({"BillableTrainingTimeInSeconds": 3,
                                    "TrainingEndTimestamp": 9.5})
    assert (failed.billable_s, failed.ended_at) == (3, 9.5)
    assert failed.evaluation is failed.manifest_summary is failed.training_data is None
    assert failed.thresholds is None and failed.attempt is None and failed.other == ()
    assert TrainingOutcome.parse({"_training": {"attempts": 1}}).attempt == TrainingRecord(1)
    assert TrainingOutcome.parse({"_training": {}}).attempts == 0


def test_a_key_not_modelled_is_kept_after_the_known_ones() -> None:
    stored = {"Zeta": {"S3Object": {"Bucket": "out", "Name": "pre/p/v1/z"}},
              "BillableTrainingTimeInSeconds": 2}
    outcome = TrainingOutcome.parse(stored)
    assert outcome.other == (("Zeta", stored["Zeta"]),)
    assert list(outcome.payload()) == ["BillableTrainingTimeInSeconds", "Zeta"]
    assert outcome.payload() == stored


@pytest.mark.parametrize("stored", [
    {"ManifestSummary": {"S3Object": {"Bucket": "out"}}},
    {"ManifestSummary": "s3://out/x"},
    {"EvaluationResult": {"F1Score": "high"}},
    {"EvaluationResult": {"F1Score": True}},
    {"TrainingDataResult": {"Output": {"Assets": [{"GroundTruthManifest": {}}]}}},
    {"TrainingDataResult": ["not", "an", "object"]},
    {"AssumedThresholds": {"dog": "low"}},
    {"TrainingEndTimestamp": "noon"},
], ids=["no-name", "not-an-object", "f1-text", "f1-bool", "asset", "data-list", "cut",
        "end"])
def test_a_part_that_does_not_fit_is_refused(stored: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        TrainingOutcome.parse(stored)


def test_a_pointer_without_bucket_and_name_is_a_result_error() -> None:
    with pytest.raises(ResultError, match="Bucket and Name"):
        TrainingOutcome.parse({"ManifestSummary": {}})


def test_relocation_renames_every_file_pointer_and_nothing_else() -> None:
    stored = {**CLASSIFIER, "TrainingDataResult": {
        **CLASSIFIER["TrainingDataResult"],
        "Validation": {"Assets": [_manifest("validation/output.manifest")]}},
        "SourceProjectVersionArn": "arn:aws:rekognition:x:1:project/q/version/v/1",
        "_training": {"attempts": 1, "stale_ms": 5}, "Other": _at("other")}
    seen: list[ObjectRef] = []

    def rename(ref: ObjectRef) -> ObjectRef:
        seen.append(ref)
        return ObjectRef("copy", "moved/" + ref.name.rsplit("/", 1)[-1])

    moved = TrainingOutcome.parse(stored).relocated(rename).payload()
    renamed = {"manifest-summary.json", "output.manifest", "EvaluationSummary-p-v1.json"}
    assert {ref.name.rsplit("/", 1)[-1] for ref in seen} == renamed
    assert len(seen) == 5  # summary, evaluation, train and test output, validation

    def new(name: str) -> dict[str, Any]:
        return {"S3Object": {"Bucket": "copy", "Name": "moved/" + name}}

    expected = json.loads(json.dumps(stored))
    expected["ManifestSummary"] = new("manifest-summary.json")
    expected["EvaluationResult"]["Summary"] = new("EvaluationSummary-p-v1.json")
    for side in ("TrainingDataResult", "TestingDataResult"):
        expected[side]["Output"]["Assets"] = [{"GroundTruthManifest": new("output.manifest")}]
    expected["TrainingDataResult"]["Validation"]["Assets"] = [
        {"GroundTruthManifest": new("output.manifest")}]
    assert moved == expected  # Input, thresholds, timing, ARN, starts, other: unchanged


def test_relocation_of_a_result_without_files_calls_nothing() -> None:
    def rename(ref: ObjectRef) -> ObjectRef:
        raise AssertionError(ref)

    timing = TrainingOutcome(billable_s=1, ended_at=2.0)
    assert timing.relocated(rename) == timing
    asked_only = TrainingOutcome(training_data=DataResult(TrainingInput((ObjectRef("in", "m"),
                                                                         ))))
    assert asked_only.relocated(rename) == asked_only  # an Input is never relocated


def test_merging_takes_the_newer_parts_a_part_at_a_time() -> None:
    held = TrainingOutcome.parse({"_training": {"attempts": 1, "stale_ms": 7}, "Old": 1,
                                  "EvaluationResult": {"F1Score": 0.1, "Summary": _at("a")}})
    newer = TrainingOutcome(evaluation=Evaluation(0.9), billable_s=4,
                            other=(("Old", 2), ("New", 3)))
    merged = held.merged(newer).payload()
    assert merged == {"EvaluationResult": {"F1Score": 0.9}, "BillableTrainingTimeInSeconds": 4,
                      "_training": {"attempts": 1, "stale_ms": 7}, "Old": 2, "New": 3}
    assert held.merged(None) is held


def test_set_version_status_carries_the_typed_value_and_writes_the_same_payload() -> None:
    ref = VersionRef("p", "v1", 1)
    typed = SetVersionStatus(ref, VersionStatus.TRAINING_COMPLETED, "ok", 2,
                             TrainingOutcome.parse(CLASSIFIER), b"m")
    stored = SetVersionStatus(ref, VersionStatus.TRAINING_COMPLETED, "ok", 2, CLASSIFIER, b"m")
    assert isinstance(stored.result, TrainingOutcome) and stored == typed
    assert _bytes(typed.payload()["result"]) == _bytes(CLASSIFIER)
    assert SetVersionStatus.from_payload(typed.payload()) == typed
    plain = SetVersionStatus(ref, VersionStatus.STOPPED, "stopped", 3)
    assert plain.payload()["result"] is None and SetVersionStatus.from_payload(
        plain.payload()) == plain
    with pytest.raises(ValueError, match="not an object"):
        SetVersionStatus.from_payload({**typed.payload(), "result": [1]})
