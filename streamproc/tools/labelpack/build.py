"""``streamproc models convert labels``: sources -> converter venv -> verified ONNX -> pack."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from streamproc.labels import labelmap, pack
from streamproc.storage.digest import sha256_of
from streamproc.tools.labelpack import sources, venv, verify
from streamproc.tools.labelpack.atomic import is_valid, write_pack

WORKER = Path(__file__).with_name("worker.py")
MODEL_VERSION = "ssd_mobilenet_v2_coco+efficientnet_lite3/1.0"
DETECTOR_INPUT = 300  # the SSD graph's own resize target (its preprocessor)
LICENCE_HEADER = (
    "streamproc label pack: provenance and licence\n\n"
    f"Made by `streamproc models convert labels` from PyPI {sources.PACKAGE}=={sources.VERSION}"
    "\n(that package declares no licence of its own). Its models are the TensorFlow\n"
    "authors': SSD MobileNet v2 COCO from the TensorFlow object detection model zoo and\n"
    "EfficientNet-Lite3 from the TensorFlow model garden (its TFLite metadata says\n"
    "Apache-2.0), both under the Apache License 2.0, whose text follows. The ONNX files here\n"
    "are conversions of them (tf2onnx), changed in format only.\n\n")


def convert_labels(target: Path, converter: Path, out: IO[str] = sys.stderr,
                   force: bool = False, create_venv: bool = True) -> Path:
    """Make the label pack in ``target`` (unless a valid one is there); returns ``target``."""
    if not force and (why := is_valid(target)) is not None and target.exists():
        print(f"labels: rebuilding {target}: {why}", file=out)

    def make(work: Path) -> None:
        _make(work, converter, out, create_venv)

    if not write_pack(target, make, force):
        print(f"labels: a valid pack is already at {target} (--force rebuilds it)", file=out)
    else:
        print(f"labels: pack written to {target} ({_size(target) / 1e6:.1f} MB)", file=out)
    return target


def _make(work: Path, converter: Path, out: IO[str], create_venv: bool) -> None:
    python = venv.ensure(converter, out, create_venv)
    site = venv.install_source(python, work, out)
    found = sources.check_sources(site)
    images = verify.probes()
    np.savez(work / "probes.npz", probes=images)
    print("labels: converting (tf2onnx; about two minutes)", file=out, flush=True)
    log = work / "worker.log"
    with log.open("w") as handle:
        done = subprocess.run([str(python), str(WORKER), str(found.detector),
                               str(found.classifier), str(work / "probes.npz"), str(work)],
                              stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        msg = f"the conversion failed (exit {done.returncode}):\n{tail}"
        raise venv.ConverterError(msg)
    tools = json.loads((work / "tools.json").read_text())
    venv.check_tools(tools)
    worst = verify.verify(work, images, work / "reference.npz")
    print(f"labels: converted models match the originals ({worst})", file=out, flush=True)
    classes = found.classes.read_text().splitlines()
    (work / pack.LABELMAP).write_text(json.dumps(labelmap.build(classes).to_json(), indent=1))
    (work / pack.LICENCE).write_text(LICENCE_HEADER + _apache_text(site))
    reference = np.load(work / "reference.npz")
    scale, side = float(reference["classifier/scale"]), int(reference["classifier/input"].shape[1])
    for scratch in ("probes.npz", "reference.npz", "tools.json", "worker.log",
                    "source-requirements.txt"):
        (work / scratch).unlink(missing_ok=True)
    _manifest(work, tools, worst, (scale, side))


def _apache_text(site: Path) -> str:
    """The Apache-2.0 text, as shipped in the converter venv's tf2onnx (same licence)."""
    path = site / "tf2onnx-1.17.0.dist-info" / "licenses" / "LICENSE"
    text = path.read_text()
    if "Apache License" not in text or "Version 2.0, January 2004" not in text:
        msg = f"{path} is not the Apache License 2.0 text"
        raise venv.ConverterError(msg)
    return text


def _manifest(work: Path, tools: dict[str, Any], worst: dict[str, float],
              classifier: tuple[float, int]) -> None:
    doc = {
        "format": pack.FORMAT, "model_version": MODEL_VERSION,
        "taxonomy": labelmap.taxonomy_digest(),  # a later streamproc's map: rebuilt
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "licence": "Apache-2.0 (LICENCE.txt)", "provenance": sources.PROVENANCE,
        "source": {"package": sources.PACKAGE, "version": sources.VERSION,
                   "wheel_sha256": sources.WHEEL_SHA256, "files": dict(sources.SOURCE_SHA256)},
        "tools": tools, "verification": worst,
        "inputs": {"detector": DETECTOR_INPUT, "classifier": classifier[1],
                   "classifier_scale": classifier[0]},
        "files": {name: sha256_of(work / name) for name in pack.FILES},
    }
    (work / pack.MANIFEST).write_text(json.dumps(doc, indent=1))


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
