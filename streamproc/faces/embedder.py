"""ArcFace-style recognition: align by 5 landmarks, normalise, batch, L2-normalise."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from insightface.utils.face_align import norm_crop

from streamproc.faces.runner import Runner


@dataclass(frozen=True)
class EmbedderSettings:
    """Input normalisation and batching, taken from the pack's config."""

    input_size: int = 112
    mean: float = 127.5
    std: float = 127.5
    max_batch: int = 32


class ArcFaceEmbedder:
    """Computes unit-length embeddings; the dimension comes from the model."""

    def __init__(self, runner: Runner, settings: EmbedderSettings) -> None:
        self.runner = runner
        self.settings = settings
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Embedding size, read from the recogniser (a probe run if it is symbolic)."""
        if self._dim is None:
            declared = self.runner.output_shape()[-1]
            if isinstance(declared, int) and declared > 0:
                self._dim = declared
            else:
                side = self.settings.input_size
                probe = np.zeros((1, side, side, 3), np.uint8)
                self._dim = int(self._infer(probe).shape[1])
        return self._dim

    def align(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Warp one face to the canonical ArcFace crop (BGR, side x side)."""
        return norm_crop(image, landmark=landmarks, image_size=self.settings.input_size)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """Embed aligned crops in batches of at most ``max_batch``; returns (N, dim)."""
        if not crops:
            return np.empty((0, self.dim), np.float32)
        step = self.settings.max_batch
        parts = [self._infer(np.stack(crops[i:i + step])) for i in range(0, len(crops), step)]
        return np.vstack(parts)

    def _infer(self, crops: np.ndarray) -> np.ndarray:
        side = self.settings.input_size
        blob = cv2.dnn.blobFromImages(
            list(crops), 1.0 / self.settings.std, (side, side),
            (self.settings.mean,) * 3, swapRB=True,
        )
        feats = self.runner.run(blob)[0].astype(np.float32).reshape(len(crops), -1)
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        return feats / np.maximum(norms, 1e-12)
