"""SigV4 verification, TLS, request limits and safe defaults."""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest
from botocore.config import Config as BotoConfig
from conftest import fixture_photo, make_config

from streamproc.config import load_config
from streamproc.daemon import Daemon

KEY_ID, SECRET = "AKIDSTREAMPROCTEST01", "s3cr3t/KEY+value"


def client(endpoint: str, key: str = KEY_ID, secret: str = SECRET, **kwargs: Any) -> Any:
    return boto3.client("rekognition", endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"},
                                          **kwargs))


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
