"""The face engine: one detector + one embedder for the loaded pack, shared by all users."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamproc.config import ModelsConfig, PackConfig
from streamproc.faces.attributes import annotate
from streamproc.faces.confidence import ConfidenceScale
from streamproc.faces.detector import DetectorSettings, ScrfdDetector
from streamproc.faces.embedder import ArcFaceEmbedder, EmbedderSettings
from streamproc.faces.runner import OrtRunner
from streamproc.faces.similarity import SimilarityScale
from streamproc.faces.types import Face

logger = logging.getLogger(__name__)


class ModelPackError(RuntimeError):
    """The configured pack is unknown or its files are missing."""


def pack_dir(models: ModelsConfig) -> Path:
    """Folder of the configured pack, in insightface's ``ROOT/models/PACK`` layout."""
    return Path(models.root).expanduser() / "models" / models.pack


def pack_config(models: ModelsConfig) -> PackConfig:
    """The configured pack's settings, or a clear error naming the known packs."""
    try:
        return models.packs[models.pack]
    except KeyError:
        known = ", ".join(sorted(models.packs))
        msg = f"unknown model pack {models.pack!r}; configured packs: {known}"
        raise ModelPackError(msg) from None


@dataclass(frozen=True)
class ModelIdentity:
    """What makes embeddings comparable: the recogniser that computed them."""

    pack: str
    dim: int
    recognizer: str  # sha256 of the recogniser file


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FaceEngine:
    """Detects, annotates and embeds faces. Construction does no I/O; call :meth:`load`."""

    def __init__(self, models: ModelsConfig) -> None:
        self.pack_name = models.pack
        self.pack = pack_config(models)
        folder = pack_dir(models)
        runner_args = {"providers": models.providers, "intra_op_threads": models.intra_op_threads}
        self.detector = ScrfdDetector(
            OrtRunner(folder / self.pack.detector, **runner_args),
            DetectorSettings(
                input_size=self.pack.det_input_size, max_side=self.pack.det_max_side,
                upscale=self.pack.det_upscale, mean=self.pack.det_mean,
                std=self.pack.det_std, strides=self.pack.det_strides,
                anchors=self.pack.det_anchors, score_threshold=models.det_score_threshold,
                nms_threshold=models.nms_threshold,
            ),
        )
        self.embedder = ArcFaceEmbedder(
            OrtRunner(folder / self.pack.recognizer, session_config=self.pack.session_options,
                      **runner_args),
            EmbedderSettings(input_size=self.pack.rec_input_size, mean=self.pack.rec_mean,
                             std=self.pack.rec_std, max_batch=self.pack.rec_batch),
        )
        self.scale = SimilarityScale(self.pack.calibration)
        self.confidence = ConfidenceScale(self.pack.confidence)
        self._folder = folder
        self._recognizer_digest = ""

    @property
    def identity(self) -> ModelIdentity:
        """The loaded recogniser's identity (collections remember the one that made them)."""
        return ModelIdentity(self.pack_name, self.dim, self._recognizer_digest)

    @property
    def face_model_version(self) -> str:
        """The version string reported as FaceModelVersion."""
        return self.pack.face_model_version

    @property
    def dim(self) -> int:
        """Embedding size of the loaded recogniser."""
        return self.embedder.dim

    @property
    def providers(self) -> list[str]:
        """Execution providers the recogniser actually runs on."""
        return self.embedder.runner.providers

    def load(self) -> None:
        """Open both sessions and warm them up.

        The first ``run`` of a session allocates buffers and (on CUDA) picks kernels;
        doing it here keeps that cost out of the first request's latency.
        """
        if not self._folder.is_dir():
            msg = (f"model pack {self.pack_name!r} not found at {self._folder}; put the pack "
                   "there or pass --model-root/--model-pack")
            raise ModelPackError(msg)
        for runner in (self.detector.runner, self.embedder.runner):
            try:
                runner.load()
            except FileNotFoundError as exc:
                raise ModelPackError(str(exc)) from exc
        self._recognizer_digest = file_digest(self.embedder.runner.path)
        started = time.perf_counter()
        w, h = self.pack.det_input_size or (self.pack.det_max_side,) * 2
        self.detector.detect(np.zeros((h, w, 3), np.uint8))
        side = self.pack.rec_input_size
        self.embedder.embed([np.zeros((side, side, 3), np.uint8)])
        logger.info("pack %s ready: %d-d embeddings on %s (warm-up %.0f ms)", self.pack_name,
                    self.dim, self.providers, (time.perf_counter() - started) * 1000)

    def detect(self, image: np.ndarray, max_faces: int = 0) -> list[Face]:
        """Detect faces and fill in Confidence, pose and quality; largest first."""
        faces = [annotate(image, f) for f in self.detector.detect(image, max_faces)]
        for face in faces:
            face.confidence = self.confidence.confidence(face.score)
        faces.sort(key=lambda f: -f.area)
        return faces

    def embed(self, image: np.ndarray, faces: list[Face]) -> None:
        """Compute embeddings for ``faces`` of ``image`` in one batched call (in place)."""
        self.embed_many([(image, faces)])

    def embed_many(self, items: list[tuple[np.ndarray, list[Face]]]) -> None:
        """Embed the faces of several images (several streams) in shared batches."""
        faces = [face for _, fs in items for face in fs]
        crops = [self.embedder.align(image, f.landmarks) for image, fs in items for f in fs]
        for face, vector in zip(faces, self.embedder.embed(crops), strict=True):
            face.embedding = vector
