"""A label pack on disk: its manifest, and whether every file in it is the one it lists.

The converter writes ``manifest.json`` last, listing every other file with its SHA-256;
:func:`check_pack` re-reads them all, so a pack cut short, edited or half-replaced is
reported (and rebuilt by the converter) instead of loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.storage.digest import sha256_of

MANIFEST = "manifest.json"
FORMAT = 1
DETECTOR = "detector.onnx"
CLASSIFIER = "classifier.onnx"
LABELMAP = "labelmap.json"
LICENCE = "LICENCE.txt"
FILES = (DETECTOR, CLASSIFIER, LABELMAP, LICENCE)


class PackError(Exception):
    """A label pack that is missing, incomplete or altered (the message says which)."""


@dataclass(frozen=True)
class PackManifest:
    """What ``manifest.json`` says that the loader needs."""

    model_version: str
    files: dict[str, str]  # name -> SHA-256
    detector_input: int  # side of the square the detector's input is resized to
    classifier_input: int
    classifier_scale: float  # the classifier's uint8 output times this = probability


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest document (PackError when absent or unreadable)."""
    path = folder / MANIFEST
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        msg = f"no label pack at {folder} ({MANIFEST} missing)"
        raise PackError(msg) from None
    except (OSError, ValueError) as exc:
        msg = f"{path} is unreadable: {exc}"
        raise PackError(msg) from None
    if doc.get("format") != FORMAT:
        msg = f"{path} has format {doc.get('format')!r}; this streamproc reads {FORMAT}"
        raise PackError(msg)
    return doc


def check_pack(folder: Path) -> PackManifest:
    """The manifest, once every file it lists is there with its SHA-256."""
    doc = read_manifest(folder)
    files: dict[str, str] = doc.get("files", {})
    if missing := set(FILES) - set(files):
        msg = f"{folder / MANIFEST} lists no {sorted(missing)}"
        raise PackError(msg)
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            msg = f"label pack {folder} is incomplete: {name} is missing"
            raise PackError(msg)
        if sha256_of(path) != expected:
            msg = f"label pack {folder}: {name} is not the file its manifest lists (SHA-256)"
            raise PackError(msg)
    inputs = doc["inputs"]
    return PackManifest(doc["model_version"], files, int(inputs["detector"]),
                        int(inputs["classifier"]), float(inputs["classifier_scale"]))
