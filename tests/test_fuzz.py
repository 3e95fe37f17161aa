"""Hostile bodies and headers for every operation: never a 500, always a modelled error."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from conftest import make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.api.collection_handlers import HANDLERS
from streamproc.api.processor_handlers import PROCESSOR_HANDLERS
from streamproc.api.project_handlers import PROJECT_HANDLERS
from streamproc.api.user_handlers import USER_HANDLERS
from streamproc.daemon import Daemon

OPERATIONS = sorted({**HANDLERS, **PROCESSOR_HANDLERS, **USER_HANDLERS, **PROJECT_HANDLERS})
MODEL = botocore.session.get_session().get_service_model("rekognition")
# Modelled errors, plus the two unmodelled 400s every AWS JSON service sends.
ALLOWED = {s.name for s in MODEL.error_shapes} | {"SerializationException",
                                                  "UnknownOperationException"}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
                    st.just("x" * 5000), st.just(base64.b64encode(b"\xff\xd8\xff" * 50).decode()))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=20), inner, max_size=5)),
    max_leaves=20)


def member_bodies(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects using the operation's own member names with arbitrary values."""
    shape = MODEL.operation_model(operation).input_shape
    names = list(shape.members) if shape is not None else ["X"]
    return st.dictionaries(st.sampled_from(names), json_values, max_size=len(names))


# JSON nested past any shape's depth, at the top or under one of the operation's members.
nested = st.integers(1, 3000).flatmap(lambda n: st.sampled_from(
    [b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n]))
bodies = st.sampled_from(OPERATIONS).flatmap(lambda op: st.tuples(st.just(op), st.one_of(
    member_bodies(op).map(lambda b: json.dumps(b, allow_nan=True).encode()),
    json_values.map(lambda b: json.dumps(b, allow_nan=True).encode()),
    nested,
    st.binary(max_size=300))))
targets = st.one_of(st.sampled_from(OPERATIONS).map(lambda op: f"RekognitionService.{op}"),
                    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126),
                            max_size=60))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(make_config(tmp_path_factory.mktemp("fuzz"), **{
        "kafka.bootstrap": "127.0.0.1:9"}))
    d.start()
    yield d
    d.stop()


def post(daemon: Daemon, target: str, body: bytes, content_type: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", "/", body=body, headers={"X-Amz-Target": target,
                                                  "Content-Type": content_type})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data)


def check(status: int, body: Any) -> None:
    assert status in (200, 400), (status, body)
    if status == 400:
        assert body["__type"] in ALLOWED, body
        assert body["Code"] == body["__type"] and len(body["Logref"]) == 36, body
        assert "Traceback" not in body["Message"]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=bodies, content_type=st.sampled_from(
    ["application/x-amz-json-1.1", "text/plain", "", "application/json; charset=\x01"]))
def test_every_operation_survives_hostile_bodies(fuzzed: Daemon, case: tuple[str, bytes],
                                                 content_type: str) -> None:
    operation, body = case
    check(*post(fuzzed, f"RekognitionService.{operation}", body, content_type))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=targets, body=st.binary(max_size=64))
def test_hostile_targets(fuzzed: Daemon, target: str, body: bytes) -> None:
    check(*post(fuzzed, target, body, "application/x-amz-json-1.1"))


def _call(daemon: Daemon, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post(daemon, f"RekognitionService.{operation}", json.dumps(body).encode(),
                          "application/x-amz-json-1.1")
    assert status == 200, answer
    found: dict[str, Any] = answer
    return found


@pytest.fixture(scope="module")
def fuzzed_dataset(fuzzed: Daemon) -> str:
    """An empty TRAIN dataset on the fuzzed daemon, for UpdateDatasetEntries to hit."""
    project = _call(fuzzed, "CreateProject", {"ProjectName": "fuzzed"})["ProjectArn"]
    return str(_call(fuzzed, "CreateDataset", {"ProjectArn": project,
                                               "DatasetType": "TRAIN"})["DatasetArn"])


manifest_lines = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    st.fixed_dictionaries({"source-ref": st.one_of(st.text(max_size=40), st.just(
        "s3://bucket/key.jpg"))}, optional={"cls": json_values, "cls-metadata": json_values,
                                            "content-moderation-groundtruth": json_values}
    ).map(json.dumps),
    st.text(max_size=80))
ground_truth = st.one_of(st.binary(max_size=400), st.lists(manifest_lines, max_size=8).map(
    lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(blob=ground_truth)
def test_hostile_dataset_changes_are_kept_as_entries_or_refused(
        fuzzed: Daemon, fuzzed_dataset: str, blob: bytes) -> None:
    """Any GroundTruth blob: a modelled error, or entries that each read back as JSON."""
    status, body = post(fuzzed, "RekognitionService.UpdateDatasetEntries", json.dumps({
        "DatasetArn": fuzzed_dataset, "Changes": {"GroundTruth": base64.b64encode(blob).decode()},
    }).encode(), "application/x-amz-json-1.1")
    check(status, body)
    listed = _call(fuzzed, "ListDatasetEntries", {"DatasetArn": fuzzed_dataset,
                                                  "MaxResults": 100})
    for line in listed["DatasetEntries"]:
        assert isinstance(json.loads(line), dict) and len(line) <= 100_000


def test_daemon_still_healthy_after_fuzzing(fuzzed: Daemon) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fuzzed.port, timeout=10)
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    assert fuzzed.registry.get_sample_value(
        "streamproc_api_requests_total",
        {"operation": "ListCollections", "code": "InternalServerError"}) is None
