"""NudeNet 320n (YOLOv8n, 18 body-part classes) on onnxruntime: a score per class.

Pre-processing follows nudenet.py: pad the image at the bottom and right to a square (black),
resize to 320x320 (OpenCV bilinear, ``cv2.dnn.blobFromImage``), scale by 1/255, NCHW. The
channels are RGB, as YOLOv8 trains (ultralytics converts its BGR reads to RGB); nudenet.py's
own ``cvtColor(RGBA2BGR)`` on a 3-channel image swaps B and R before ``swapRB`` swaps them
back, so the package itself feeds BGR to the model for ordinary 3-channel images.
Output [N, 22, 2100]: per anchor 4 box values (cx, cy, w, h) then 18 class scores. Decoding is
nudenet.py's: candidates scoring 0.2 or more, boxes in image pixels clipped to the image,
class-agnostic NMS (``cv2.dnn.NMSBoxes``, score ``min_score``, IoU ``nms_iou``); an image's
score for a class is its best surviving box of that class.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from streamproc.config.moderation import NUDENET_CLASSES, NudeNetModel
from streamproc.moderation.models import OnnxModel, Scores

_CANDIDATE = 0.2  # nudenet.py keeps rows whose best class scores at least this before NMS


def preprocess(image: np.ndarray, size: int = 320) -> tuple[np.ndarray, tuple[int, int]]:
    """A BGR uint8 image as the [3, size, size] float32 input, and its (width, height)."""
    height, width = image.shape[:2]
    side = max(height, width)
    square = cv2.copyMakeBorder(image, 0, side - height, 0, side - width,
                                cv2.BORDER_CONSTANT, value=(0, 0, 0))
    blob = cv2.dnn.blobFromImage(square, 1 / 255.0, (size, size), (0, 0, 0),
                                 swapRB=True, crop=False)
    return np.asarray(blob[0], dtype=np.float32), (width, height)


def _boxes(rows: np.ndarray, width: int, height: int, size: int) -> np.ndarray:
    """(cx, cy, w, h) in model pixels -> (x, y, w, h) in image pixels, clipped."""
    scale = max(width, height) / size
    x = (rows[:, 0] - rows[:, 2] / 2) * scale
    y = (rows[:, 1] - rows[:, 3] / 2) * scale
    x = np.clip(x, 0, width)
    y = np.clip(y, 0, height)
    w = np.minimum(rows[:, 2] * scale, width - x)
    h = np.minimum(rows[:, 3] * scale, height - y)
    return np.stack([x, y, w, h], axis=1)


def decode_one(output: np.ndarray, width: int, height: int, size: int, min_score: float,
               nms_iou: float) -> Scores:
    """One image's [22, anchors] output as class -> best score after NMS (absent: none)."""
    rows = np.asarray(output, dtype=np.float32).T
    classes = rows[:, 4:]
    best = classes.max(axis=1)
    keep = best >= _CANDIDATE
    if not keep.any():
        return {}
    rows, best, ids = rows[keep], best[keep], classes[keep].argmax(axis=1)
    boxes = _boxes(rows, width, height, size)
    kept = cv2.dnn.NMSBoxes(boxes.tolist(), best.tolist(), min_score, nms_iou)
    scores: Scores = {}
    for index in np.asarray(kept, dtype=np.int64).reshape(-1):
        name = NUDENET_CLASSES[int(ids[index])]
        scores[name] = max(scores.get(name, 0.0), float(best[index]))
    return scores


class NudeNet(OnnxModel):
    """Scores the body-part classes each image shows."""

    config: NudeNetModel

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Any]:
        """nudenet.py's square pad and resize; remembers the image size for the boxes."""
        return preprocess(image, self.config.input_size)

    def decode(self, outputs: list[np.ndarray], metas: list[Any]) -> list[Scores]:
        """Each image's classes after NMS."""
        out = outputs[0]
        return [decode_one(out[i], width, height, self.config.input_size,
                           self.config.min_score, self.config.nms_iou)
                for i, (width, height) in enumerate(metas)]
