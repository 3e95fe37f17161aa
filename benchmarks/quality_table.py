"""How many faces of shared/data each QualityFilter level indexes, and why the rest are not.

Runs the configured pack's detector (with Confidence, pose and quality, exactly as IndexFaces
sees them) over every photo in shared/data/images and every ``--every``-th frame of every
clip, then applies each level of ``models.quality`` with the one quality rule
(:func:`streamproc.collections.quality.quality_reasons`). The data has no blurred or dark
faces, so a second table degrades the largest face of each photo (blur, darkness, half
occlusion, a small size) and shows which level lets it through. Prints the tables of
docs/models.md (Quality filter) and writes ``benchmarks/results/quality.json``.

    .venv/bin/python -m benchmarks.quality_table [--pack test_mfn] [--every 3]
"""

from __future__ import annotations

import argparse
from collections import Counter

import cv2
import numpy as np

from benchmarks.common import SHARED, VIDEO, save, table
from streamproc.collections.quality import quality_reasons
from streamproc.config import load_config
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face
from streamproc.tools.demo import clip_frames

LEVELS = ("NONE", "LOW", "AUTO", "MEDIUM", "HIGH")
REASONS = ("EXTREME_POSE", "SMALL_BOUNDING_BOX", "LOW_SHARPNESS", "LOW_BRIGHTNESS",
           "LOW_CONFIDENCE")


def sources(every: int) -> list[tuple[str, list[bytes]]]:
    """(source name, encoded images): the photos, then sampled frames of each clip."""
    photos = sorted(p for p in (SHARED / "data" / "images").rglob("*")
                    if p.suffix.lower() in {".jpg", ".png"})
    out = [("photos", [p.read_bytes() for p in photos])]
    out += [(clip.stem, clip_frames(clip, every)) for clip in sorted(VIDEO.glob("*.mp4"))]
    return out


def detect_all(engine: FaceEngine, images: list[bytes]) -> list[Face]:
    """Every face the engine finds in the images (decoded as the API decodes them)."""
    faces: list[Face] = []
    for data in images:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        faces += engine.detect(image)
    return faces


def degrade(image: np.ndarray, face: Face, how: str) -> np.ndarray:
    """``image`` with its face ``face`` degraded in one way."""
    width = face.width
    x1, y1, x2, y2 = (int(v) for v in face.box)
    if how.startswith("blur"):  # Gaussian sigma = face width / N
        return cv2.GaussianBlur(image, (0, 0), width / int(how[len("blur w/"):]))
    if how.startswith("dark"):  # every pixel times a factor
        return (image * float(how[len("dark x"):])).astype(np.uint8)
    if how == "half occluded":  # grey over the image-left half of the face
        out = image.copy()
        out[max(y1 - 20, 0):y2 + 20, max(x1 - 20, 0):(x1 + x2) // 2] = 128
        return out
    side = int(how.split()[1])  # "face 30 px": scaled so the face is that wide
    scale = side / width
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


DEGRADATIONS = ("blur w/30", "blur w/15", "dark x0.2", "dark x0.1", "half occluded",
                "face 30 px", "face 45 px")


def degraded_rows(engine: FaceEngine, photos: list[bytes], levels: dict) -> list[list]:
    """Per degradation: faces still detected, and how many each level indexes (+ why not)."""
    originals = [cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR) for d in photos]
    rows = []
    for how in DEGRADATIONS:
        faces = []
        for image in originals:
            found = engine.detect(image)
            if found:
                faces += engine.detect(degrade(image, found[0], how))[:1]
        cells = []
        for name in LEVELS[1:]:
            indexed, reasons = tally(faces, name, levels)
            why = ", ".join(f"{r} {n}" for r, n in reasons.most_common())
            cells.append(f"{indexed}" + (f" ({why})" if why else ""))
        rows.append([how, f"{len(faces)} / {len(originals)}", *cells])
    return rows


def tally(faces: list[Face], level_name: str, config_levels: dict) -> tuple[int, Counter]:
    """(indexed, reasons among the refused faces) for one level."""
    level = config_levels.get(level_name)
    reasons: Counter = Counter()
    indexed = 0
    for face in faces:
        why = quality_reasons(face, level)
        if why:
            reasons.update(r for r in why if r != "LOW_FACE_QUALITY")
        else:
            indexed += 1
    return indexed, reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="test_mfn")
    parser.add_argument("--every", type=int, default=3, help="analyse every N-th clip frame")
    args = parser.parse_args()
    config = load_config(None, {"models.root": str(SHARED), "models.pack": args.pack})
    engine = FaceEngine(config.models)
    engine.load()
    found = {name: detect_all(engine, images) for name, images in sources(args.every)}
    everything = [f for faces in found.values() for f in faces]
    rows, per_source, data = [], [], {}
    for name in LEVELS:
        indexed, reasons = tally(everything, name, config.models.quality)
        rows.append([name, f"{indexed} / {len(everything)}",
                     *[reasons.get(r, 0) for r in REASONS]])
        data[name] = {"indexed": indexed, "faces": len(everything), "reasons": dict(reasons)}
    table(f"Faces indexed per QualityFilter ({args.pack}; photos + one clip frame in "
          f"{args.every})", ["level", "indexed", *REASONS], rows)
    photos = sources(args.every)[0][1]
    degraded = degraded_rows(engine, photos, config.models.quality)
    table("Largest face of each photo, degraded", ["degradation", "detected", *LEVELS[1:]],
          degraded)
    for source, faces in found.items():
        per_source.append([source, len(faces),
                           *[tally(faces, n, config.models.quality)[0] for n in LEVELS[1:]]])
    table("Indexed per source", ["source", "faces", *LEVELS[1:]], per_source)
    save("quality", {"pack": args.pack, "every": args.every, "levels": data,
                     "per_source": per_source, "degraded": degraded,
                     "config": {k: v.model_dump() for k, v in config.models.quality.items()}})


if __name__ == "__main__":
    main()
