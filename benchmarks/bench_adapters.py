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
- **Live beside a training**: a live stream's latency (one clip frame every
  :data:`LIVE_PERIOD_S` through the face engine's detect + embed, the shared test_mfn
  pack: what a face-search stream processor runs per frame) alone, beside trainings that
  do not yield (the server before the fix) and beside trainings that yield (the server:
  the trainer waits while a live frame is being analysed, and holds batches to
  ``jobs.batch_frames_beside_live`` while a live session is attached). The trainings are
  real: VersionTrainer, the backbone run on clip frames, one after another for the whole
  phase. Phases alternate in slices of :data:`SLICE_S` (same run, same frames); latency is
  from a frame's due time to its analysis' end, p50/p95 over each condition's frames.

    .venv/bin/python benchmarks/bench_adapters.py [--rounds N] [--live-slices N] [--only-live]
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
    server_train,
    training_cost,
)
from benchmarks.common import SHARED, percentiles, save, table  # noqa: E402

TARGET = 0.10  # the adapter may add at most 10% per image
WARM_UP = 3
LIVE_PERIOD_S = 0.2  # one live frame every 200 ms (5 fps)
FACE_PACK = "test_mfn"  # the shared face pack the other benchmarks run
SLICE_S = 8.0  # one slice of a condition; each condition gets `--live-slices` of them
CONDITIONS = ("live alone", "beside training, not yielding", "beside training, yielding")


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


class LiveStream:
    """A live stream through the face engine; its own LiveLoad while a frame is analysed."""

    def __init__(self, engine: Any, frames: list[np.ndarray]) -> None:
        self._engine, self._frames = engine, frames
        self._busy = False  # read by the trainer's thread; a bool needs no lock

    def live_attached(self) -> bool:
        """The stream is attached for the whole measurement."""
        return True

    def live_waiting(self) -> bool:
        """Whether a live frame is being analysed."""
        return self._busy

    def run(self, seconds: float) -> list[float]:
        """Latency (s) of each frame due every LIVE_PERIOD_S for ``seconds``."""
        out = []
        start = time.perf_counter()
        for n in range(int(seconds / LIVE_PERIOD_S)):
            due = start + n * LIVE_PERIOD_S
            time.sleep(max(0.0, due - time.perf_counter()))
            self._busy = True
            frame = self._frames[n % len(self._frames)]
            self._engine.embed(frame, self._engine.detect(frame))
            self._busy = False
            out.append(time.perf_counter() - due)
        return out


def live_beside_training(moderation: Any, slices: int) -> dict[str, Any]:
    """Live latency alone and beside real trainings (not yielding / yielding), same run."""
    import threading

    from streamproc.config import load_config
    from streamproc.faces.engine import FaceEngine
    from streamproc.moderation.features import extractor_for

    config = load_config(None, {})
    faces = FaceEngine(load_config(None, {"models.root": str(SHARED),
                                          "models.pack": FACE_PACK}).models)
    faces.load()
    extractor = extractor_for(config.moderation, config.models)
    extractor.load()
    pairs = list(clip_frames())
    pixels = [frame for _, frame in pairs]
    chosen = np.array([item.test is not None and index % 2 == 0
                       for index, (item, _) in enumerate(pairs)])
    clip_items = [item for item, _ in pairs]
    sides = (chosen & np.array([i.test is False for i in clip_items]),
             chosen & np.array([i.test is True for i in clip_items]))
    frames = [pixels[i] for i in range(0, len(pixels), 7)]
    stream = LiveStream(faces, frames)
    stream.run(1.0)  # warm-up
    latency: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    trainings: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    for _ in range(slices):
        for name in CONDITIONS:
            stop = threading.Event()
            live = stream if name.endswith(", yielding") else None

            def train(name: str = name, live: Any = live, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    run = server_train(clip_items, np.zeros((0, 1)), np.zeros(0), moderation,
                                       extractor.identity, sides, adapter=True,
                                       real=(extractor, pixels, live))
                    if run.status != "TRAINING_COMPLETED":
                        raise RuntimeError(run.message)
                    trainings[name].append(run.seconds)

            worker = threading.Thread(target=train) if name != "live alone" else None
            if worker is not None:
                worker.start()
            latency[name] += stream.run(SLICE_S)
            stop.set()
            if worker is not None:
                worker.join()
    return {"period_ms": 1000 * LIVE_PERIOD_S, "slice_s": SLICE_S, "slices": slices,
            "training_images": int(sides[0].sum() + sides[1].sum()),
            "conditions": {name: dict(zip(("p50_ms", "p95_ms"), (1000 * v for v in percentiles(
                latency[name], (50, 95))), strict=True)) | {
                "frames": len(latency[name]), "trainings_finished": len(trainings[name]),
                "training_s_mean": float(np.mean(trainings[name])) if trainings[name] else None}
                for name in CONDITIONS}}


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
    parser.add_argument("--live-slices", type=int, default=2,
                        help="slices of each live condition")
    parser.add_argument("--only-live", action="store_true",
                        help="measure live beside a training only (other figures kept)")
    args = parser.parse_args()
    if args.only_live:
        return _only_live(args.live_slices)
    items, features, nsfw, engine = load_features(True)
    live = live_beside_training(engine, args.live_slices)  # first: the box is quietest
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
    _report_live(live)
    save("bench_adapters", {"label": LABEL, "training_cost": cost, "per_image": summary,
                            "images": len(images), "rounds": args.rounds,
                            "added_share": added, "head_only_ms": head_ms,
                            "target_added_share": TARGET,
                            "within_target": all(v <= TARGET for v in added.values()),
                            "live_beside_training": live})
    return 0


def _only_live(slices: int) -> int:
    """Re-measure live beside a training; the file's other figures are kept as they were."""
    import json

    from benchmarks.common import RESULTS

    _, _, _, engine = load_features(True)
    live = live_beside_training(engine, slices)
    _report_live(live)
    path = RESULTS / "bench_adapters.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.pop("machine", None)
    save("bench_adapters", {**data, "live_beside_training": live})
    return 0


def _report_live(live: dict[str, Any]) -> None:
    table(f"a live stream's latency (a frame every {live['period_ms']:g} ms, face detect + "
          "embed) beside trainings",
          ["condition", "frames", "p50 ms", "p95 ms", "trainings finished", "training s"],
          [[name, r["frames"], r["p50_ms"], r["p95_ms"], r["trainings_finished"],
            r["training_s_mean"]] for name, r in live["conditions"].items()])


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
