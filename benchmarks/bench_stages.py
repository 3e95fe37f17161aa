"""Each pipeline stage on its own, on the sample clips.

    .venv/bin/python benchmarks/bench_stages.py [--pack test_mfn] [--repeat 3]

* PyAV decode: frames/s of the clips decoded to BGR arrays, with frame threading off
  (thread_type NONE) and on (AUTO), and without the BGR conversion.
* Detection: ms per frame at the configured input (fitted to the frame's aspect, the
  default) against the 640x640 letterbox insightface uses. The SCRFD packs have no batch
  axis (one image per call), so "batched" detection is not measured: there is nothing to
  batch.
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
    rows.append(["detect", "batched", "n/a: the SCRFD packs take one image per call"])
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
