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
frames differ by a pixel shift; a random frame split would test on the training set).
Debian's images are split by file stem (one icon at 16, 48 and 256 px is one image), the
others by name; both by a hash, so the split is the same on every run.

The adapters and the classifier are trained by the server's own trainer,
:class:`~streamproc.projects.versions_training.VersionTrainer` (manifests in a local object
store, the InputReader, the server's calibration groups, its evaluation and output files):
its result's ``F1Score`` is what is reported. The groups are the server's
(:func:`~streamproc.projects.versions_training.calibration_group`): clip frames are named
``CLIP/NNNNNN.png`` (blocks of 8 numbered frames), a Debian image's line carries its stem as
``"group"``, other stills are groups of one. Only the backbone is memoised: ``read`` gives
each image's row and the features / open_nsfw scores of that row come from the cache
(the same extractor's output); the base labels are computed from them by
:class:`~streamproc.moderation.adapter.AdapterModerator`, as in the server. The same
adapter trained without groups (one image per fold, what the server did before) gives the
calibration comparison: expected calibration error (10 bins) on the test images.

A second adapter case holds out a whole positive clip (head-pose-face-detection-female-and-male)
for testing: a harder test of whether the head learnt the scene rather than the clip.

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


class Memo:
    """The backbone's outputs by image row: ``read`` gives a row, ``extract`` its outputs."""

    def __init__(self, identity: str, name: str, features: np.ndarray,
                 nsfw: np.ndarray) -> None:
        self.identity, self.name = identity, name
        self._features, self._nsfw = features, nsfw

    def extract(self, images: Any) -> Any:
        """The cached features and nsfw scores of the rows ``images`` stand for."""
        from streamproc.moderation.features import FeatureBatch

        rows = [int(image.flat[0]) for image in images]
        return FeatureBatch(self._features[rows], self._nsfw[rows])


def _row_image(row: int) -> np.ndarray:
    return np.full((1, 1, 1), row, np.int64)


def _ref(item: Item) -> str:
    if item.clip is not None:
        return f"s3://bench/{Path(item.clip).stem}/{int(item.name.rpartition('#')[2]):06d}.png"
    return "s3://bench/stills/" + hashlib.sha256(item.name.encode()).hexdigest()[:16] + ".png"


def _line(item: Item, adapter: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"source-ref": _ref(item)}
    if adapter:
        labels = [{"Name": LABEL}] if item.scene == "head_pose" else []
        line["content-moderation-groundtruth"] = {"ModerationLabels": labels}
    else:
        line["scene"] = 1
        line["scene-metadata"] = {"class-name": item.scene, "confidence": 1,
                                  "type": "groundtruth/image-classification",
                                  "job-name": "benchmark", "human-annotated": "yes"}
    if item.scene == "graphic":  # one icon at several sizes: its stem is its group
        line["group"] = item.group
    return line


@dataclass(frozen=True)
class ServerRun:
    """One training through the server's trainer: its command, model and test rows."""

    status: str
    message: str
    result: dict[str, Any]
    model: Any
    seconds: float
    summary: dict[str, Any]  # the evaluation summary file the server wrote


def server_train(items: list[Item], features: np.ndarray, nsfw: np.ndarray, engine: Any,
                 identity: str, sides: tuple[np.ndarray, np.ndarray], adapter: bool,
                 real: tuple[Any, list[np.ndarray], Any] | None = None) -> ServerRun:
    """Train one version with VersionTrainer on ``sides`` (train, test) of the items.

    ``real``: (a loaded extractor, every item's pixels, the live load to yield to): the
    backbone then runs on the pixels instead of the cached features.
    """
    import json
    import threading

    from streamproc.config import load_config
    from streamproc.moderation.adapter import AdapterModerator
    from streamproc.projects.versions import Version
    from streamproc.projects.versions_inputs import InputReader
    from streamproc.projects.versions_outputs import OutputWriter
    from streamproc.projects.versions_training import VersionTrainer
    from streamproc.storage.datasets import DatasetStore
    from streamproc.storage.db import Database
    from streamproc.storage.objects import ObjectStore
    from streamproc.storage.versions import StoredVersion
    from streamproc.training import serial

    train, test = sides
    rows = {_ref(item): row for row, item in enumerate(items)}
    with tempfile.TemporaryDirectory() as root:
        for bucket in ("bench", "out"):
            (Path(root) / bucket).mkdir()
        spec: dict[str, Any] = {"OutputConfig": {"S3Bucket": "out", "S3KeyPrefix": "v"}}
        for key, side in (("TrainingData", train), ("TestingData", test)):
            text = "".join(json.dumps(_line(items[i], adapter)) + "\n"
                           for i in np.flatnonzero(side))
            (Path(root) / "bench" / f"{key}.manifest").write_text(text)
            spec[key] = {"Assets": [{"GroundTruthManifest": {
                "S3Object": {"Bucket": "bench", "Name": f"{key}.manifest"}}}]}
        if adapter:
            spec["FeatureConfig"] = {"ContentModeration": {"ConfidenceThreshold": THRESHOLD}}
        config = load_config(None, {"objects.local_root": root})
        db = Database(Path(root) / "db.sqlite")
        db.open()
        try:
            objects = ObjectStore(config.objects)
            backbone: Any = Memo(identity, "open_nsfw", features, nsfw)
            read: Any = lambda ref: _row_image(rows[f"s3://{ref.bucket}/{ref.name}"])  # noqa: E731
            live = None
            if real is not None:
                backbone, pixels, live = real
                read = lambda ref: pixels[rows[f"s3://{ref.bucket}/{ref.name}"]]  # noqa: E731
            trainer = VersionTrainer(
                InputReader(DatasetStore(db), objects, config.projects),
                OutputWriter(objects, engine.model_version), backbone, read,
                AdapterModerator(engine, backbone).inputs, config.projects, live=live,
                beside_live=config.jobs.batch_frames_beside_live)
            feature = "CONTENT_MODERATION" if adapter else "CUSTOM_LABELS"
            version = Version.of(StoredVersion("bench", 1, "v1", 1, feature,
                                               "TRAINING_IN_PROGRESS", "", 1, "local", spec,
                                               {}, None, None))
            started = time.perf_counter()
            done = trainer.train(version, "benchmark", threading.Event())
            seconds = time.perf_counter() - started
        finally:
            db.close()
        result = done.result or {}
        where = (result.get("EvaluationResult") or {}).get("Summary", {}).get("S3Object")
        summary = json.loads((Path(root) / where["Bucket"] / where["Name"]).read_text()) \
            if where else {}
    model = serial.loads(done.model, identity) if done.model is not None else None
    return ServerRun(done.status.value, done.message, result, model, seconds, summary)


def calibration_error(truth: np.ndarray, confidence: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |observed rate - mean confidence| over 10 bins, weighted."""
    p = confidence / 100.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(truth[inside].mean() - p[inside].mean())
    return float(error)


def base_confidence(engine: Any, nsfw: np.ndarray, label: str) -> np.ndarray:
    """The base pack's Confidence for ``label`` per image (0 where it does not emit it)."""
    out = []
    for score in nsfw:
        labels = engine.labels_of({"open_nsfw": {"sfw": 1 - float(score),
                                                 "nsfw": float(score)}}).labels
        out.append(max([x.confidence for x in labels if x.name == label], default=0.0))
    return np.array(out)


def adapter_case(items: list[Item], features: np.ndarray, nsfw: np.ndarray, engine: Any,
                 identity: str, test: np.ndarray, train: np.ndarray) -> dict[str, Any]:
    """Train the Violence adapter through the server on ``train``; base and adapter on ``test``."""
    from streamproc.training import train_heads
    from streamproc.training.evaluation import counts

    truth = np.array([item.scene == "head_pose" for item in items], dtype=float)
    run = server_train(items, features, nsfw, engine, identity, (train, test), adapter=True)
    if run.model is None:
        msg = f"the server's training failed: {run.message}"
        raise RuntimeError(msg)
    base = base_confidence(engine, nsfw, LABEL)
    adapter = run.model.confidences(features[test], {LABEL: base[test] / 100})[LABEL]
    ungrouped = train_heads(features[train], {LABEL: truth[train]}, identity,
                            base={LABEL: base[train] / 100})
    plain = ungrouped.confidences(features[test], {LABEL: base[test] / 100})[LABEL]
    at = {name: counts(truth[test], values, THRESHOLD)
          for name, values in (("base", base[test]), ("adapter", adapter))}
    return {"train_images": int(train.sum()), "train_positives": int(truth[train].sum()),
            "test_images": int(test.sum()), "test_positives": int(truth[test].sum()),
            "base_f1": at["base"].f1, "adapter_f1": run.result["EvaluationResult"]["F1Score"],
            "adapter_f1_recomputed": at["adapter"].f1,
            "adapter_counts": at["adapter"].wire(), "base_counts": at["base"].wire(),
            "train_seconds": run.seconds, "trained_by": "VersionTrainer",
            "summary_f1": {"F1Score": run.result["EvaluationResult"]["F1Score"]},
            "calibration_error": {"server_groups": calibration_error(truth[test], adapter),
                                  "no_groups": calibration_error(truth[test], plain)},
            "misses": [items[i].name for i, c in zip(np.flatnonzero(test), adapter,
                                                     strict=True)
                       if (c >= THRESHOLD) != (truth[i] > 0.5)][:20]}


def custom_labels_case(items: list[Item], features: np.ndarray, nsfw: np.ndarray,
                       engine: Any, identity: str, test: np.ndarray, train: np.ndarray
                       ) -> dict[str, Any]:
    """Train the five-scene classifier through the server; held-out accuracy and summary."""
    from streamproc.training.classifier import predict
    from streamproc.training.evaluation import accuracy

    run = server_train(items, features, nsfw, engine, identity, (train, test), adapter=False)
    if run.model is None:
        msg = f"the server's training failed: {run.message}"
        raise RuntimeError(msg)
    scenes = [item.scene for item in items]
    truth = [scenes[i] for i in np.flatnonzero(test)]
    predicted = predict(run.model, features[test])
    per_class = {name: {"test_images": truth.count(name), "correct": sum(
        t == p == name for t, p in zip(truth, predicted, strict=True))}
        for name in run.model.labels}
    aggregated = run.summary["AggregatedEvaluationResults"]
    return {"classes": list(run.model.labels), "train_images": int(train.sum()),
            "test_images": int(test.sum()), "accuracy": accuracy(truth, predicted),
            "per_class": per_class, "train_seconds": run.seconds,
            "trained_by": "VersionTrainer",
            "server_f1": run.result["EvaluationResult"]["F1Score"],
            "aggregated": {k: v for k, v in aggregated.items() if k != "ConfusionMatrix"},
            "confusion": aggregated.get("ConfusionMatrix")}


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
    from streamproc.config import load_config
    from streamproc.moderation.features import extractor_for

    config = load_config(None, {})
    identity = extractor_for(config.moderation, config.models).identity
    base = base_confidence(engine, nsfw, LABEL)
    test = np.array([item.test is True for item in items])
    train = np.array([item.test is False for item in items])
    time_split = adapter_case(items, features, nsfw, engine, identity, test, train)
    held = np.array([item.clip == HELD_OUT_CLIP for item in items])
    clip_split = adapter_case(items, features, nsfw, engine, identity,
                              (test & ~held) | held, train & ~held)
    custom = custom_labels_case(items, features, nsfw, engine, identity, test, train)
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
