"""A label pack on disk: its manifest, and whether every file in it is the one it lists.

The converter writes ``manifest.json`` last, listing every other file with its SHA-256;
:func:`check_pack` re-reads them all, so a pack cut short, edited or half-replaced is
reported (and rebuilt by the converter) instead of loaded. The manifest's shape is checked
(:class:`_ManifestDoc`) before anything in it is used, so a reshaped or truncated manifest is
a :class:`PackError` too, never a traceback. A pack made by a streamproc with another
taxonomy (another label map) is refused the same way: its labels would not be this
version's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from streamproc.labels import labelmap
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


class _Inputs(BaseModel):
    """``inputs``: what each model's input is resized to, and the classifier's scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    detector: PositiveInt = Field(description="side of the detector's square input")
    classifier: PositiveInt = Field(description="side of the classifier's square input")
    classifier_scale: PositiveFloat = Field(description="uint8 output times this = probability")


class _ManifestDoc(BaseModel):
    """The fields of ``manifest.json`` the loader reads (provenance, tools... are kept as is)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    format: int = Field(description="the pack layout's version (FORMAT)")
    model_version: str = Field(min_length=1, description="LabelModelVersion")
    files: dict[str, str] = Field(description="file name -> SHA-256")
    inputs: _Inputs = Field(description="model input sizes")
    taxonomy: str | None = Field(default=None, description="labelmap.taxonomy_digest() "
                                 "of the streamproc that made it (absent before issue 26)")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest document (PackError when absent, unreadable or not a manifest's shape)."""
    return _read(folder).model_dump()


def _read(folder: Path) -> _ManifestDoc:
    path = folder / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        msg = f"no label pack at {folder} ({MANIFEST} missing)"
        raise PackError(msg) from None
    except (OSError, ValueError) as exc:
        msg = f"{path} is unreadable: {exc}"
        raise PackError(msg) from None
    if not isinstance(doc, dict):
        msg = f"{path} is not a manifest (a JSON {type(doc).__name__}, not an object)"
        raise PackError(msg)
    if doc.get("format") != FORMAT:
        msg = f"{path} has format {doc.get('format')!r}; this streamproc reads {FORMAT}"
        raise PackError(msg)
    try:
        return _ManifestDoc.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        msg = f"{path} is not a label pack manifest: {where}: {first['msg']}"
        raise PackError(msg) from None


def check_pack(folder: Path) -> PackManifest:
    """The manifest, once every file it lists is there with its SHA-256, of this taxonomy."""
    doc = _read(folder)
    if missing := set(FILES) - set(doc.files):
        msg = f"{folder / MANIFEST} lists no {sorted(missing)}"
        raise PackError(msg)
    for name, expected in doc.files.items():
        path = folder / name
        if not path.is_file():
            msg = f"label pack {folder} is incomplete: {name} is missing"
            raise PackError(msg)
        if sha256_of(path) != expected:
            msg = f"label pack {folder}: {name} is not the file its manifest lists (SHA-256)"
            raise PackError(msg)
    _check_taxonomy(folder, doc.taxonomy)
    inputs = doc.inputs
    return PackManifest(doc.model_version, dict(doc.files), inputs.detector, inputs.classifier,
                        inputs.classifier_scale)


def _check_taxonomy(folder: Path, recorded: str | None) -> None:
    """Refuse a pack whose label map is not the one this streamproc's taxonomy makes.

    A pack records the digest it was made with; one made before the digest was recorded has
    its ``labelmap.json`` compared with the taxonomy instead (labels and detector classes;
    the classifier's indices need the class list, which the pack does not carry).
    """
    current = labelmap.taxonomy_digest()
    if recorded is not None:
        if recorded != current:
            msg = (f"label pack {folder} was made by a streamproc with another taxonomy "
                   f"({recorded[:12]}, this one {current[:12]})")
            raise PackError(msg)
        return
    try:
        found = labelmap.load((folder / LABELMAP).read_text())
    except (OSError, ValueError) as exc:  # LabelMapError is a ValueError
        msg = f"label pack {folder}: {LABELMAP} is not a label map this streamproc reads: {exc}"
        raise PackError(msg) from None
    if why := labelmap.differs_from_taxonomy(found):
        msg = f"label pack {folder} was made by a streamproc with another taxonomy ({why})"
        raise PackError(msg)
