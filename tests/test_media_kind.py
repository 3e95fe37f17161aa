"""The media-analysis kind and wire without models: request, stored form, codec, Get, List.

A real JobStore, rules and local ledger under the real JobService and handlers, as the
daemon binds them; launches are not run (the manifest runner's tests run them).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator
from prometheus_client import CollectorRegistry

from streamproc.api.context import RequestContext, Response
from streamproc.api.job_handlers import job_handlers
from streamproc.api.job_kinds.faces import FaceDetectionWire
from streamproc.api.job_kinds.media import MediaAnalysisWire
from streamproc.api.validate import ServiceSpec
from streamproc.config import load_config
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.stored.manifest import (
    LineError,
    ManifestOutcome,
    ManifestTask,
    failure,
    parse_line,
)
from streamproc.errors import (
    IdempotentParameterMismatchException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    ResourceNotFoundException,
    ResourceNotReadyException,
    StreamprocError,
)
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.kinds.faces import FaceDetectionJobKind
from streamproc.jobs.kinds.media import (
    VERSION_ID_KEY,
    AdapterCheck,
    MediaAnalysisJobKind,
    MediaAnalysisRequest,
    failure_details,
)
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.rules import JobRules
from streamproc.jobs.service import JobService
from streamproc.ledger import Appliers, LocalLedger
from streamproc.metrics import JobMetrics, NoticeSensor
from streamproc.rekognition.constants import Arns
from streamproc.rekognition.tokens import encode_token
from streamproc.storage.db import Database
from streamproc.storage.jobs import FAILED, SUCCEEDED, JobStore
from streamproc.storage.object_lines import ManifestLine
from streamproc.storage.objects import ObjectRef, ObjectStore

# A us-east-1 client's: Start resolves a ProjectVersion ARN with its Arns.
_CTX = RequestContext(Arns("us-east-1", "123456789012"))


class _Publisher:
    def submit(self, *args: Any) -> None:
        raise AssertionError("a media-analysis job sends no notice here")


class Api:
    """The jobs' control plane with the media-analysis kind, as the daemon binds it."""

    def __init__(self, root: Path, adapters: AdapterCheck | None = None) -> None:
        (root / "objects").mkdir()  # no manifest: Start must not look for it
        self.db = Database(root / "streamproc.db")
        self.db.open()
        config = load_config(None, {"objects.local_root": str(root / "objects"),
                                    "kafka.bootstrap": "k:9092", "jobs.max_jobs": 1000})
        metrics = JobMetrics.create(CollectorRegistry())
        notices = Notices(_Publisher(), "k:9092", {}, NoticeSensor(metrics),
                          OutputAllowlist.for_config(config))
        self.store = JobStore(self.db)
        appliers = Appliers()
        JobRules(self.store, JobMailbox().changed).register(appliers)
        self.kind = MediaAnalysisJobKind("7.0-test", adapters)
        kinds = JobKinds([FaceDetectionJobKind(), self.kind])
        self.service = JobService(self.store, ObjectStore(config.objects), kinds, notices,
                                  config.jobs, LocalLedger(appliers), metrics)
        table = job_handlers([FaceDetectionWire(), MediaAnalysisWire()])
        self.handlers = {op: functools.partial(fn, self.service, ctx=_CTX)
                         for op, fn in table.items()}
        self.spec = ServiceSpec()

    def call(self, operation: str, **params: Any) -> Response:
        """Validated as the transport validates, then handled; the answer fits the model."""
        out = self.handlers[operation](self.spec.validate(operation, params))
        shape = self.spec.model.operation_model(operation).output_shape
        report = ParamValidator().validate(out, shape)  # types, enums, required, no extras
        assert not report.has_errors(), report.generate_report()
        return out


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    made = Api(tmp_path)
    yield made
    made.db.close()


def _start(api: Api, **extra: Any) -> str:
    params: dict[str, Any] = {
        "OperationsConfig": {"DetectModerationLabels": {}},
        "Input": {"S3Object": {"Bucket": "in-bucket", "Name": "m/manifest.jsonl"}},
        "OutputConfig": {"S3Bucket": "out-bucket"}, **extra}
    return str(api.call("StartMediaAnalysisJob", **params)["JobId"])


# ---- failure codec ----------------------------------------------------------------------
@pytest.mark.parametrize(("message", "code", "text"), [
    (failure("INVALID_S3_OBJECT", "in/m.jsonl does not exist"), "INVALID_S3_OBJECT",
     "in/m.jsonl does not exist"),
    (failure("INVALID_OUTPUT_CONFIG", "a: b"), "INVALID_OUTPUT_CONFIG", "a: b"),
    ("The analyzer stopped: boom", "INTERNAL_ERROR", "The analyzer stopped: boom"),
    ("NOT_A_CODE: x", "INTERNAL_ERROR", "NOT_A_CODE: x"),
    ("", "INTERNAL_ERROR", ""),
])
def test_failure_details_read_the_code_back_or_keep_the_whole_message(
        message: str, code: str, text: str) -> None:
    details = failure_details(message)
    assert (details.code, details.message) == (code, text)


# ---- request and stored form ------------------------------------------------------------
def test_the_stored_form_fills_in_min_confidence_and_reads_back_whole() -> None:
    bare = MediaAnalysisRequest(ObjectRef("in-bucket", "m.jsonl"), output_bucket="out")
    assert bare.stored() == {
        "Input": {"S3Object": {"Bucket": "in-bucket", "Name": "m.jsonl"}},
        "OperationsConfig": {"DetectModerationLabels": {"MinConfidence": 50.0}},
        "OutputConfig": {"S3Bucket": "out"}}
    full = MediaAnalysisRequest(ObjectRef("in-bucket", "m.jsonl", "v1"), output_bucket="out",
                                output_prefix="p/", job_name="nightly", min_confidence=80,
                                project_version="arn:x", kms_key_id="k")
    stored = json.loads(json.dumps(full.stored()))  # as the jobs table keeps it
    assert MediaAnalysisRequest.from_stored(stored) == full
    assert MediaAnalysisRequest.from_stored(bare.stored()) == bare
    assert "Video" not in stored  # a manifest is not a video


def test_the_kind_plans_a_launch_with_its_threshold_output_and_model_version() -> None:
    kind = MediaAnalysisJobKind("7.0-test")
    request = MediaAnalysisRequest(ObjectRef("in-bucket", "m.jsonl"), output_bucket="out",
                                   output_prefix="p", min_confidence=61.5)
    assert kind.results(request) == ManifestTask(61.5, "out", "p", "7.0-test")


def test_start_checks_no_object_and_stores_the_request(api: Api) -> None:
    job_id = _start(api, JobName="nightly",
                    OutputConfig={"S3Bucket": "out-bucket", "S3KeyPrefix": "res/"})
    stored = api.store.get(job_id)
    assert stored is not None and stored.api == "MediaAnalysis"
    assert stored.request["JobName"] == "nightly"
    assert stored.request["OutputConfig"] == {"S3Bucket": "out-bucket", "S3KeyPrefix": "res/"}
    assert stored.request["OperationsConfig"] == {
        "DetectModerationLabels": {"MinConfidence": 50.0}}


def test_a_token_names_one_request_with_defaults_filled_in(api: Api) -> None:
    first = _start(api, ClientRequestToken="tok-1")
    same = _start(api, ClientRequestToken="tok-1",
                  OperationsConfig={"DetectModerationLabels": {"MinConfidence": 50}})
    assert same == first
    for other in ({"JobName": "renamed"},
                  {"OperationsConfig": {"DetectModerationLabels": {"MinConfidence": 60}}},
                  {"OutputConfig": {"S3Bucket": "out-bucket", "S3KeyPrefix": "x/"}},
                  {"OutputConfig": {"S3Bucket": "other-bucket"}},
                  {"Input": {"S3Object": {"Bucket": "in-bucket", "Name": "other.jsonl"}}}):
        with pytest.raises(IdempotentParameterMismatchException):
            _start(api, ClientRequestToken="tok-1", **other)
    assert _start(api, ClientRequestToken="tok-2") != first
    assert len(api.store.newest("MediaAnalysis", None, 10)) == 2


@pytest.mark.parametrize(("extra", "error"), [
    ({"OperationsConfig": {"DetectModerationLabels": {
        "ProjectVersion": "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"}}},
     ResourceNotFoundException),
    ({"KmsKeyId": "alias/mine"}, InvalidParameterException),
    ({"OperationsConfig": {"DetectModerationLabels": {"MinConfidence": 101}}},
     InvalidParameterException),
    ({"OutputConfig": {"S3Bucket": "out-bucket", "S3KeyPrefix": "../escape/"}},
     InvalidParameterException),
    ({"OutputConfig": {"S3Bucket": "out-bucket", "S3KeyPrefix": "a//b"}},
     InvalidParameterException),
])
def test_start_refuses_an_adapter_a_kms_key_and_a_bad_threshold(
        api: Api, extra: dict[str, Any], error: type[StreamprocError]) -> None:
    with pytest.raises(error):
        _start(api, **extra)
    assert api.store.newest("MediaAnalysis", None, 10) == []


# ---- ProjectVersion (an adapter) --------------------------------------------------------
VERSIONS = "arn:aws:rekognition:us-east-1:123456789012:project/p/version"
READY, TRAINING = f"{VERSIONS}/ready/1", f"{VERSIONS}/training/2"


class Adapters:
    """An AdapterCheck over two versions: one serves, one is still training."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.ids: list[str | None] = []

    def check(self, version_id: str | None, arn: str) -> None:
        self.checked.append(arn)
        self.ids.append(version_id)
        if arn == TRAINING:
            raise ResourceNotReadyException("The adapter training is still being trained")
        if arn != READY:
            raise ResourceNotFoundException(f"The project version {arn} does not exist")


@pytest.fixture
def tuned(tmp_path: Path) -> Iterator[tuple[Api, Adapters]]:
    adapters = Adapters()
    made = Api(tmp_path, adapters)
    yield made, adapters
    made.db.close()


def _with(arn: str, **moderation: Any) -> dict[str, Any]:
    return {"OperationsConfig": {"DetectModerationLabels": {"ProjectVersion": arn,
                                                            **moderation}}}


def test_a_ready_adapter_is_stored_echoed_by_get_and_planned_for_the_launch(
        tuned: tuple[Api, Adapters]) -> None:
    api, adapters = tuned
    job_id = _start(api, **_with(READY, MinConfidence=70))
    assert adapters.checked == [READY]
    assert adapters.ids == ["p/version/ready/1"]  # resolved with the request's Arns
    got = _get(api, job_id)  # (api.call checks it against botocore's output shape)
    assert got["OperationsConfig"] == {"DetectModerationLabels": {
        "MinConfidence": 70.0, "ProjectVersion": READY}}
    stored = api.store.get(job_id)
    assert stored is not None
    request = MediaAnalysisRequest.from_stored(stored.request)
    assert api.kind.results(request) == ManifestTask(70.0, "out-bucket", "", "7.0-test", READY,
                                                     "p/version/ready/1")


def test_a_repeated_token_with_the_same_adapter_is_the_same_job(
        tuned: tuple[Api, Adapters]) -> None:
    api, _ = tuned
    first = _start(api, ClientRequestToken="tok-a", **_with(READY))
    assert _start(api, ClientRequestToken="tok-a", **_with(READY)) == first
    with pytest.raises(IdempotentParameterMismatchException):
        _start(api, ClientRequestToken="tok-a", **_with(TRAINING))


def test_a_job_stored_before_start_resolved_the_version_plans_its_arn_alone(
        tuned: tuple[Api, Adapters]) -> None:
    """Such a job's ARN was checked in the configured region: the launch resolves it there."""
    api, _ = tuned
    stored = api.store.get(_start(api, **_with(READY)))
    assert stored is not None
    moderation = stored.request["OperationsConfig"]["DetectModerationLabels"]
    assert moderation.pop(VERSION_ID_KEY) == "p/version/ready/1"
    older = MediaAnalysisRequest.from_stored(stored.request)
    assert older.project_version == READY and older.version_id is None
    assert api.kind.results(older).version_id is None
    assert older.stored() == stored.request


@pytest.mark.parametrize(("arn", "error"), [
    (TRAINING, ResourceNotReadyException), (f"{VERSIONS}/gone/3", ResourceNotFoundException)])
def test_an_adapter_that_cannot_serve_is_refused_at_start_and_nothing_is_stored(
        tuned: tuple[Api, Adapters], arn: str, error: type[StreamprocError]) -> None:
    api, _ = tuned
    with pytest.raises(error):
        _start(api, **_with(arn))
    assert api.store.newest("MediaAnalysis", None, 10) == []


def test_the_cheap_checks_come_before_the_adapter_s(tuned: tuple[Api, Adapters]) -> None:
    api, adapters = tuned
    with pytest.raises(InvalidParameterException, match="KmsKeyId"):
        _start(api, KmsKeyId="alias/k", **_with(READY))
    with pytest.raises(InvalidParameterException):
        _start(api, **_with(READY, MinConfidence=101))
    assert adapters.checked == []


# ---- Get --------------------------------------------------------------------------------
def _get(api: Api, job_id: str) -> Response:
    return api.call("GetMediaAnalysisJob", JobId=job_id)


def test_get_answers_a_queued_job_without_results(api: Api) -> None:
    job_id = _start(api, JobName="nightly")
    got = _get(api, job_id)
    assert got["Status"] == "QUEUED" and got["JobName"] == "nightly"
    assert got["OperationsConfig"] == {"DetectModerationLabels": {"MinConfidence": 50.0}}
    assert got["Input"] == {"S3Object": {"Bucket": "in-bucket", "Name": "m/manifest.jsonl"}}
    assert got["OutputConfig"] == {"S3Bucket": "out-bucket"}
    assert isinstance(got["CreationTimestamp"], float)
    for absent in ("CompletionTimestamp", "Results", "ManifestSummary", "FailureDetails",
                   "KmsKeyId"):
        assert absent not in got
    api.store.launch(job_id)
    assert _get(api, job_id)["Status"] == "IN_PROGRESS"


def test_get_names_the_written_objects_once_succeeded(api: Api) -> None:
    job_id = _start(api, OutputConfig={"S3Bucket": "out-bucket", "S3KeyPrefix": "res"})
    attempt = api.store.launch(job_id)
    api.store.set_metadata(job_id, attempt, ManifestOutcome(
        "7.0-test", "out-bucket", f"res/{job_id}/results.jsonl",
        f"res/{job_id}/manifest-summary.json").stored())
    assert "Results" not in _get(api, job_id)  # written, but not SUCCEEDED yet
    api.store.finish(job_id, attempt, SUCCEEDED, "", 1234.5)
    got = _get(api, job_id)
    assert got["Status"] == "SUCCEEDED" and got["CompletionTimestamp"] == 1234.5
    assert got["Results"] == {
        "S3Object": {"Bucket": "out-bucket", "Name": f"res/{job_id}/results.jsonl"},
        "ModelVersions": {"Moderation": "7.0-test"}}
    assert got["ManifestSummary"] == {
        "S3Object": {"Bucket": "out-bucket", "Name": f"res/{job_id}/manifest-summary.json"}}


def test_get_of_a_failed_job_gives_failure_details(api: Api) -> None:
    job_id = _start(api)
    attempt = api.store.launch(job_id)
    api.store.finish(job_id, attempt, FAILED,
                     failure("INVALID_S3_OBJECT", "in-bucket/m/manifest.jsonl is missing"), 9.0)
    got = _get(api, job_id)
    assert got["Status"] == "FAILED" and got["CompletionTimestamp"] == 9.0
    assert got["FailureDetails"] == {"Code": "INVALID_S3_OBJECT",
                                     "Message": "in-bucket/m/manifest.jsonl is missing"}
    assert "Results" not in got


def test_get_of_an_unknown_or_foreign_job_is_resource_not_found(api: Api) -> None:
    with pytest.raises(ResourceNotFoundException):
        _get(api, "0" * 32)
    job_id = _start(api)
    with pytest.raises(ResourceNotFoundException):  # a kind's Get answers only its own
        api.call("GetFaceDetection", JobId=job_id)


# ---- List -------------------------------------------------------------------------------
def _list(api: Api, **params: Any) -> Response:
    return api.call("ListMediaAnalysisJobs", **params)


def test_list_pages_newest_first_and_each_is_get_s_description(api: Api) -> None:
    ids = [_start(api, JobName=f"job-{n}") for n in range(7)]
    seen: list[str] = []
    pages, token = 0, None
    while True:
        page = _list(api, MaxResults=3, **({"NextToken": token} if token else {}))
        assert len(page["MediaAnalysisJobs"]) <= 3
        seen += [j["JobId"] for j in page["MediaAnalysisJobs"]]
        pages += 1
        token = page.get("NextToken")
        if token is None:
            break
    assert pages == 3 and seen == ids[::-1]
    everything = _list(api)["MediaAnalysisJobs"]  # default page: 100
    assert [j["JobId"] for j in everything] == ids[::-1] and "NextToken" not in _list(api)
    assert everything[0] == _get(api, ids[-1])


def test_a_job_started_between_pages_shifts_nothing(api: Api) -> None:
    ids = [_start(api) for _ in range(4)]
    first = _list(api, MaxResults=2)
    _start(api)  # newer: it comes before the first page, not into the second
    second = _list(api, MaxResults=2, NextToken=first["NextToken"])
    assert [j["JobId"] for j in second["MediaAnalysisJobs"]] == [ids[1], ids[0]]
    assert "NextToken" not in second


def test_jobs_created_in_the_same_instant_are_paged_by_job_id(api: Api) -> None:
    for job_id in ("a" * 32, "c" * 32, "b" * 32):
        api.store.insert(job_id, "MediaAnalysis", None, MediaAnalysisRequest(
            ObjectRef("in-bucket", "m.jsonl"), output_bucket="out").stored(), 100.0)
    first = _list(api, MaxResults=2)
    second = _list(api, MaxResults=2, NextToken=first["NextToken"])
    assert [j["JobId"] for j in first["MediaAnalysisJobs"] + second["MediaAnalysisJobs"]] == [
        "c" * 32, "b" * 32, "a" * 32]


def test_list_shows_only_media_analysis_jobs(api: Api) -> None:
    api.store.insert("f" * 32, "FaceDetection", None,
                     {"Video": {"S3Object": {"Bucket": "b1b", "Name": "v.mp4"}}}, 1.0)
    job_id = _start(api)
    assert [j["JobId"] for j in _list(api)["MediaAnalysisJobs"]] == [job_id]


@pytest.mark.parametrize("token", [
    "not-a-token", encode_token("job/x/NONE", 3), encode_token("jobs/FaceDetection", "1.0 a"),
    encode_token("jobs/MediaAnalysis", 5), encode_token("jobs/MediaAnalysis", "nan x"),
    encode_token("jobs/MediaAnalysis", "soon a"), encode_token("jobs/MediaAnalysis", "1.0"),
])
def test_a_bad_or_foreign_token_is_refused(api: Api, token: str) -> None:
    _start(api)
    with pytest.raises(InvalidPaginationTokenException):
        _list(api, NextToken=token)


def test_max_results_outside_botocore_s_range_is_refused(api: Api) -> None:
    for bad in (0, 101):
        with pytest.raises(InvalidParameterException):
            _list(api, MaxResults=bad)


@pytest.mark.parametrize("data", [b"[" * 5000 + b"]" * 5000,
                                  b'{"source-ref": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_a_line_nested_past_the_parser_s_depth_is_an_invalid_json_line(data: bytes) -> None:
    found = parse_line(ManifestLine(7, data), 1 << 20)
    assert isinstance(found, LineError)
    assert (found.number, found.code) == (7, "ERROR_INVALID_JSON_LINE")
