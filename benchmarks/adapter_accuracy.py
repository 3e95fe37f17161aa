"""Adapters and Custom Labels heads on open_nsfw features, measured on held-out real images.

Benign proxy concepts the base model cannot know, from images on this machine:
- **Adapter**: the v7 top-level label ``Violence`` is assigned to every frame of the three
  head-pose clips of shared/data/video (a studio head-pose recording stands in for the
  concept); the other clips' frames, scikit-image's sample images, shared/data photos and
  Debian's images under /usr/share are ``[]``. The base pack (open_nsfw) never emits
  Violence, so its F1 is what missing a concept costs.
- **Custom Labels**: five classes, ``classroom`` / ``walking`` / ``head_pose`` (by clip),
  ``photo`` (scikit-image and shared photos), ``graphic`` (Debian's icons and figures).

Splits keep near-identical images on one side. Clip frames are split by time: in each clip
the first 60% of frames train, the next 10% are dropped, the last 30% test (neighbouring
frames differ by a pixel shift; a random frame split would test on the training set); the
training frames are grouped in blocks of 8 for the calibration folds. Debian's images are
split by file stem (one icon at 16, 48 and 256 px is one image), the others by name; both
by a hash, so the split is the same on every run. A second adapter case holds out a whole
positive clip (head-pose-face-detection-female-and-male) for testing: a harder test of
whether the head learnt the scene rather than the clip.

Training cost: one adapter label on 1,000 and 10,000 images' features. 1,000 are real images
(of the ~1,000 here); 10,000 replicate real features with Gaussian noise (5% of each
feature's spread): the cost depends on the count and dimension, not on the images. Peak
memory is what tracemalloc sees (numpy's buffers included), on top of the features.
Features are cached in the temp folder (an .npz keyed by the backbone identity).

    .venv/bin/python benchmarks/adapter_accuracy.py [--no-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import VIDEO, save, table  # noqa: E402
from benchmarks.moderation_accuracy import (  # noqa: E402
    debian_images,
    shared_images,
    skimage_images,
)

POSITIVE_CLIPS = ("head-pose-face-detection-female-and-male.mp4",
                  "head-pose-face-detection-female.mp4", "head-pose-face-detection-male.mp4")
HELD_OUT_CLIP = POSITIVE_CLIPS[0]
LABEL = "Violence"
THRESHOLD = 50.0
BLOCK = 8  # frames per calibration group (0.6 s at 12.5 fps)


@dataclass(frozen=True)
class Item:
    """One image: where from, its Custom Labels class, split side and calibration group."""

    name: str
    clip: str | None  # the clip a frame is from
    scene: str
    test: bool | None  # None: dropped (the gap between a clip's train and test frames)
    group: str


def _hashed(key: str, test_share: float = 0.3) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32 < test_share


def clip_frames() -> Iterator[tuple[Item, np.ndarray]]:
    """Every frame of every clip, split by time."""
    import av

    for clip in sorted(VIDEO.glob("*.mp4")):
        with av.open(str(clip)) as container:
            frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        scene = "head_pose" if clip.name in POSITIVE_CLIPS else clip.stem.split("-")[0]
        scene = "walking" if scene == "face" else scene
        for index, pixels in enumerate(frames):
            position = index / len(frames)
            test = None if 0.6 <= position < 0.7 else position >= 0.7
            yield Item(f"{clip.name}#{index}", clip.name, scene, test,
                       f"{clip.name}#{index // BLOCK}"), pixels


def still_images() -> Iterator[tuple[Item, np.ndarray]]:
    """scikit-image, shared photos and Debian's images, split by a hash of their key."""
    for where, pixels in [*skimage_images(), *shared_images()]:
        yield Item(where, None, "photo", _hashed(where), where), pixels
    for where, pixels in debian_images():
        stem = Path(where).stem
        yield Item(where, None, "graphic", _hashed(stem), stem), pixels


def load_features(use_cache: bool) -> tuple[list[Item], np.ndarray, np.ndarray, Any]:
    """Items, their features and nsfw scores, and the engine (features cached in /tmp)."""
    from streamproc.config import load_config
    from streamproc.moderation.engine import ModerationEngine
    from streamproc.moderation.features import extractor_for

    config = load_config(None, {})
    extractor = extractor_for(config.moderation, config.models)
    engine = ModerationEngine(config.moderation, config.models, "open_nsfw")
    engine.load()
    key = hashlib.sha256(extractor.identity.encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"streamproc-adapter-features-{key}.npz"
    pairs = [*clip_frames(), *still_images()]
    items = [item for item, _ in pairs]
    if use_cache and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if list(stored["names"]) == [item.name for item in items]:
            print(f"features from {cache}", flush=True)
            return items, stored["features"], stored["nsfw"], engine
    extractor.load()
    started = time.perf_counter()
    batch = extractor.extract([pixels for _, pixels in pairs])
    print(f"features of {len(items)} images in {time.perf_counter() - started:.1f} s",
          flush=True)
    np.savez(cache, names=np.array([item.name for item in items]), features=batch.features,
             nsfw=batch.nsfw)
    return items, batch.features, batch.nsfw, engine


def base_confidence(engine: Any, nsfw: np.ndarray, label: str) -> np.ndarray:
    """The base pack's Confidence for ``label`` per image (0 where it does not emit it)."""
    out = []
    for score in nsfw:
        labels = engine.labels_of({"open_nsfw": {"sfw": 1 - float(score),
                                                 "nsfw": float(score)}}).labels
        out.append(max([x.confidence for x in labels if x.name == label], default=0.0))
    return np.array(out)


def adapter_case(items: list[Item], features: np.ndarray, base: np.ndarray,
                 test: np.ndarray, train: np.ndarray) -> dict[str, Any]:
    """Train the Violence adapter on ``train``, evaluate base and adapter on ``test``."""
    from streamproc.training import train_heads
    from streamproc.training.evaluation import counts
    from streamproc.training.summaries import Details, LabelScores, adapter_summary

    truth = np.array([item.scene == "head_pose" for item in items], dtype=float)
    groups = [items[i].group for i in np.flatnonzero(train)]
    started = time.perf_counter()
    model = train_heads(features[train], {LABEL: truth[train]}, "open_nsfw-features",
                        base={LABEL: base[train] / 100}, groups=groups)
    seconds = time.perf_counter() - started
    adapter = model.confidences(features[test], {LABEL: base[test] / 100})[LABEL]
    scores = [LabelScores(LABEL, truth[test], base[test], adapter)]
    summary = adapter_summary(scores, THRESHOLD, Details(
        "measured", (LABEL,), int(test.sum()), int(train.sum()), "benchmark"))
    at = {name: counts(truth[test], values, THRESHOLD)
          for name, values in (("base", base[test]), ("adapter", adapter))}
    return {"train_images": int(train.sum()), "train_positives": int(truth[train].sum()),
            "test_images": int(test.sum()), "test_positives": int(truth[test].sum()),
            "base_f1": at["base"].f1, "adapter_f1": at["adapter"].f1,
            "adapter_counts": at["adapter"].wire(), "base_counts": at["base"].wire(),
            "train_seconds": seconds, "summary_f1": summary["AggregatedEvaluationResults"],
            "misses": [items[i].name for i, c in zip(np.flatnonzero(test), adapter,
                                                     strict=True)
                       if (c >= THRESHOLD) != (truth[i] > 0.5)][:20]}


def custom_labels_case(items: list[Item], features: np.ndarray, test: np.ndarray,
                       train: np.ndarray) -> dict[str, Any]:
    """Train the five-scene classifier; held-out accuracy and the Custom Labels summary."""
    from streamproc.training.classifier import class_confidences, predict, train_classifier
    from streamproc.training.evaluation import accuracy
    from streamproc.training.summaries import Details, custom_labels_summary

    scenes = [item.scene for item in items]
    started = time.perf_counter()
    model = train_classifier(features[train], [scenes[i] for i in np.flatnonzero(train)],
                             "open_nsfw-features",
                             groups=[items[i].group for i in np.flatnonzero(train)])
    seconds = time.perf_counter() - started
    truth = [scenes[i] for i in np.flatnonzero(test)]
    predicted = predict(model, features[test])
    summary = custom_labels_summary(
        truth, predicted, class_confidences(model, features[test]), model.labels,
        [50.0] * len(model.labels), Details("measured", model.labels, int(test.sum()),
                                            int(train.sum()), "benchmark"))
    per_class = {name: {"test_images": truth.count(name), "correct": sum(
        t == p == name for t, p in zip(truth, predicted, strict=True))} for name in model.labels}
    return {"classes": list(model.labels), "train_images": int(train.sum()),
            "test_images": int(test.sum()), "accuracy": accuracy(truth, predicted),
            "per_class": per_class, "train_seconds": seconds,
            "aggregated": {k: v for k, v in summary["AggregatedEvaluationResults"].items()
                           if k != "ConfusionMatrix"},
            "confusion": summary["AggregatedEvaluationResults"]["ConfusionMatrix"]}


def training_cost(features: np.ndarray, base: np.ndarray, truth: np.ndarray,
                  sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Time and peak traced memory of one adapter label's training at each size."""
    from streamproc.training import train_heads

    rng = np.random.default_rng(0)
    spread = features.std(axis=0) * 0.05
    out = []
    for size in sizes:
        replicated = size > len(features)
        if replicated:
            pick = rng.integers(0, len(features), size=size)
            x = features[pick] + rng.normal(size=(size, features.shape[1])) * spread
        else:
            pick = rng.permutation(len(features))[:size]
            x = features[pick].astype(np.float64)
        tracemalloc.start()
        started = time.perf_counter()
        model = train_heads(x, {LABEL: truth[pick]}, "cost", base={LABEL: base[pick] / 100})
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.append({"images": size, "replicated_with_noise": replicated, "seconds": seconds,
                    "newton_steps_final_fit": model.heads[0].fit.iterations,
                    "peak_traced_mib": peak / 2**20, "features_mib": x.nbytes / 2**20})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-cache", action="store_true", help="extract features again")
    args = parser.parse_args()
    items, features, nsfw, engine = load_features(not args.no_cache)
    base = base_confidence(engine, nsfw, LABEL)
    test = np.array([item.test is True for item in items])
    train = np.array([item.test is False for item in items])
    time_split = adapter_case(items, features, base, test, train)
    held = np.array([item.clip == HELD_OUT_CLIP for item in items])
    clip_split = adapter_case(items, features, base, (test & ~held) | held, train & ~held)
    custom = custom_labels_case(items, features, test, train)
    truth = np.array([item.scene == "head_pose" for item in items], dtype=float)
    cost = training_cost(features, base, truth, (1_000, 10_000))
    _report(time_split, clip_split, custom, cost)
    save("adapter_accuracy", {
        "label": LABEL, "threshold": THRESHOLD, "images": len(items),
        "sources": {scene: sum(item.scene == scene for item in items)
                    for scene in sorted({item.scene for item in items})},
        "dropped_gap_frames": sum(item.test is None for item in items),
        "adapter_time_split": time_split, "adapter_clip_held_out": clip_split,
        "custom_labels": custom, "training_cost": cost})
    return 0


def _report(time_split: dict[str, Any], clip_split: dict[str, Any], custom: dict[str, Any],
            cost: list[dict[str, Any]]) -> None:
    table(f"{LABEL} adapter vs the base model, held-out images, ConfidenceThreshold 50",
          ["split", "train (pos)", "test (pos)", "base F1", "adapter F1", "train s"],
          [[name, f"{r['train_images']} ({r['train_positives']})",
            f"{r['test_images']} ({r['test_positives']})", r["base_f1"], r["adapter_f1"],
            r["train_seconds"]]
           for name, r in (("time blocks", time_split), ("held-out clip", clip_split))])
    table("Custom Labels, five scene classes, held-out images",
          ["classes", "train", "test", "accuracy", "macro F1", "train s"],
          [[len(custom["classes"]), custom["train_images"], custom["test_images"],
            custom["accuracy"], custom["aggregated"]["F1Score"], custom["train_seconds"]]])
    table("training one adapter label (3 calibration folds + final fit)",
          ["images", "replicated", "seconds", "peak traced MiB", "features MiB"],
          [[c["images"], c["replicated_with_noise"], c["seconds"], c["peak_traced_mib"],
            c["features_mib"]] for c in cost])


if __name__ == "__main__":
    sys.exit(main())
