"""A trained model as bytes: small, deterministic, versioned, pinned to its backbone.

JSON with sorted keys; every array is its little-endian float64 bytes in base64 (exact, and
about a third of decimal text's size: ~11 KB per 1,024-feature head). The same model gives
the same bytes, so a digest of them names the version's weights. :func:`loads` refuses
another format version and, given the running backbone's identity, a model trained on
another backbone.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np

from streamproc.training.calibration import Platt
from streamproc.training.errors import BackboneMismatchError, HeadFormatError
from streamproc.training.heads import LabelHead, TrainedHeads
from streamproc.training.logistic import FloatArray, LinearFit, Standardiser

FORMAT = "streamproc-heads"
VERSION = 1


def _pack(array: FloatArray) -> str:
    return base64.b64encode(np.asarray(array, dtype="<f8").tobytes()).decode("ascii")


def _unpack(text: str) -> FloatArray:
    return np.array(np.frombuffer(base64.b64decode(text, validate=True), dtype="<f8"),
                    dtype=np.float64)


def _head(head: LabelHead) -> dict[str, Any]:
    return {"label": head.label, "mean": _pack(head.standardiser.mean),
            "scale": _pack(head.standardiser.scale), "weights": _pack(head.fit.weights),
            "bias": head.fit.bias, "iterations": head.fit.iterations,
            "converged": head.fit.converged, "platt": [head.platt.slope, head.platt.offset],
            "uses_base": head.uses_base}


def dumps(model: TrainedHeads) -> bytes:
    """The model's bytes (UTF-8 JSON)."""
    body = {"format": FORMAT, "version": VERSION, "kind": model.kind,
            "backbone": model.backbone, "heads": [_head(head) for head in model.heads]}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _read_head(raw: dict[str, Any]) -> LabelHead:
    weights = _unpack(raw["weights"])
    mean, scale = _unpack(raw["mean"]), _unpack(raw["scale"])
    if not len(weights) == len(mean) == len(scale):
        msg = f"head {raw['label']!r}: arrays of different lengths"
        raise HeadFormatError(msg)
    slope, offset = raw["platt"]
    return LabelHead(label=str(raw["label"]), standardiser=Standardiser(mean, scale),
                     fit=LinearFit(weights, float(raw["bias"]), int(raw["iterations"]),
                                   bool(raw["converged"])),
                     platt=Platt(float(slope), float(offset)), uses_base=bool(raw["uses_base"]))


def loads(data: bytes, running_backbone: str | None = None) -> TrainedHeads:
    """The model from :func:`dumps`' bytes.

    Raises :class:`HeadFormatError` for bytes of another format or version, and
    :class:`BackboneMismatchError` when ``running_backbone`` is not the one trained on.
    """
    try:
        body = json.loads(data)
        if body.get("format") != FORMAT or body.get("version") != VERSION:
            msg = (f"not a {FORMAT} version {VERSION} model (format "
                   f"{body.get('format')!r}, version {body.get('version')!r})")
            raise HeadFormatError(msg)
        model = TrainedHeads(kind=str(body["kind"]), backbone=str(body["backbone"]),
                             heads=tuple(_read_head(raw) for raw in body["heads"]))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error,
            RecursionError) as error:  # RecursionError: JSON nested past the parser's depth
        if isinstance(error, HeadFormatError):
            raise
        msg = f"damaged model bytes: {error}"
        raise HeadFormatError(msg) from error
    if running_backbone is not None and model.backbone != running_backbone:
        raise BackboneMismatchError(model.backbone, running_backbone)
    return model
