"""Each pipeline stage on its own, on the sample clips.

    .venv/bin/python benchmarks/bench_stages.py [--pack test_mfn] [--repeat 3]

* PyAV decode: frames/s of the clips decoded to BGR arrays, with frame threading off
  (thread_type NONE) and on (AUTO), and without the BGR conversion.
* Detection: ms per frame at the configured input (fitted to the frame's aspect, the
  default) against the 640x640 letterbox insightface uses; then per-frame detection (the
  published graph, one image per call: the baseline) against batched detection (the graph
  given a batch axis at load, 8 and 32 frames per call), the best of ``--repeat`` rounds
  run in turn. This is the measurement behind ``detect_batching: auto`` on CPU.
* Embedding: faces/s at batch 1, 8, 32, 64 of aligned crops from the clips.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, VIDEO, save, table  # noqa: E402
from streamproc.config import load_config  # noqa: E402
from streamproc.faces.detector import DetectorSettings  # noqa: E402
from streamproc.faces.engine import FaceEngine  # noqa: E402

warnings.filterwarnings("ignore", message="`estimate` is deprecated")
CLIPS = ["classroom.mp4", "head-pose-face-detection-female-and-male.mp4",
         "face-demographics-walking.mp4"]


def decode_rate(thread_type: str, convert: bool, repeat: int) -> float:
    import av

    frames, started = 0, time.perf_counter()
    for _ in range(repeat):
        for clip in CLIPS:
            with av.open(str(VIDEO / clip)) as container:
                stream = container.streams.video[0]
                stream.thread_type = thread_type
                for frame in container.decode(stream):
                    if convert:
                        frame.to_ndarray(format="bgr24")
                    frames += 1
    return frames / (time.perf_counter() - started)


def clip_frames() -> list[np.ndarray]:
    import av

    images = []
    for clip in CLIPS:
        with av.open(str(VIDEO / clip)) as container:
            images += [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    return images


def batching_rows(pack: str, images: list[np.ndarray], repeat: int) -> list[list[Any]]:
    """Per-frame vs batched detection, interleaved so that load from others hits both."""
    engines = {}
    for mode in ("per_frame", "batched"):
        engines[mode] = FaceEngine(load_config(None, {
            "models.root": str(SHARED), "models.pack": pack,
            "models.detect_batching": mode}).models)
        engines[mode].load()
    variants = {"per frame (published graph, 1 frame/call)": (engines["per_frame"], 1),
                "batched graph, 8 frames/call": (engines["batched"], 8),
                "batched graph, 32 frames/call": (engines["batched"], 32)}
    best: dict[str, float] = {}
    found: dict[str, int] = {}
    for _ in range(max(repeat, 1)):
        for label, (engine, batch) in variants.items():
            started = time.perf_counter()
            faces = [engine.detector.detect_many(images[i:i + batch])
                     for i in range(0, len(images), batch)]
            per = (time.perf_counter() - started) / len(images) * 1000
            best[label] = min(best.get(label, per), per)
            found[label] = sum(len(f) for chunk in faces for f in chunk)
    base = best["per frame (published graph, 1 frame/call)"]
    return [["detect", label, f"{per:.2f} ms/frame ({base / per:.2f}x per frame), "
             f"{found[label]} faces"] for label, per in best.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pack", default="test_mfn")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[list[Any]] = []
    for thread_type in ("NONE", "AUTO"):
        for convert in (False, True):
            rows.append(["decode", f"thread_type={thread_type}" + (" + to BGR" if convert
                                                                   else ""),
                         f"{decode_rate(thread_type, convert, args.repeat):,.0f} frames/s"])
    engine = FaceEngine(load_config(None, {"models.root": str(SHARED),
                                           "models.pack": args.pack}).models)
    engine.load()
    images = clip_frames()
    faces_found = {}
    for label, size in (("fitted to frame (default)", None), ("640x640 letterbox", (640, 640))):
        engine.detector.settings = DetectorSettings(input_size=size)
        engine.detector.detect(images[0])
        started, found = time.perf_counter(), 0
        for _ in range(args.repeat):
            for image in images:
                found += len(engine.detector.detect(image))
        per = (time.perf_counter() - started) / (len(images) * args.repeat) * 1000
        faces_found[label] = found / args.repeat
        w, h = engine.detector.input_size_for(images[0].shape[1], images[0].shape[0])
        rows.append(["detect", f"{label}: {w}x{h} input", f"{per:.2f} ms/frame, "
                     f"{found / args.repeat:.0f} faces in {len(images)} frames"])
    rows += batching_rows(args.pack, images, args.repeat)
    engine.detector.settings = DetectorSettings()
    crops = [engine.embedder.align(img, f.landmarks) for img in images
             for f in engine.detector.detect(img)]
    crops = (crops * (256 // max(len(crops), 1) + 1))[:256]
    for batch in (1, 8, 32, 64):
        engine.embedder._infer(np.stack(crops[:batch]))
        started = time.perf_counter()
        for _ in range(args.repeat):
            for i in range(0, len(crops), batch):
                engine.embedder._infer(np.stack(crops[i:i + batch]))
        rate = len(crops) * args.repeat / (time.perf_counter() - started)
        rows.append(["embed", f"batch {batch}", f"{rate:,.0f} faces/s "
                     f"({1000 / rate:.2f} ms/face)"])
    text = table(f"Stages on {len(images)} frames of {len(CLIPS)} clips (480x270), pack "
                 f"{args.pack}, {engine.providers[0]}", ["stage", "variant", "result"], rows)
    save("stages", {"pack": args.pack, "table": text, "rows": rows,
                    "faces_found": faces_found})


if __name__ == "__main__":
    main()
