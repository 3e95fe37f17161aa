"""SigV4 verification, TLS, request limits and safe defaults."""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest
from botocore.config import Config as BotoConfig
from conftest import fixture_photo, make_config, retry_resets
from prometheus_client import generate_latest

from streamproc.config import load_config
from streamproc.daemon import Daemon

KEY_ID, SECRET = "AKIDSTREAMPROCTEST01", "s3cr3t/KEY+value"


def client(endpoint: str, key: str = KEY_ID, secret: str = SECRET, **kwargs: Any) -> Any:
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="eu-west-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, **kwargs)))


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(make_config(tmp_path_factory.mktemp("auth"), **{
        "auth.enabled": True, "auth.access_keys": {KEY_ID: SECRET}}))
    d.start()
    yield d
    d.stop()


def test_signed_requests_pass_and_others_are_denied(signed: Daemon) -> None:
    good = client(signed.endpoint)
    good.create_collection(CollectionId="signed")
    assert good.list_collections()["CollectionIds"] == ["signed"]
    assert good.detect_faces(Image={"Bytes": fixture_photo("person_a_1")})["FaceDetails"]
    for bad in (client(signed.endpoint, secret="wrong"), client(signed.endpoint, key="AKIDX"),
                client(signed.endpoint, signature_version=botocore.UNSIGNED)):
        with pytest.raises(bad.exceptions.AccessDeniedException):
            bad.list_collections()


def test_tampered_body_is_denied(signed: Daemon) -> None:
    sent: dict[str, Any] = {}
    good = client(signed.endpoint)

    def capture(request: Any, **_: Any) -> None:
        sent["headers"] = dict(request.headers)

    good.meta.events.register("before-send.rekognition.ListCollections", capture)
    good.list_collections(MaxResults=5)
    headers = {k: v.decode() if isinstance(v, bytes) else v
               for k, v in sent["headers"].items()}
    conn = http.client.HTTPConnection("127.0.0.1", signed.port, timeout=10)
    body = b'{"MaxResults": 6}'
    headers["Content-Length"] = str(len(body))
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    assert resp.status == 400 and b"AccessDeniedException" in resp.read()
    conn.close()


def _captured(rek: Any, operation: str, call: Any) -> dict[str, str]:
    """The headers boto3 signed and sent for one call."""
    sent: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        sent.update({k: v.decode() if isinstance(v, bytes) else v
                     for k, v in request.headers.items()})

    rek.meta.events.register(f"before-send.rekognition.{operation}", capture)
    call()
    rek.meta.events.unregister(f"before-send.rekognition.{operation}", capture)
    return sent


def test_a_captured_signature_cannot_delete_a_collection(signed: Daemon) -> None:
    """The red team's replay: a signed DescribeCollection with DeleteCollection put in front."""
    admin = client(signed.endpoint)
    admin.create_collection(CollectionId="replayed")
    headers = _captured(admin, "DescribeCollection",
                        lambda: admin.describe_collection(CollectionId="replayed"))
    assert "x-amz-target" in headers["Authorization"] and "content-type" in (
        headers["Authorization"])  # what botocore signs for a JSON protocol
    body = b'{"CollectionId": "replayed"}'
    for front in (True, False):
        conn = http.client.HTTPConnection("127.0.0.1", signed.port, timeout=10)
        conn.putrequest("POST", "/", skip_accept_encoding=True)
        if front:
            conn.putheader("X-Amz-Target", "RekognitionService.DeleteCollection")
        for name, value in headers.items():
            conn.putheader(name, value)
        if not front:
            conn.putheader("X-Amz-Target", "RekognitionService.DeleteCollection")
        conn.endheaders(body)
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        conn.close()
        assert resp.status == 400 and answer["__type"] == "UnknownOperationException", answer
    assert admin.describe_collection(CollectionId="replayed")["FaceCount"] == 0
    admin.delete_collection(CollectionId="replayed")


def test_a_security_token_is_refused(signed: Daemon) -> None:
    """streamproc has no STS: credentials with a session token are refused, not ignored."""
    rek = retry_resets(boto3.client(
        "rekognition", endpoint_url=signed.endpoint, region_name="eu-west-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_session_token="garbage",
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"})))
    with pytest.raises(rek.exceptions.AccessDeniedException) as err:
        rek.list_collections()
    assert err.value.response["Error"]["Message"] == (
        "The security token included in the request is invalid")
    assert signed.registry.get_sample_value("streamproc_api_requests_total", {
        "operation": "ListCollections", "code": "AccessDeniedException"}) >= 1


def test_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    d = Daemon(make_config(tmp_path / "data", **{"server.tls_certfile": str(certfile),
                                                 "server.tls_keyfile": str(keyfile)}))
    d.start()
    try:
        assert d.endpoint.startswith("https://")
        rek = boto3.client("rekognition", endpoint_url=d.endpoint, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x",
                           verify=str(cafile))
        assert rek.list_collections()["CollectionIds"] == []
        plain = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            plain.request("GET", "/health")
            plain.getresponse().read()
        unverified = http.client.HTTPSConnection("127.0.0.1", d.port, timeout=5,
                                                 context=ssl.create_default_context())
        with pytest.raises(ssl.SSLError):
            unverified.request("GET", "/health")
    finally:
        d.stop()


def test_concurrent_request_limit(tmp_path: Path) -> None:
    d = Daemon(make_config(tmp_path, **{"server.max_concurrent_requests": 1}))
    d.start()
    outcomes: list[str] = []
    try:
        photo = {"Bytes": fixture_photo("person_b_1")}
        clients = [client(d.endpoint, key="x", secret="x") for _ in range(6)]
        for rek in clients:
            rek.list_collections()  # warm each client: no first-call work inside the race
        gate = threading.Barrier(6)

        def call(rek: Any) -> None:
            gate.wait(10)
            try:
                rek.detect_faces(Image=photo)
                outcomes.append("ok")
            except rek.exceptions.LimitExceededException:
                outcomes.append("limited")

        threads = [threading.Thread(target=call, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        d.stop()
    assert "ok" in outcomes and "limited" in outcomes


def test_safe_defaults_and_config_checks(tmp_path: Path, monkeypatch: Any) -> None:
    config = load_config(None, {})
    assert config.server.host == "127.0.0.1" and config.auth.enabled is False
    with pytest.raises(ValueError, match="access_keys"):
        load_config(None, {"auth.enabled": True})
    monkeypatch.setenv("SP_TEST_SECRET", "from-env")
    loaded = load_config(None, {"auth.enabled": True,
                                "auth.access_keys": {"AK": "env:SP_TEST_SECRET"}})
    assert loaded.auth.access_keys == {"AK": "from-env"}
    with pytest.raises(ValueError, match="SP_TEST_MISSING"):
        load_config(None, {"auth.access_keys": {"AK": "env:SP_TEST_MISSING"}})
    d = Daemon(make_config(tmp_path / "state"))
    d.start()
    d.stop()
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "streamproc.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state" / "spool.db").stat().st_mode & 0o777 == 0o600


SCOPED_ID, SCOPED_SECRET = "AKIDSCOPEDCAMERAS001", "scoped/SECRET+value-1"
ADMIN_ID, ADMIN_SECRET = "AKIDADMINISTRATOR001", "admin/SECRET+value-2"
POLICIES = """
AKIDSCOPEDCAMERAS001:
  Version: "2012-10-17"
  Statement:
    - Sid: SearchCameraCollections
      Effect: Allow
      Action: ["rekognition:Search*", "rekognition:Describe*", "rekognition:ListFaces"]
      Resource: "arn:aws:rekognition:*:*:collection/cam-*"
    - Sid: RunCameraProcessors
      Effect: Allow
      Action: ["rekognition:*StreamProcessor", "rekognition:DescribeCollection"]
      Resource: ["arn:aws:rekognition:*:*:streamprocessor/cam-*",
                 "arn:aws:rekognition:*:*:collection/cam-*"]
    - Effect: Allow
      Action: "rekognition:List*"
      Resource: "*"
    - Sid: NeverDelete
      Effect: Deny
      Action: "rekognition:Delete*"
      Resource: "*"
"""


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("scoped")
    (home / "policies.yaml").write_text(POLICIES)
    (home / "keys.yaml").write_text(f"{SCOPED_ID}: {SCOPED_SECRET}\n{ADMIN_ID}: {ADMIN_SECRET}\n")
    d = Daemon(make_config(home / "data", **{
        "auth.enabled": True, "auth.access_keys_file": str(home / "keys.yaml"),
        "auth.policy_file": str(home / "policies.yaml"),
        "outputs.clusters": ["127.0.0.1:9"]}))  # where its processors write (never started)
    d.start()
    yield d
    d.stop()


def _denied(call: Any, rek: Any) -> str:
    with pytest.raises(rek.exceptions.AccessDeniedException) as err:
        call()
    return err.value.response["Error"]["Message"]


def test_scoped_key_searches_but_cannot_delete_or_leave_its_arns(
        scoped: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    admin = client(scoped.endpoint, ADMIN_ID, ADMIN_SECRET)
    cam = client(scoped.endpoint, SCOPED_ID, SCOPED_SECRET)
    for collection in ("cam-lobby", "hr-private"):
        admin.create_collection(CollectionId=collection)
        admin.index_faces(CollectionId=collection, ExternalImageId="a",
                          Image={"Bytes": fixture_photo("person_a_1")})
    probe = {"Bytes": fixture_photo("person_a_2")}
    found = cam.search_faces_by_image(CollectionId="cam-lobby", Image=probe)
    assert found["FaceMatches"][0]["Face"]["ExternalImageId"] == "a"
    assert sorted(cam.list_collections()["CollectionIds"]) == ["cam-lobby", "hr-private"]
    arn = "arn:aws:rekognition:us-east-1:000000000000"
    message = _denied(lambda: cam.search_faces_by_image(CollectionId="hr-private", Image=probe),
                      cam)
    assert message == (f"User: {SCOPED_ID} is not authorized to perform: "
                       f"rekognition:SearchFacesByImage on resource: {arn}:collection/hr-private"
                       " because no identity-based policy allows the "
                       "rekognition:SearchFacesByImage action")
    message = _denied(lambda: cam.delete_collection(CollectionId="cam-lobby"), cam)
    assert "rekognition:DeleteCollection on resource: " + arn + ":collection/cam-lobby" in message
    assert "explicit deny" in message
    assert _denied(lambda: cam.detect_faces(Image=probe), cam).endswith(
        "allows the rekognition:DetectFaces action")
    # Processors: only cam-* names, and only over cam-* collections.
    spec = {"RoleArn": "arn:aws:iam::123456789012:role/x",
            "Output": {"KinesisDataStream": {"Arn": "kafka://127.0.0.1:9/cams"}}}
    url = "rtsp://viewer:CamPass123@127.0.0.1:8554/door"
    cam.create_stream_processor(Name="cam-door", Input={"KinesisVideoStream": {"Arn": url}},
                                Settings={"FaceSearch": {"CollectionId": "cam-lobby"}}, **spec)
    described = json.dumps(cam.describe_stream_processor(Name="cam-door"), default=str)
    assert "viewer:CamPass123" not in described and "***:***@127.0.0.1" in described
    message = _denied(lambda: cam.create_stream_processor(
        Name="office-door", Input={"KinesisVideoStream": {"Arn": url + "2"}},
        Settings={"FaceSearch": {"CollectionId": "cam-lobby"}}, **spec), cam)
    assert f"on resource: {arn}:streamprocessor/office-door" in message
    message = _denied(lambda: cam.create_stream_processor(
        Name="cam-hr", Input={"KinesisVideoStream": {"Arn": url + "3"}},
        Settings={"FaceSearch": {"CollectionId": "hr-private"}}, **spec), cam)
    assert f"on resource: {arn}:collection/hr-private" in message
    assert "explicit deny" in _denied(lambda: cam.delete_stream_processor(Name="cam-door"), cam)
    admin.create_stream_processor(
        Name="office", RoleArn=spec["RoleArn"], Input={"KinesisVideoStream": {"Arn": url + "4"}},
        Output={"KinesisDataStream": {"Arn": "kafka://127.0.0.1:9/office"}},
        Settings={"FaceSearch": {"CollectionId": "hr-private"}})
    _denied(lambda: cam.describe_stream_processor(Name="office"), cam)
    _denied(lambda: cam.start_stream_processor(Name="office"), cam)
    assert sorted(p["Name"] for p in cam.list_stream_processors()["StreamProcessors"]) == [
        "cam-door", "office"]
    admin.delete_stream_processor(Name="office")  # the admin key has no policy: full access
    admin.delete_stream_processor(Name="cam-door")
    registry = scoped.registry
    assert registry.get_sample_value("streamproc_api_access_denied_total", {
        "operation": "DeleteCollection", "reason": "explicit"}) == 1
    assert registry.get_sample_value("streamproc_api_access_denied_total", {
        "operation": "CreateStreamProcessor", "reason": "implicit"}) == 2
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert f"access denied: key {SCOPED_ID}, rekognition:DeleteCollection" in logs
    # No secret (API keys, camera password) in logs, metrics or Describe output.
    metrics = generate_latest(registry).decode()
    for secret in (SCOPED_SECRET, ADMIN_SECRET, "CamPass123"):
        assert secret not in logs and secret not in metrics and secret not in described
