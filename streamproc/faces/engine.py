"""The face engine: one detector + one embedder for the loaded pack, shared by all users."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from streamproc.config import ModelsConfig, PackConfig
from streamproc.faces.attributes import annotate
from streamproc.faces.confidence import ConfidenceScale
from streamproc.faces.detector import DetectorSettings, ScrfdDetector
from streamproc.faces.embedder import ArcFaceEmbedder, EmbedderSettings
from streamproc.faces.errors import ModelPackError, ProviderUnavailableError
from streamproc.faces.graphs import GraphRewriteError, batch_scrfd
from streamproc.faces.providers import ExecutionOptions, is_gpu
from streamproc.faces.runner import GraphTransform, OrtRunner, Runner
from streamproc.faces.similarity import SimilarityScale
from streamproc.faces.types import Face

logger = logging.getLogger(__name__)
__all__ = ["FaceEngine", "ModelPackError", "ProviderUnavailableError", "pack_config", "pack_dir"]

# detect_batching "auto" on CPU: batching did not pay there (benchmarks/bench_stages.py on
# the 2-core development machine: 2.81 ms/frame per frame, 2.90 at 8 frames per call, 4.34
# at 32). On a GPU one call per batch is what keeps the device busy, so auto batches there.
_BATCH_ON_CPU = False


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
        self.models = models
        folder = pack_dir(models)
        self._options = ExecutionOptions.for_pack(models, self.pack)
        transform = batch_scrfd if models.detect_batching != "per_frame" else None
        self.detector = ScrfdDetector(
            self._runner(folder / self.pack.detector, transform=transform),
            DetectorSettings(
                input_size=self.pack.det_input_size, max_side=self.pack.det_max_side,
                upscale=self.pack.det_upscale, mean=self.pack.det_mean,
                std=self.pack.det_std, strides=self.pack.det_strides,
                anchors=self.pack.det_anchors, score_threshold=models.det_score_threshold,
                nms_threshold=models.nms_threshold,
            ),
        )
        self.embedder = ArcFaceEmbedder(
            self._runner(folder / self.pack.recognizer, self.pack.session_options),
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

    def _runner(self, path: Path, session_config: dict[str, str] | None = None,
                transform: GraphTransform | None = None) -> Runner:
        """The configured backend's runner for one model file (nothing read yet)."""
        if self.models.backend == "torch":
            from streamproc.faces.torch_runner import TorchRunner

            return TorchRunner(path, self._options, transform=transform)
        return OrtRunner(path, self._options, session_config, transform=transform)

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
        try:
            self._load_detector()
            self.embedder.runner.load()
        except FileNotFoundError as exc:
            raise ModelPackError(str(exc)) from exc
        self._check_gpu()
        self._recognizer_digest = file_digest(self.embedder.runner.path)
        started = time.perf_counter()
        w, h = self.pack.det_input_size or (self.pack.det_max_side,) * 2
        self.detector.detect(np.zeros((h, w, 3), np.uint8))
        side = self.pack.rec_input_size
        self.embedder.embed([np.zeros((side, side, 3), np.uint8)])
        logger.info("pack %s ready: %d-d embeddings on %s (warm-up %.0f ms)", self.pack_name,
                    self.dim, self.providers, (time.perf_counter() - started) * 1000)

    def _load_detector(self) -> None:
        """Load the batched detector graph, or the published one where batching is off."""
        try:
            self.detector.runner.load()
        except GraphRewriteError as exc:
            if self.models.detect_batching == "batched":
                msg = f"{self.pack.detector}: cannot batch this detector ({exc})"
                raise ModelPackError(msg) from exc
            logger.warning("%s: detecting per frame (%s)", self.pack.detector, exc)
            self.detector.runner = self._runner(self.detector.runner.path)
            self.detector.runner.load()
            return
        batched = self.models.detect_batching == "batched" or (
            self.models.detect_batching == "auto"
            and (_BATCH_ON_CPU or is_gpu(self.detector.runner.status.provider)))
        if batched:
            self.detector.settings = replace(self.detector.settings,
                                             max_batch=self.pack.det_batch)

    def _check_gpu(self) -> None:
        """``models.require_gpu``: refuse to run the pack anywhere but on a GPU."""
        if not self.models.require_gpu:
            return
        for runner in (self.detector.runner, self.embedder.runner):
            status = runner.status
            if not is_gpu(status.provider):
                why = status.fallback or f"models.providers is {self._options.providers!r}"
                msg = (f"models.require_gpu is set but {status.model} runs on "
                       f"{status.provider}: {why}")
                raise ProviderUnavailableError(msg)

    def provider_report(self) -> dict[str, Any]:
        """Where each model runs, for /health and the provider metric (after :meth:`load`)."""
        models = [{"role": role, **runner.status.as_dict()} for role, runner in (
            ("detector", self.detector.runner), ("recognizer", self.embedder.runner))]
        return {"backend": self.models.backend,
                "gpu": all(m["gpu"] for m in models),
                "fallback": any(m["fallback"] for m in models),
                "detect_batch": self.detector.settings.max_batch,
                "models": models}

    def detect(self, image: np.ndarray, max_faces: int = 0) -> list[Face]:
        """Detect faces and fill in Confidence, pose and quality; largest first."""
        return self.detect_many([image], max_faces)[0]

    def detect_many(self, images: list[np.ndarray], max_faces: int = 0) -> list[list[Face]]:
        """:meth:`detect` for several images (several streams) in shared detector calls.

        Batches of up to the pack's ``det_batch`` where batching is on (``detect_batching``),
        one call per image otherwise; the faces are the same either way.
        """
        found = self.detector.detect_many(images, max_faces)
        results = []
        for image, faces in zip(images, found, strict=True):
            annotated = [annotate(image, f) for f in faces]
            for face in annotated:
                face.confidence = self.confidence.confidence(face.score)
            annotated.sort(key=lambda f: -f.area)
            results.append(annotated)
        return results

    def embed(self, image: np.ndarray, faces: list[Face]) -> None:
        """Compute embeddings for ``faces`` of ``image`` in one batched call (in place)."""
        self.embed_many([(image, faces)])

    def embed_many(self, items: list[tuple[np.ndarray, list[Face]]]) -> None:
        """Embed the faces of several images (several streams) in shared batches."""
        faces = [face for _, fs in items for face in fs]
        crops = [self.embedder.align(image, f.landmarks) for image, fs in items for f in fs]
        for face, vector in zip(faces, self.embedder.embed(crops), strict=True):
            face.embedding = vector
