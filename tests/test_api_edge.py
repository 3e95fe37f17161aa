"""The API edge against hostile clients, on real sockets, over fake handlers (no models).

One verified operation per request (no repeated X-Amz-Target, a signature that binds it),
slow clients bounded without taking operation slots, idle connections kept longer than
clients' pools keep them, and every refusal in Rekognition's error shape and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import importlib.metadata
import inspect
import json
import re
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import h11
import pytest
import uvicorn
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionClosedError
from conftest import REPO, client_for
from edgekit import (
    JSON,
    KEY,
    SECRET,
    Edge,
    closed_within,
    connect,
    forged_headers,
    raw_request,
    read_response,
    request_bytes,
    signed_headers,
    start_edge,
)
from packaging.specifiers import SpecifierSet
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from streamproc.api import server as server_module
from streamproc.api.auth import SigV4Verifier
from streamproc.api.intake import BodyLimits
from streamproc.api.peers import client_of
from streamproc.api.protocol import GuardedH11Protocol, guarded_h11
from streamproc.config import load_config

TARGET = "RekognitionService."
OTHER = ("AKIDEDGETEST00000002", "other/SECRET")


@pytest.fixture
def serve() -> Iterator[Callable[..., Edge]]:
    """Start edges (start_edge's arguments); each is stopped after the test."""
    started: list[Edge] = []

    def start(**kwargs: Any) -> Edge:
        started.append(start_edge(**kwargs))
        return started[-1]

    yield start
    for edge in started:
        edge.server.stop(5.0)


def plain(port: int, operation: str = "ListCollections") -> list[tuple[str, str]]:
    return [("Host", f"127.0.0.1:{port}"), ("Content-Type", JSON),
            ("X-Amz-Target", TARGET + operation)]


def error(data: bytes) -> dict[str, str]:
    body = json.loads(data)
    assert set(body) == {"__type", "Code", "Logref", "Message"}, body
    return body


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def open_slow_body(port: int, operation: str = "ListCollections") -> socket.socket:
    """A client that sends headers and 2 of 1000 body bytes, then goes quiet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = "".join(f"{k}: {v}\r\n" for k, v in plain(port, operation))
    sock.sendall(f"POST / HTTP/1.1\r\n{head}Content-Length: 1000\r\n\r\n{{ ".encode())
    return sock


def bodies_reading(edge: Edge) -> int:
    """Bodies the edge's API is reading now (its BodyReader, which the edge handed it)."""
    assert edge.bodies is not None
    return edge.bodies.reading


def open_forged_body(port: int, source: str, key_id: str = KEY) -> socket.socket:
    """A client without the secret: forged headers that screen, 1 of 1000 body bytes."""
    sock = connect(port, source)
    sock.sendall(request_bytes(list(forged_headers(port, key_id).items())) + b"{")
    return sock


def answers(socks: list[socket.socket], within: float) -> list[tuple[int, dict[str, str]]]:
    """The (status, error body) each of these connections got within ``within`` seconds."""
    got: list[tuple[int, dict[str, str]]] = []
    deadline = time.monotonic() + within
    waiting = list(socks)
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(waiting, [], [], max(0.0, deadline - time.monotonic()))
        for sock in ready:
            status, _, data = read_response(sock)
            got.append((status, error(data)))
            waiting.remove(sock)
    return got


def slow_upload(port: int, source: str, key: tuple[str, str] = (KEY, SECRET)) -> int:
    """A signed ListCollections whose body arrives in two parts, 0.3 s apart: a body slot."""
    body = b"{" + b" " * 2000 + b"}"
    head = list(signed_headers(port, "ListCollections", body, key=key).items())
    with connect(port, source) as sock:
        data = request_bytes(head, body)
        sock.sendall(data[:-1000])
        time.sleep(0.3)
        sock.sendall(data[-1000:])
        return read_response(sock)[0]


# --- 1. a signature binds the operation ----------------------------------------------------

def test_a_repeated_target_is_refused_and_reaches_no_handler(serve: Callable[..., Edge]) -> None:
    edge = serve()
    body = b'{"CollectionId": "victim"}'
    first, second = TARGET + "DeleteCollection", TARGET + "DescribeCollection"
    for targets in ((first, second), (second, first)):
        head = [*plain(edge.port)[:2], ("X-Amz-Target", targets[0]),
                ("X-Amz-Target", targets[1])]
        status, headers, data = raw_request(edge.port, head, body)
        assert status == 400 and error(data)["__type"] == "UnknownOperationException"
        assert "more than once" in error(data)["Message"]
    assert edge.calls == []
    assert edge.count("DeleteCollection", "UnknownOperationException") == 1


def test_a_replayed_signature_cannot_run_another_operation(serve: Callable[..., Edge]) -> None:
    edge = serve(auth=True)
    body = b'{"CollectionId": "victim"}'
    captured = list(signed_headers(edge.port, "DescribeCollection", body).items())
    assert raw_request(edge.port, captured, body)[0] == 200
    delete = ("X-Amz-Target", TARGET + "DeleteCollection")
    for head in ([delete, *captured], [*captured, delete]):
        status, _, data = raw_request(edge.port, head, body)
        assert status == 400, data
    loose = signed_headers(edge.port, "DescribeCollection", body, unsigned=("x-amz-target",))
    loose["X-Amz-Target"] = TARGET + "DeleteCollection"
    status, _, data = raw_request(edge.port, list(loose.items()), body)
    assert status == 400 and error(data)["__type"] == "AccessDeniedException"
    assert error(data)["Message"].startswith("SignedHeaders must include content-type, host")
    for name, value in (("Authorization", dict(captured)["Authorization"]),
                        ("X-Amz-Date", "20200101T000000Z"), ("Content-Type", "text/plain")):
        status, _, data = raw_request(edge.port, [*captured, (name, value)], body)
        assert status == 400 and error(data)["Message"] == (
            f"Header {name.lower()} appears more than once")
    assert [operation for operation, _ in edge.calls] == ["DescribeCollection"]


def test_a_body_swapped_under_a_signed_hash_is_refused(serve: Callable[..., Edge]) -> None:
    edge = serve(auth=True)
    body = b'{"CollectionId": "victim"}'
    for payload in ("UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
        headers = signed_headers(edge.port, "DeleteCollection", body,
                                 extra={"X-Amz-Content-Sha256": payload})
        status, _, data = raw_request(edge.port, list(headers.items()), b'{"CollectionId": "x"}')
        assert status == 400 and "X-Amz-Content-Sha256" in error(data)["Message"]
    headers = signed_headers(edge.port, "DescribeCollection", body,
                             extra={"X-Amz-Security-Token": "garbage"})
    status, _, data = raw_request(edge.port, list(headers.items()), body)
    assert status == 400 and error(data) == {
        "__type": "AccessDeniedException", "Code": "AccessDeniedException",
        "Logref": error(data)["Logref"],
        "Message": "The security token included in the request is invalid"}
    assert edge.calls == []


def test_responses_on_a_kept_alive_connection_are_not_held_by_nagle(
        serve: Callable[..., Edge]) -> None:
    # Without TCP_NODELAY on the accepted socket, each response's last segment waits for the
    # client's delayed ACK: 40 ms or more per request on Linux, every time. Handling one of
    # these takes a few ms, so a median under 25 ms tells the two apart with room to spare.
    edge = serve()
    connection = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=5)
    took = []
    try:
        for _ in range(9):
            started = time.perf_counter()
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            took.append(time.perf_counter() - started)
            assert response.status == 200
    finally:
        connection.close()
    assert sorted(took)[4] < 0.025, took


def test_boto3_signs_everything_the_edge_requires(serve: Callable[..., Edge]) -> None:
    edge = serve(auth=True)

    def rek(secret: str) -> Any:
        return boto3.client("rekognition", endpoint_url=edge.endpoint, region_name="eu-west-1",
                            aws_access_key_id=KEY, aws_secret_access_key=secret,
                            config=BotoConfig(retries={"total_max_attempts": 1}))
    assert rek(SECRET).list_collections()["CollectionIds"] == ["c1"]
    assert rek(SECRET).describe_collection(CollectionId="c-1")["FaceCount"] == 0
    bad = rek("wrong")
    with pytest.raises(bad.exceptions.AccessDeniedException) as err:
        bad.list_collections()
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert [operation for operation, _ in edge.calls] == ["ListCollections",
                                                          "DescribeCollection"]


# --- 2. slow clients -------------------------------------------------------------------------

def test_slow_bodies_hold_no_operation_slot(serve: Callable[..., Edge]) -> None:
    edge = serve(max_concurrent_requests=2, max_body_reads_per_client=12,
                 min_body_rate_bytes_s=0)
    assert raw_request(edge.port, plain(edge.port), b"{}")[0] == 200  # warm: model loaded
    slow = [open_slow_body(edge.port) for _ in range(12)]
    try:
        wait_until(lambda: bodies_reading(edge) == 12)
        started = time.monotonic()
        status, _, data = raw_request(edge.port, plain(edge.port), b"{}")
        assert status == 200, data
        assert time.monotonic() - started < 2.0
        assert client_for(edge.endpoint).list_collections()["CollectionIds"] == ["c1"]
    finally:
        for sock in slow:
            sock.close()


def test_requests_that_cannot_verify_hold_no_body_slot(serve: Callable[..., Edge]) -> None:
    """With auth on, a client without a known key is refused on its headers, unread."""
    edge = serve(auth=True, max_body_reads=1)
    refused = [open_slow_body(edge.port) for _ in range(5)]
    try:
        for sock in refused:
            status, _, data = read_response(sock)
            assert status == 400 and error(data)["__type"] == "AccessDeniedException"
        assert bodies_reading(edge) == 0
        body = b'{"CollectionId": "c-1"}'
        headers = signed_headers(edge.port, "DescribeCollection", body)
        assert raw_request(edge.port, list(headers.items()), body)[0] == 200
    finally:
        for sock in refused:
            sock.close()


def test_slow_bodies_are_cut_at_the_deadline(serve: Callable[..., Edge]) -> None:
    edge = serve(body_timeout_s=1)
    started = time.monotonic()
    slow = [open_slow_body(edge.port) for _ in range(3)]
    try:
        for sock in slow:
            status, headers, data = read_response(sock)
            assert status == 408 and error(data)["__type"] == "RequestTimeoutException"
            assert headers["connection"] == "close"
            assert closed_within(sock, 5.0) is not None
        assert 0.9 < time.monotonic() - started < 5.0
    finally:
        for sock in slow:
            sock.close()
    assert edge.count("ListCollections", "RequestTimeoutException") == 3
    assert bodies_reading(edge) == 0


def test_bodies_past_their_budget_are_refused(serve: Callable[..., Edge]) -> None:
    edge = serve(max_body_reads=2, body_timeout_s=2, min_body_rate_bytes_s=0)
    slow = [open_slow_body(edge.port) for _ in range(2)]
    try:
        wait_until(lambda: bodies_reading(edge) == 2)
        third = open_slow_body(edge.port)
        status, headers, data = read_response(third)
        assert status == 400 and error(data)["__type"] == "LimitExceededException"
        assert "request bodies" in error(data)["Message"]
        # Its unread rest may still arrive (and is discarded), within the body deadline.
        assert closed_within(third, 5.0) is not None
        third.close()
    finally:
        for sock in slow:
            sock.close()
    wait_until(lambda: bodies_reading(edge) == 0)
    assert raw_request(edge.port, plain(edge.port), b"{}")[0] == 200
    assert edge.count("ListCollections", "LimitExceededException") == 1


def test_forged_slow_bodies_fill_only_their_clients_share(serve: Callable[..., Edge]) -> None:
    """A known key id and 64 zeros screen without the secret; one client's slow forged
    bodies stop at its own cap, and a signed client elsewhere still has its upload read."""
    edge = serve(auth=True, max_body_reads=6, max_body_reads_per_client=2,
                 max_body_reads_per_key=6, body_rate_grace_s=30)
    forged = [open_forged_body(edge.port, "127.0.0.1") for _ in range(6)]
    try:
        refused = answers(forged, 5.0)
        assert len(refused) == 4 and bodies_reading(edge) == 2
        assert {(status, body["__type"]) for status, body in refused} == {
            (400, "LimitExceededException")}
        assert "from this client (limit 2)" in refused[0][1]["Message"]
        assert slow_upload(edge.port, "127.0.0.2") == 200
        assert edge.calls == [("ListCollections", {})]
    finally:
        for sock in forged:
            sock.close()


def test_bodies_claiming_one_key_get_only_that_keys_share(serve: Callable[..., Edge]) -> None:
    """Forged bodies naming one key id from many addresses fill that key's share only:
    another key's slow upload is read, and so is the attacked key's body sent whole."""
    verifier = SigV4Verifier({KEY: SECRET, OTHER[0]: OTHER[1]}.get)
    edge = serve(verifier=verifier, max_body_reads=6, max_body_reads_per_client=2,
                 max_body_reads_per_key=2, body_rate_grace_s=30)
    forged = [open_forged_body(edge.port, f"127.0.0.{2 + i // 2}") for i in range(6)]
    try:
        refused = answers(forged, 5.0)
        assert len(refused) == 4 and bodies_reading(edge) == 2
        assert all("for this access key (limit 2)" in body["Message"] for _, body in refused)
        assert slow_upload(edge.port, "127.0.0.9", OTHER) == 200
        whole = b"{}"
        head = list(signed_headers(edge.port, "ListCollections", whole).items())
        assert raw_request(edge.port, head, whole, source="127.0.0.10")[0] == 200
        assert len(edge.calls) == 2
    finally:
        for sock in forged:
            sock.close()


def test_the_key_share_defaults_to_an_eighth_of_the_budget() -> None:
    def share(**server: object) -> int:
        config = load_config(None, {f"server.{k}": v for k, v in server.items()}).server
        return BodyLimits.of(config).max_reads_per_key
    assert share() == 16
    assert share(max_body_reads=4) == 1
    assert share(max_body_reads=4, max_body_reads_per_key=3) == 3


def test_a_client_is_an_ipv4_address_or_an_ipv6_64() -> None:
    """Per-client limits count what an attacker pays for: IPv6 addresses come by the /64."""
    assert client_of("203.0.113.7") == "203.0.113.7"
    assert client_of("2001:db8:1:2::1") == client_of("2001:db8:1:2:ffff::9") == (
        "2001:db8:1:2::/64")
    assert client_of("2001:db8:1:3::1") != client_of("2001:db8:1:2::1")
    assert client_of("::ffff:198.51.100.1") == "198.51.100.1"
    assert client_of(None) == client_of("") == ""


def test_a_body_slower_than_the_minimum_rate_is_cut(serve: Callable[..., Edge]) -> None:
    edge = serve(min_body_rate_bytes_s=1000, body_rate_grace_s=0.5, body_timeout_s=30)
    started = time.monotonic()
    with open_slow_body(edge.port) as sock:  # 2 of 1000 bytes, then nothing
        status, headers, data = read_response(sock)
        assert status == 408 and error(data)["__type"] == "RequestTimeoutException"
        assert "slower than 1000 bytes/s" in error(data)["Message"]
        assert headers["connection"] == "close" and closed_within(sock, 5.0) is not None
    assert time.monotonic() - started < 5.0
    # A body that keeps up is read whole, however long it takes.
    body = b"{" + b" " * 2998 + b"}"
    with connect(edge.port) as sock:
        data = request_bytes(plain(edge.port), body)
        for offset in range(0, len(data), 200):  # 2000 bytes/s for 1.5 s
            sock.sendall(data[offset:offset + 200])
            time.sleep(0.1)
        assert read_response(sock)[0] == 200
    assert edge.count("ListCollections", "RequestTimeoutException") == 1


def test_connections_past_the_caps_are_closed(serve: Callable[..., Edge]) -> None:
    edge = serve(max_connections=5, max_connections_per_client=2)
    held = [connect(edge.port, "127.0.0.1") for _ in range(2)]
    try:
        with connect(edge.port, "127.0.0.1") as third:
            assert closed_within(third, 3.0) is not None
        wait_until(lambda: edge.cuts("max_connections_per_client") == 1)
        held += [connect(edge.port, source) for source in ("127.0.0.2", "127.0.0.2",
                                                           "127.0.0.3")]
        with connect(edge.port, "127.0.0.4") as sixth:
            assert closed_within(sixth, 3.0) is not None
        wait_until(lambda: edge.cuts("max_connections") == 1)
        assert all(closed_within(sock, 0.2) is None for sock in held)  # not the open ones
        held.pop(0).close()

        def served() -> bool:
            try:
                return raw_request(edge.port, plain(edge.port), b"{}", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(served)  # a place freed is a place to take
    finally:
        for sock in held:
            sock.close()


def test_the_open_files_limit_is_raised_to_fit_the_connections() -> None:
    """Run in a child, so the test process keeps its own limits."""
    script = textwrap.dedent("""
        import logging, resource, sys
        from streamproc.api.server import raise_fd_limit
        logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        print(raise_fd_limit(200), raise_fd_limit(1000), hard, flush=True)
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, 400))
        print(raise_fd_limit(1000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    unchanged, raised, hard = (int(v) for v in out[0].split())
    assert unchanged == 256 and raised == hard >= 1000
    assert out[1].startswith("WARNING ") and "1000" in out[1] and "400" in out[1]
    assert out[2] == "400 400"


def test_an_edge_raises_the_open_files_limit_for_its_connections(
        serve: Callable[..., Edge], monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    monkeypatch.setattr(server_module, "raise_fd_limit", lambda needed: asked.append(needed))
    serve(max_connections=300)
    assert asked and asked[0] >= 300


def test_incomplete_headers_are_cut_at_the_deadline(serve: Callable[..., Edge]) -> None:
    edge = serve(header_timeout_s=1)
    kept = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
    kept.request("POST", "/", b"{}", dict(plain(edge.port)))
    assert kept.getresponse().read()
    opened = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    partial = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    partial.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    try:
        for sock in (silent, partial):
            assert closed_within(sock, 5.0) is not None
        assert time.monotonic() - opened > 0.9
        wait_until(lambda: edge.cuts("header_timeout") == 2)
        # Idle between requests is keep-alive time, not header time.
        kept.request("POST", "/", b"{}", dict(plain(edge.port)))
        assert kept.getresponse().status == 200
    finally:
        for sock in (silent, partial):
            sock.close()
        kept.close()


def test_idle_connections_outlive_client_pools(serve: Callable[..., Edge]) -> None:
    edge = serve()
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
    try:
        conn.request("POST", "/", b"{}", dict(plain(edge.port)))
        assert conn.getresponse().read()
        sock = conn.sock
        time.sleep(6)  # past uvicorn's default of 5 s
        conn.request("POST", "/", b"{}", dict(plain(edge.port)))
        assert conn.getresponse().status == 200 and conn.sock is sock
    finally:
        conn.close()
    short = serve(keep_alive_s=1)
    conn = http.client.HTTPConnection("127.0.0.1", short.port, timeout=10)
    conn.request("POST", "/", b"{}", dict(plain(short.port)))
    assert conn.getresponse().read()
    assert conn.sock is not None and closed_within(conn.sock, 5.0) is not None
    conn.close()


def _reset_first_connection(listener: socket.socket, accepted: list[int]) -> None:
    """Reset the first connection after reading its request; answer the second."""
    for attempt in range(2):
        try:
            sock, _ = listener.accept()
        except OSError:  # the listener closed: no second attempt came
            return
        accepted.append(attempt)
        if attempt == 0:
            sock.recv(65536)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            sock.close()  # RST, as a server closing an idle connection does to a reuse
            continue
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        reply = b'{"CollectionIds": ["after-reset"]}'
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + JSON.encode() +
                     b"\r\nContent-Length: " + str(len(reply)).encode() + b"\r\n\r\n" + reply)
        sock.close()


def test_the_test_clients_retry_a_reset_connection() -> None:
    """Like botocore's default retries, conftest's clients survive a reset connection, but
    only on read-only calls: a reset CreateCollection may have created it."""
    for call, retried in ((lambda rek: rek.list_collections(), True),
                          (lambda rek: rek.create_collection(CollectionId="c"), False)):
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(10)
        accepted: list[int] = []
        thread = threading.Thread(target=_reset_first_connection, args=(listener, accepted),
                                  daemon=True)
        thread.start()
        try:
            rek = client_for(f"http://127.0.0.1:{listener.getsockname()[1]}")
            if retried:
                assert call(rek)["CollectionIds"] == ["after-reset"]
            else:
                with pytest.raises(ConnectionClosedError):
                    call(rek)
        finally:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept waiting for a retry
            listener.close()
            thread.join(5)
        assert accepted == ([0, 1] if retried else [0])


# --- 3. what the edge borrows from uvicorn and h11 -------------------------------------------

def test_the_uvicorn_and_h11_internals_the_protocol_relies_on_exist() -> None:
    """api/protocol.py subclasses uvicorn's H11Protocol and reads h11's connection state: an
    upgrade that moves them must fail here, loudly, not at the first hostile client."""
    for name in ("connection_made", "connection_lost", "data_received", "handle_events",
                 "on_response_complete", "send_400_response"):
        assert callable(getattr(H11Protocol, name)), name
    assert list(inspect.signature(H11Protocol.send_400_response).parameters) == ["self", "msg"]
    assert "self.send_400_response(" in inspect.getsource(H11Protocol.handle_events)
    assert "self.on_response_complete" in inspect.getsource(H11Protocol.handle_events)
    loop = asyncio.new_event_loop()
    try:
        protocol = H11Protocol(uvicorn.Config(Starlette()), ServerState(), {}, _loop=loop)
    finally:
        loop.close()
    assert protocol.loop is loop and protocol.transport is None and protocol.cycle is None
    ours = {name for name in vars(GuardedH11Protocol) if not name.startswith("__")}
    clashes = ours & (set(vars(protocol)) | set(dir(H11Protocol)) - {
        "connection_made", "connection_lost", "data_received", "on_response_complete",
        "send_400_response"})
    assert not clashes, f"GuardedH11Protocol shadows uvicorn's {sorted(clashes)}"
    conn = protocol.conn
    assert isinstance(conn, h11.Connection) and conn.trailing_data == (b"", False)
    assert conn.our_state is h11.IDLE and conn.their_state is h11.IDLE
    assert all(isinstance(getattr(h11, state), type) for state in (
        "IDLE", "SEND_RESPONSE", "SEND_BODY", "DONE", "MUST_CLOSE"))
    assert callable(conn.send) and issubclass(h11.LocalProtocolError, Exception)
    guarded = guarded_h11(1.0, 1.0)
    config = uvicorn.Config(Starlette(), http=guarded)
    config.load()
    assert config.http_protocol_class is guarded


def test_uvicorn_and_h11_are_pinned_to_the_tested_versions() -> None:
    """pyproject.toml bounds both to the minor versions these tests ran on."""
    pins = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    for name in ("uvicorn", "h11"):
        match = re.search(rf'^\s*"{name}([<>=!~][^"]*)"', pins, re.MULTILINE)
        assert match is not None, f"{name} is not a declared dependency"
        spec = SpecifierSet(match.group(1))
        assert any(s.operator == "<" for s in spec), f"{name} has no upper bound"
        assert spec.contains(importlib.metadata.version(name)), (name, str(spec))


# --- 4. every error in Rekognition's shape, counted -------------------------------------------

@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"CollectionId": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b'{"MaxResults": ' + b'{"a": ' * 400 + b"1" + b"}" * 400 + b"}",
    b'{"NextToken": ' + b"[" * 32 + b"]" * 32 + b"}",
])
def test_json_nested_too_deep_is_a_serialization_error(serve: Callable[..., Edge],
                                                        body: bytes) -> None:
    edge = serve()
    status, headers, data = raw_request(edge.port, plain(edge.port), body)
    assert status == 400 and error(data)["__type"] == "SerializationException"
    assert headers["x-amzn-errortype"] == "SerializationException"
    assert edge.count("ListCollections", "SerializationException") == 1
    assert edge.calls == []


def test_json_nested_within_the_limit_reaches_validation(serve: Callable[..., Edge]) -> None:
    edge = serve()
    body = b'{"NextToken": ' + b"[" * 31 + b"]" * 31 + b"}"
    status, _, data = raw_request(edge.port, plain(edge.port), body)
    assert status == 400 and error(data)["__type"] == "InvalidParameterException"


def test_errors_carry_code_and_logref(serve: Callable[..., Edge]) -> None:
    edge = serve()
    status, headers, data = raw_request(edge.port, plain(edge.port), b"{not json")
    body = error(data)
    assert status == 400 and body["__type"] == body["Code"] == "SerializationException"
    assert body["Logref"] == headers["x-amzn-requestid"] and len(body["Logref"]) == 36
    with pytest.raises(ClientError) as err:
        client_for(edge.endpoint).describe_collection(CollectionId="not valid")
    response = err.value.response
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["ResponseMetadata"]["RequestId"]


class _BrokenVerifier:
    """Screens every request through, then fails verifying it: a bug below the handlers."""

    def __init__(self) -> None:
        self.screened = 0

    def screen(self, headers: object, repeated: object = frozenset()) -> str:
        self.screened += 1
        return KEY

    def verify(self, *args: object) -> str:
        msg = "boom: a bug below the handlers"
        raise RuntimeError(msg)


def test_a_transport_failure_is_an_aws_error_and_counted(
        serve: Callable[..., Edge], caplog: pytest.LogCaptureFixture) -> None:
    broken = _BrokenVerifier()
    edge = serve(verifier=broken)
    status, headers, data = raw_request(edge.port, plain(edge.port), b"{}")
    assert status == 500 and error(data)["__type"] == "InternalServerError"
    assert "boom" not in data.decode() and headers["connection"] == "close"
    assert edge.count("ListCollections", "InternalServerError") == 1
    assert edge.calls == [] and broken.screened == 1
    failures = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)  # verify's, not a missing screen


@pytest.mark.parametrize("head", [
    [("Host", "["), ("Content-Type", JSON), ("X-Amz-Target", TARGET + "ListCollections")],
    [("Host", "h\xf6st"), ("Content-Type", JSON), ("X-Amz-Target", TARGET + "\xff\xfe")],
    [("Host", "x"), ("Content-Type", "\xe9"), ("X-Amz-Target", TARGET + "ListCollections"),
     ("Authorization", "AWS4-HMAC-SHA256 Credential=\xff/20260101/x/rekognition/aws4_request")],
])
def test_hostile_header_values_get_aws_errors(serve: Callable[..., Edge],
                                              head: list[tuple[str, str]]) -> None:
    """A regression guard: Starlette already keeps these from crashing the transport."""
    for edge in (serve(auth=True), serve()):
        status, _, data = raw_request(edge.port, head, b"{}")
        assert 400 <= status < 500 or status == 200, data
        if status != 200:
            assert error(data)["__type"] in {"AccessDeniedException", "UnknownOperationException"}


def test_an_unread_body_is_drained_then_cut(serve: Callable[..., Edge]) -> None:
    """Refused from its Content-Length: a client still sending reads the error, not a reset;
    one that trickles the rest is cut at the body deadline."""
    edge = serve(max_request_bytes=1000, body_timeout_s=1)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in plain(edge.port))
        sock.sendall(f"POST / HTTP/1.1\r\n{head}Content-Length: 200000\r\n\r\n".encode()
                     + b" " * 200_000)
        status, _, data = read_response(sock)
        assert status == 400 and error(data)["__type"] == "ImageTooLargeException"
        sock.sendall(b"POST / HTTP/1.1\r\n" + head.encode() + b"Content-Length: 2\r\n\r\n{}")
        assert read_response(sock)[0] == 200  # the connection stays usable
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\n{head}Content-Length: 5000\r\n\r\n".encode())
        assert read_response(sock)[0] == 400
        started, cut = time.monotonic(), None
        for _ in range(30):  # a byte every 0.3 s for 9 s: never the end of the body
            try:
                sock.sendall(b" ")
            except OSError:
                cut = time.monotonic()
                break
            if closed_within(sock, 0.3) is not None:
                cut = time.monotonic()
                break
        assert cut is not None and cut - started < 4.0
    wait_until(lambda: edge.cuts("drain_timeout") == 1)


def test_a_malformed_chunk_while_draining_is_cut_and_counted(
        serve: Callable[..., Edge], caplog: pytest.LogCaptureFixture) -> None:
    """Refused on its headers, a chunked body is drained; garbage in it ends the connection
    (counted), not a LocalProtocolError out of data_received ("Fatal error" in the log)."""
    edge = serve(auth=True)
    with connect(edge.port) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in plain(edge.port))
        sock.sendall(f"POST / HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n".encode())
        status, _, data = read_response(sock)
        assert status == 400 and error(data)["__type"] == "AccessDeniedException"
        sock.sendall(b"zz-no-chunk-size\r\n\r\n")
        assert closed_within(sock, 5.0) is not None
    wait_until(lambda: edge.cuts("malformed") == 1)
    time.sleep(0.2)  # the loop has logged whatever it was going to
    assert not [r for r in caplog.records if "Fatal error" in r.getMessage()]


def test_a_signed_request_naming_no_url_host_is_denied(serve: Callable[..., Edge]) -> None:
    """Host "[" is signed and sent as such; building the URL to verify must not crash."""
    edge = serve(auth=True)
    headers = signed_headers(edge.port, "ListCollections", b"{}", extra={"Host": "["})
    status, _, data = raw_request(edge.port, list(headers.items()), b"{}")
    assert status == 400 and error(data)["__type"] == "AccessDeniedException"
    assert edge.count("ListCollections", "AccessDeniedException") == 1


def test_unknown_paths_methods_and_broken_http_get_aws_errors(serve: Callable[..., Edge]) -> None:
    edge = serve()
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
    for method, path, status in (("GET", "/", 405), ("GET", "/nope", 404), ("PUT", "/", 405)):
        conn.request(method, path)
        resp = conn.getresponse()
        assert resp.status == status
        assert error(resp.read())["__type"] == "UnknownOperationException"
    conn.close()
    assert edge.count("unknown", "UnknownOperationException") == 3
    # Headers still incomplete past h11's 16 KiB are refused too.
    for garbage in (b"GARBAGE\r\n\r\n", b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000):
        with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
            sock.sendall(garbage)
            status, headers, data = read_response(sock)
        assert status == 400 and error(data)["__type"] == "SerializationException"
        assert headers["content-type"] == JSON
    wait_until(lambda: edge.cuts("malformed") == 2)


def test_refusals_at_the_edge_are_counted(serve: Callable[..., Edge]) -> None:
    signed, edge = serve(auth=True), serve(max_request_bytes=1000)
    status, _, data = raw_request(signed.port, plain(signed.port), b"{}")
    assert status == 400 and error(data)["__type"] == "AccessDeniedException"
    assert signed.count("ListCollections", "AccessDeniedException") == 1
    head = [*plain(edge.port), ("Content-Length", "5000")]
    status, headers, data = raw_request(edge.port, head, b"{")
    assert status == 400 and error(data)["__type"] == "ImageTooLargeException"
    assert edge.count("ListCollections", "ImageTooLargeException") == 1
