"""The inputs allowlist through the API (boto3) and at connect time on a live stream."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from streams import WOMAN, create, wait_status
from test_allowlist import recording_server

from streamproc.tools.livestream import LoopingStream


@pytest.fixture(scope="module")
def guarded(rek: Any) -> Any:
    """A collection for the processors these tests create."""
    rek.create_collection(CollectionId="guarded")
    yield "guarded"
    rek.delete_collection(CollectionId="guarded")


@pytest.mark.parametrize("url, rule", [
    ("http://169.254.169.254/latest/meta-data/", "blocked_networks"),
    ("http://2852039166/latest/meta-data/", "blocked_networks"),
    ("rtsp://camera.example@0251.0376.0251.0376:554/", "blocked_networks"),
    ("http://[::ffff:169.254.169.254]/", "blocked_networks"),
    ("rtsp://[fd00:ec2::254]/", "blocked_networks"),
    ("/etc/passwd", "media_roots"),
    ("file:///etc/shadow", "media_roots"),
    ("/nonexistent/../etc/passwd", "media_roots"),
    ("tcp://127.0.0.1:9000?listen=1", "schemes"),
    ("tcp://127.0.0.1:9000#?listen=1", "schemes"),     # FFmpeg reads options in fragments
    ("tcp://127.0.0.1:9000?listen%00x=1", "schemes"),  # ... and names end at a NUL
    ("udp://0.0.0.0:5000", "schemes"),                 # udp listens: not a default scheme
])
def test_create_refuses_forbidden_inputs_naming_the_rule(rek: Any, guarded: str, url: str,
                                                         rule: str) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        create(rek, "forbidden", url, "forbidden-out", guarded)
    message = err.value.response["Error"]["Message"]
    assert message.startswith(f"Input.KinesisVideoStream.Arn refused by inputs.{rule}: ")
    assert "camera.example" not in message  # userinfo is never echoed
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_stream_processor(Name="forbidden")


@pytest.mark.parametrize("output, message", [
    ("kafka://169.254.169.254:9092/records", "outputs.clusters: cluster 169.254.169.254:9092 "),
    ("arn:aws:kinesis:us-east-1:123456789012:stream/__consumer_offsets",
     "outputs.topics: topic __consumer_offsets is internal"),
    ("arn:aws:kinesis:us-east-1:123456789012:stream/streamproc.state",
     "outputs.topics: topic streamproc.state is internal"),
])
def test_create_refuses_forbidden_outputs_naming_the_rule(rek: Any, guarded: str, output: str,
                                                          message: str) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        create(rek, "forbidden-out", "tcp://127.0.0.1:9000", "x", guarded,
               Output={"KinesisDataStream": {"Arn": output}})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Message"].startswith(
        f"Output.KinesisDataStream.Arn refused by {message}")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_stream_processor(Name="forbidden-out")


def test_a_name_that_later_resolves_to_metadata_is_refused_at_connect(
        rek: Any, guarded: str, monkeypatch: Any) -> None:
    """DNS rebinding: allowed at Create and Start, refused when the source reconnects."""
    answer = {"address": "127.0.0.1"}
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "camera.rebind.test":
            return real(answer["address"], *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    stream = LoopingStream(WOMAN)
    stream.start()
    try:
        url = f"tcp://camera.rebind.test:{stream.port}"
        create(rek, "rebind", url, "rebind-out", guarded)
        rek.start_stream_processor(Name="rebind")
        assert wait_status(rek, "rebind", {"RUNNING"}, 30)["Status"] == "RUNNING"
        answer["address"] = "169.254.169.254"
        stream.stop()  # the camera drops the connection; the source reconnects
        desc = wait_status(rek, "rebind", {"FAILED"}, 30)
        assert desc["Status"] == "FAILED"
        assert desc["StatusMessage"] == (
            "Input refused by inputs.blocked_networks: camera.rebind.test (169.254.169.254) "
            "is in blocked network 169.254.0.0/16")
        with pytest.raises(rek.exceptions.InvalidParameterException):
            rek.start_stream_processor(Name="rebind")  # and the API says so too
    finally:
        stream.stop()
        rek.delete_stream_processor(Name="rebind")


def test_a_processor_does_not_follow_a_redirect(rek: Any, guarded: str) -> None:
    forbidden = recording_server()
    allowed = recording_server(
        f"http://127.0.0.1:{forbidden.server_address[1]}/latest/meta-data/")
    try:
        create(rek, "redirected", f"http://127.0.0.1:{allowed.server_address[1]}/cam.ts",
               "redirected-out", guarded)
        rek.start_stream_processor(Name="redirected")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not allowed.hits:
            time.sleep(0.1)
        time.sleep(1)  # time to follow the redirect, had it done so
        assert allowed.hits and forbidden.hits == []
    finally:
        if rek.describe_stream_processor(Name="redirected")["Status"] in ("STARTING", "RUNNING"):
            rek.stop_stream_processor(Name="redirected")
        wait_status(rek, "redirected", {"STOPPED", "FAILED"}, 10)
        rek.delete_stream_processor(Name="redirected")
        for server in (allowed, forbidden):
            server.shutdown()
            server.server_close()
