"""What every moderation model shares: finding and checking its file, its session, batching.

A model turns images into *scores*: output name -> score in [0, 1] (open_nsfw: ``sfw`` and
``nsfw``; NudeNet: each class's best box). The label map (:mod:`.labels`) turns scores into
taxonomy labels. Construction does no I/O; :meth:`OnnxModel.load` locates the file, checks
its SHA-256 and opens one onnxruntime session, which is thread-safe, so one model serves the
API's request threads and the analysis stage at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamproc.faces.providers import ExecutionOptions, ProviderStatus
from streamproc.faces.runner import OrtRunner
from streamproc.moderation.files import ModelConfig, ModelFile, locate, verify

logger = logging.getLogger(__name__)
Scores = dict[str, float]


class OnnxModel:
    """One ONNX model file behind one session; subclasses say how to prepare and decode."""

    def __init__(self, pack: str, name: str, config: ModelConfig,
                 options: ExecutionOptions) -> None:
        self.pack = pack
        self.name = name
        self.config = config
        self._options = options
        self._runner: OrtRunner | None = None
        self._file: ModelFile | None = None

    def locate(self) -> ModelFile:
        """Where the file is (no hashing, no session): for listings and start-up checks."""
        return locate(self.pack, self.name, self.config)

    def load(self) -> ModelFile:
        """Find the file, check its SHA-256, open the session (once)."""
        if self._runner is not None and self._file is not None:
            return self._file
        found = self.locate()
        verify(self.pack, found)
        runner = OrtRunner(found.path, self._options)
        runner.load()
        logger.info("moderation model %s: %s (%s), licence: %s", self.name, found.path.name,
                    found.provenance, found.licence)
        self._file, self._runner = found, runner
        return found

    @property
    def status(self) -> ProviderStatus:
        """Provider asked for and running (after :meth:`load`)."""
        return self._loaded().status

    def _loaded(self) -> OrtRunner:
        if self._runner is None:
            msg = f"moderation model {self.name} is not loaded"
            raise RuntimeError(msg)
        return self._runner

    def scores(self, images: Sequence[np.ndarray]) -> list[Scores]:
        """Every image's scores; one session run per ``batch`` images."""
        runner = self._loaded()
        out: list[Scores] = []
        step = self.config.batch
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            prepared = [self.prepare(image) for image in chunk]
            tensor = np.stack([tensor for tensor, _ in prepared])
            outputs = runner.run(tensor)
            out.extend(self.decode(outputs, [meta for _, meta in prepared]))
        return out

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Any]:
        """One image's input tensor (without the batch axis) and what decoding needs."""
        raise NotImplementedError

    def decode(self, outputs: list[np.ndarray], metas: list[Any]) -> list[Scores]:
        """The scores of each image of one batch."""
        raise NotImplementedError
