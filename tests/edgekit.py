"""The API edge (transport, SigV4, HTTP server) over fake handlers, on a real socket.

No models and no daemon: :class:`Edge` serves :class:`ControlApi` with handlers that record
what they were asked to do, so a test can check what a hostile request did or did not reach.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client import CollectorRegistry

from streamproc.api.auth import SigV4Verifier
from streamproc.api.context import RequestContext
from streamproc.api.intake import BodyLimits, BodyReader
from streamproc.api.peers import ConnectionLimits
from streamproc.api.server import ConnectionTimeouts, HttpServer
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.validate import ServiceSpec
from streamproc.config import load_config
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import Arns

KEY, SECRET = "AKIDEDGETEST00000001", "edge/SECRET+value"
JSON = "application/x-amz-json-1.1"


@dataclass
class Edge:
    """A served ControlApi; ``calls`` lists (operation, params) that reached a handler."""

    server: HttpServer
    registry: CollectorRegistry
    api: ControlApi | None = None
    bodies: BodyReader | None = None  # the api's: how many bodies it is reading now
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def count(self, operation: str, code: str) -> float:
        """``streamproc_api_requests_total`` for one operation and result (0 if none)."""
        value = self.registry.get_sample_value(
            "streamproc_api_requests_total", {"operation": operation, "code": code})
        return value or 0.0

    def cuts(self, reason: str) -> float:
        """``streamproc_http_connections_cut_total`` for one reason (0 if none)."""
        value = self.registry.get_sample_value(
            "streamproc_http_connections_cut_total", {"reason": reason})
        return value or 0.0


def start_edge(auth: bool = False, verifier: SigV4Verifier | None = None,
               **server: Any) -> Edge:
    """Serve the edge with the daemon's defaults, ``server.*`` overridden by ``server``."""
    config = load_config(None, {f"server.{k}": v for k, v in server.items()}).server
    registry = CollectorRegistry()
    metrics = ApiMetrics.create(registry)
    edge = Edge(HttpServer(None, "127.0.0.1", 0, 2.0, ConnectionTimeouts(
        config.header_timeout_s, config.body_timeout_s, config.keep_alive_s),
        cuts=metrics.connections_cut, limits=ConnectionLimits(
            config.max_connections, config.max_connections_per_client)), registry)

    def handler(operation: str, result: dict[str, Any]) -> Callable[..., dict[str, Any]]:
        def handle(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
            edge.calls.append((operation, params))
            return result
        return handle

    handlers = {
        "ListCollections": handler("ListCollections", {"CollectionIds": ["c1"]}),
        "DescribeCollection": handler("DescribeCollection", {"FaceCount": 0}),
        "DeleteCollection": handler("DeleteCollection", {"StatusCode": 200}),
    }
    if auth and verifier is None:
        verifier = SigV4Verifier({KEY: SECRET}.get)
    limits = ApiLimits(BodyLimits.of(config), config.max_concurrent_requests,
                       config.worker_threads)
    edge.bodies = BodyReader(limits.body)
    api = ControlApi(ServiceSpec(), handlers, metrics, registry, limits,
                     lambda: {"status": "ok"}, Arns("us-east-1", "000000000000"), verifier,
                     bodies=edge.bodies)
    edge.api = api
    edge.server.serve(api.app())
    return edge


def signed_headers(port: int, operation: str, body: bytes, *, unsigned: tuple[str, ...] = (),
                   extra: dict[str, str] | None = None,
                   key: tuple[str, str] = (KEY, SECRET)) -> dict[str, str]:
    """Headers of a POST / signed by ``key`` (id, secret) as botocore signs it (``unsigned``
    sent, not signed)."""
    headers = {"Host": f"127.0.0.1:{port}", "Content-Type": JSON,
               "X-Amz-Target": f"RekognitionService.{operation}", **(extra or {})}
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body,
                         headers={k: v for k, v in headers.items() if k.lower() not in unsigned})
    SigV4Auth(Credentials(*key), "rekognition", "us-east-1").add_auth(request)
    return {**headers, **dict(request.headers.items())}


def forged_headers(port: int, key_id: str = KEY, length: int = 1000) -> dict[str, str]:
    """Headers that pass screening without the secret: a known key id, a fresh date, the
    required headers named, and 64 zeros as the signature (only the body could tell)."""
    headers = signed_headers(port, "ListCollections", b"", key=(key_id, "not the secret"))
    headers["Authorization"] = re.sub("Signature=[0-9a-f]{64}", "Signature=" + "0" * 64,
                                      headers["Authorization"])
    return {**headers, "Content-Length": str(length)}


def connect(port: int, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    """A connection to the edge from ``source`` (127.0.0.2 is another client on loopback)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def request_bytes(head: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """``POST /`` with exactly these header lines, a Content-Length if they give none."""
    lines = ["POST / HTTP/1.1", *(f"{k}: {v}" for k, v in head)]
    if not any(k.lower() == "content-length" for k, _ in head):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def raw_request(port: int, head: list[tuple[str, str]], body: bytes = b"",
                timeout: float = 10.0, source: str = "127.0.0.1"
                ) -> tuple[int, dict[str, str], bytes]:
    """Send exactly these header lines (repeats included) and read one response."""
    with connect(port, source, timeout) as sock:
        sock.sendall(request_bytes(head, body))
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length (status, lower-case headers, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading whatever it sent), or None."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None
