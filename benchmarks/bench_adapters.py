"""Adapters' cost: training time and memory, and DetectModerationLabels with vs without one.

- **Training**: one adapter label (3 calibration folds + the final fit) on 1,000 and 10,000
  images' open_nsfw features, as :func:`benchmarks.adapter_accuracy.training_cost` measures
  it: 1,000 real images' features (from adapter_accuracy's feature cache, extracted once if
  absent); 10,000 replicate them with Gaussian noise (5% of each feature's spread), since
  the cost depends on the count and the dimension, not on the pixels. Peak memory is what
  tracemalloc sees (numpy's buffers included).
- **Per image**: the DetectModerationLabels domain path in-process, without an adapter
  (:class:`ModerationService` over the engine: open_nsfw's session, label map, MinConfidence)
  and with one (:class:`AdapterModerator`: the feature extractor's single run, the base
  labels from its scores, a Violence head trained on the cached features). Same images,
  same run, interleaved (ABBA per image) so load from other processes on this box hits both
  alike; p50/p95 over every call after a warm-up. The issue's target: the adapter adds at
  most 10% to the per-image cost.

    .venv/bin/python benchmarks/bench_adapters.py [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.adapter_accuracy import (  # noqa: E402
    LABEL,
    base_confidence,
    clip_frames,
    load_features,
    training_cost,
)
from benchmarks.common import percentiles, save, table  # noqa: E402

TARGET = 0.10  # the adapter may add at most 10% per image
WARM_UP = 3


def _adapter(features: np.ndarray, base: np.ndarray, items: list[Any], backbone: str
             ) -> Any:
    """The Violence adapter trained on adapter_accuracy's training side."""
    from streamproc.training import train_heads

    train = np.array([item.test is False for item in items])
    truth = np.array([item.scene == "head_pose" for item in items], dtype=float)
    return train_heads(features[train], {LABEL: truth[train]}, backbone,
                       base={LABEL: base[train] / 100},
                       groups=[items[i].group for i in np.flatnonzero(train)])


def _timed(call: Callable[[np.ndarray], object], image: np.ndarray) -> float:
    started = time.perf_counter()
    call(image)
    return time.perf_counter() - started


def per_image(engine: Any, heads: Any, images: list[np.ndarray], rounds: int
              ) -> dict[str, list[float]]:
    """Seconds per call of each path, interleaved over the same images."""
    from streamproc.config import load_config
    from streamproc.moderation.adapter import Adapter, AdapterModerator
    from streamproc.moderation.features import extractor_for
    from streamproc.moderation.service import ModerationRequest, ModerationService

    config = load_config(None, {})
    extractor = extractor_for(config.moderation, config.models)
    extractor.load()
    service, moderator = ModerationService(engine), AdapterModerator(engine, extractor)
    adapter, request = Adapter("arn:benchmark", heads), ModerationRequest()
    paths: dict[str, Callable[[np.ndarray], object]] = {
        "without adapter": lambda image: service.detect(image, request),
        "with adapter": lambda image: moderator.detect(image, adapter, 50.0)}
    for image in images[:WARM_UP]:
        for path in paths.values():
            path(image)
    out: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(rounds):
        for index, image in enumerate(images):
            names = list(paths) if (index + round_) % 2 == 0 else list(reversed(paths))
            for name in [*names, *reversed(names)]:  # ABBA
                out[name].append(_timed(paths[name], image))
    return out


def head_cost(heads: Any, features: np.ndarray, base: np.ndarray) -> float:
    """Seconds per image of the head alone (scoring and calibration), one image a call."""
    rows = features[:200].astype(np.float64)
    started = time.perf_counter()
    for i in range(len(rows)):
        heads.confidences(rows[i:i + 1], {LABEL: base[i:i + 1] / 100})
    return (time.perf_counter() - started) / len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the images")
    args = parser.parse_args()
    items, features, nsfw, engine = load_features(True)
    base = base_confidence(engine, nsfw, LABEL)
    truth = np.array([item.scene == "head_pose" for item in items], dtype=float)
    cost = training_cost(features, base, truth, (1_000, 10_000))
    from streamproc.config import load_config
    from streamproc.moderation.features import extractor_for

    config = load_config(None, {})
    heads = _adapter(features, base, items, extractor_for(config.moderation,
                                                          config.models).identity)
    images = [pixels for index, (_, pixels) in enumerate(clip_frames()) if index % 4 == 0]
    timings = per_image(engine, heads, images, args.rounds)
    summary = {name: dict(zip(("p50_ms", "p95_ms"), (1000 * v for v in percentiles(
        values, (50, 95))), strict=True)) | {"calls": len(values)}
        for name, values in timings.items()}
    added = {point: summary["with adapter"][point] / summary["without adapter"][point] - 1
             for point in ("p50_ms", "p95_ms")}
    head_ms = 1000 * head_cost(heads, features, base)
    _report(cost, summary, added, head_ms, len(images))
    save("bench_adapters", {"label": LABEL, "training_cost": cost, "per_image": summary,
                            "images": len(images), "rounds": args.rounds,
                            "added_share": added, "head_only_ms": head_ms,
                            "target_added_share": TARGET,
                            "within_target": all(v <= TARGET for v in added.values())})
    return 0


def _report(cost: list[dict[str, Any]], summary: dict[str, dict[str, float]],
            added: dict[str, float], head_ms: float, images: int) -> None:
    table("training one adapter label (3 calibration folds + final fit)",
          ["images", "replicated with noise", "seconds", "peak traced MiB", "features MiB"],
          [[c["images"], c["replicated_with_noise"], c["seconds"], c["peak_traced_mib"],
            c["features_mib"]] for c in cost])
    table(f"DetectModerationLabels per image, in-process, {images} clip frames "
          "(baseline: without adapter)",
          ["path", "calls", "p50 ms", "p95 ms"],
          [[name, s["calls"], s["p50_ms"], s["p95_ms"]] for name, s in summary.items()])
    table(f"the adapter's added share (target: at most {TARGET:.0%})",
          ["p50", "p95", "head alone, ms per image"],
          [[f"{added['p50_ms']:+.1%}", f"{added['p95_ms']:+.1%}", head_ms]])


if __name__ == "__main__":
    sys.exit(main())
