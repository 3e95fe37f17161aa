"""The moderation pack over every benign image on this machine: what it flags at MinConfidence 50.

Sources (none is copied into the repository):
- ``shared``: the photos of shared/data/images;
- ``video``: every frame of the clips in shared/data/video (PyAV);
- ``skimage``: scikit-image's bundled sample images (colour and grey; those needing a
  download are skipped);
- ``debian``: every JPEG/PNG under /usr/share (icons, documentation figures), decoded as the
  API decodes (``decode_image``: alpha dropped by OpenCV), skipping those under Rekognition's
  80 px minimum.

    .venv/bin/python benchmarks/moderation_accuracy.py [--pack open_nsfw] [--min-confidence 50]
        [--limit N] [--save NAME]

Printed per source: images, labels emitted at the threshold, the largest confidence, raw score
percentiles per model output (the data behind the calibration knots), and each false positive.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, VIDEO, save, table  # noqa: E402

MIN_SIDE = 80  # Rekognition refuses smaller images (InvalidParameterException)
Image = tuple[str, np.ndarray]  # (where it came from, BGR uint8 pixels)


def shared_images() -> Iterator[Image]:
    """The photos under shared/data/images."""
    import cv2

    for path in sorted((SHARED / "data" / "images").rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                yield str(path.relative_to(SHARED)), image


def video_frames() -> Iterator[Image]:
    """Every frame of every shared clip."""
    import av

    for clip in sorted(VIDEO.glob("*.mp4")):
        with av.open(str(clip)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                yield f"{clip.name}#{index}", frame.to_ndarray(format="bgr24")


def skimage_images() -> Iterator[Image]:
    """scikit-image's sample images that ship with it (2-D grey or RGB)."""
    import cv2
    import skimage.data

    names = sorted(n for n in dir(skimage.data) if not n.startswith("_") and n not in (
        "data_dir", "download_all", "file_hash", "lbp_frontal_face_cascade_filename"))
    for name in names:
        try:
            pixels = np.asarray(getattr(skimage.data, name)())
        except Exception:  # noqa: BLE001 - those that need a download (no network here)
            continue
        image = _as_bgr(pixels, cv2)
        if image is not None:
            yield f"skimage.data.{name}", image


def _as_bgr(pixels: np.ndarray, cv2: Any) -> np.ndarray | None:
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        return None  # volumes, multi-channel microscopy, image collections
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        pixels = ((pixels - low) / max(high - low, 1e-9) * 255).astype(np.uint8)
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    code = cv2.COLOR_RGBA2BGR if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(pixels, code)


def debian_images() -> Iterator[Image]:
    """JPEG and PNG files under /usr/share, decoded as the API would."""
    from streamproc.errors import StreamprocError
    from streamproc.faces.images import decode_image

    for path in sorted(Path("/usr/share").rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or not path.is_file():
            continue
        try:
            yield str(path), decode_image(path.read_bytes(), 80_000_000, MIN_SIDE)
        except (StreamprocError, OSError):
            continue  # under 80 px, or not really JPEG/PNG


SOURCES = {"shared": shared_images, "video": video_frames, "skimage": skimage_images,
           "debian": debian_images}


def _batches(images: Iterator[Image], size: int) -> Iterator[list[Image]]:
    batch: list[Image] = []
    for item in images:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_source(engine: Any, images: Iterator[Image], threshold: float, limit: int | None
               ) -> dict[str, Any]:
    """Labels and raw scores for one source."""
    from streamproc.moderation.types import at_least

    count, best = 0, 0.0
    flagged: list[tuple[str, list[tuple[str, float]]]] = []
    raw: dict[str, list[tuple[float, str]]] = {}
    for batch in _batches(images, 8):
        if limit is not None and count >= limit:
            break
        for (where, _), scores in zip(batch, engine.scores_many([i for _, i in batch]),
                                      strict=True):
            for model, outputs in scores.items():
                for output, score in outputs.items():
                    raw.setdefault(f"{model}:{output}", []).append((score, where))
            labels = engine.labels_of(scores).labels
            count += 1
            best = max([best, *(label.confidence for label in labels)])
            hits = at_least(labels, threshold)
            if hits:
                flagged.append((where, [(h.name, round(h.confidence, 1)) for h in hits]))
    return {"images": count, "best": best, "flagged": flagged, "raw": raw}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", default=None, help="moderation pack (default: configured)")
    parser.add_argument("--min-confidence", type=float, default=50.0)
    parser.add_argument("--limit", type=int, default=None, help="images per source at most")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--save", default=None, help="write benchmarks/results/NAME.json")
    args = parser.parse_args()

    from streamproc.config import load_config
    from streamproc.moderation.engine import ModerationEngine

    config = load_config(None, {})
    engine = ModerationEngine(config.moderation, config.models, args.pack)
    engine.load()
    results = {name: run_source(engine, SOURCES[name](), args.min_confidence, args.limit)
               for name in args.sources.split(",")}
    _report(engine, results, args.min_confidence)
    if args.save:
        save(args.save, {"pack": engine.pack, "min_confidence": args.min_confidence,
                         "sources": {k: {**v, "raw": _summary(v["raw"])}
                                     for k, v in results.items()}})
    return 0


def _summary(raw: dict[str, list[tuple[float, str]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, pairs in raw.items():
        values = [score for score, _ in pairs]
        top = sorted(pairs, reverse=True)[:3]
        out[key] = {"n": len(values), "p50": float(np.percentile(values, 50)),
                    "p99": float(np.percentile(values, 99)), "max": float(max(values)),
                    "top": [(round(score, 4), where) for score, where in top]}
    return out


def _report(engine: Any, results: dict[str, dict[str, Any]], threshold: float) -> None:
    rows = [[name, r["images"], len(r["flagged"]), round(r["best"], 2)]
            for name, r in results.items()]
    table(f"{engine.model_version}: benign images, labels at MinConfidence {threshold:g}",
          ["source", "images", f"flagged >= {threshold:g}", "max confidence"], rows)
    raw_rows = [[name, key, s["n"], s["p50"], s["p99"], s["max"]]
                for name, r in results.items() for key, s in _summary(r["raw"]).items()]
    table("raw model scores (benign)", ["source", "output", "n", "p50", "p99", "max"], raw_rows)
    for name, r in results.items():
        for key, s in _summary(r["raw"]).items():
            print(f"highest [{name}] {key}: {s['top']}")
    for name, r in results.items():
        for where, hits in r["flagged"]:
            print(f"false positive [{name}] {where}: {hits}")


if __name__ == "__main__":
    sys.exit(main())
