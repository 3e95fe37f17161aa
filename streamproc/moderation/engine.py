"""The moderation engine: the configured pack's models and label map behind ``Moderator``.

``ModerationEngine(config.moderation, config.models)`` does no I/O; :meth:`load` finds every
model file of the pack, checks its SHA-256 and opens the sessions (CUDA first when
onnxruntime has it, as the face models). A missing or wrong file raises
:class:`ModerationModelError` whose message is the one line to print (what is missing, its
licence, how to install it). After ``load`` the engine is read-only, hence thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from streamproc.config import ModelsConfig
from streamproc.config.moderation import ModerationConfig, NudeNetModel, OpenNsfwModel
from streamproc.faces.providers import ExecutionOptions, ProviderStatus
from streamproc.moderation import taxonomy
from streamproc.moderation.files import ModelFile, ModerationModelError
from streamproc.moderation.labels import LabelMap
from streamproc.moderation.models import OnnxModel, Scores
from streamproc.moderation.nudenet import NudeNet
from streamproc.moderation.open_nsfw import OpenNsfw
from streamproc.moderation.types import ModerationAnalysis

__all__ = ["ModerationEngine", "ModerationModelError", "build_models", "model_version"]
logger = logging.getLogger(__name__)


def model_version(pack: str) -> str:
    """``ModerationModelVersion``: the taxonomy's version and the pack (``7.0-open_nsfw``)."""
    return f"{taxonomy.VERSION}-{pack}"


def execution_options(config: ModerationConfig, models: ModelsConfig) -> ExecutionOptions:
    """Where the moderation sessions run: the models-wide providers and GPU."""
    threads = models.intra_op_threads if config.intra_op_threads is None \
        else config.intra_op_threads
    choice = models.providers
    return ExecutionOptions(providers=choice if isinstance(choice, str) else tuple(choice),
                            device_id=models.device_id, intra_op_threads=threads)


def build_models(config: ModerationConfig, models: ModelsConfig, pack: str | None = None
                 ) -> list[OnnxModel]:
    """The pack's models, not loaded (no I/O)."""
    name = pack or config.pack
    options = execution_options(config, models)
    out: list[OnnxModel] = []
    for model_name in config.packs[name].models:
        model = config.models[model_name]
        if isinstance(model, OpenNsfwModel):
            out.append(OpenNsfw(name, model_name, model, options))
        elif isinstance(model, NudeNetModel):
            out.append(NudeNet(name, model_name, model, options))
    return out


class ModerationEngine:
    """Implements :class:`~streamproc.moderation.types.Moderator` for the configured pack."""

    def __init__(self, config: ModerationConfig, models: ModelsConfig,
                 pack: str | None = None) -> None:
        self.pack = pack or config.pack
        if self.pack not in config.packs:
            msg = f"unknown moderation pack {self.pack!r}; known: {sorted(config.packs)}"
            raise ModerationModelError(msg)
        self._map = LabelMap(self.pack, config.packs[self.pack])
        self._models = build_models(config, models, self.pack)
        self._files: list[ModelFile] = []

    @property
    def model_version(self) -> str:
        """``ModerationModelVersion``, naming the pack."""
        return model_version(self.pack)

    @property
    def served(self) -> tuple[str, ...]:
        """The labels this pack can emit: its label map and their ancestors."""
        return self._map.served

    @property
    def files(self) -> tuple[ModelFile, ...]:
        """The model files in use (after :meth:`load`), with provenance and licence."""
        return tuple(self._files)

    @property
    def statuses(self) -> list[ProviderStatus]:
        """Per model, the provider asked for and the one running (after :meth:`load`)."""
        return [model.status for model in self._models]

    def load(self) -> None:
        """Find, check and open every model of the pack (raises ModerationModelError)."""
        files = [model.load() for model in self._models]
        self._files = files
        logger.info("moderation pack %s loaded (%s): serves %s", self.pack, self.model_version,
                    ", ".join(self.served))

    def scores_many(self, images: Sequence[np.ndarray],
                    known: Mapping[str, Sequence[Scores]] | None = None
                    ) -> list[dict[str, Scores]]:
        """Every image's raw model scores (model name -> output -> score).

        ``known``: model name -> its scores of every image, already computed (the adapter
        path's feature extractor runs open_nsfw); those models do not run again.
        """
        given = known or {}
        for name, scores in given.items():
            if len(scores) != len(images):
                msg = f"{len(scores)} known {name} scores for {len(images)} images"
                raise ValueError(msg)
        per_model = {model.name: list(given[model.name]) if model.name in given
                     else model.scores(images) for model in self._models}
        return [{name: scores[i] for name, scores in per_model.items()}
                for i in range(len(images))]

    def labels_of(self, scores: dict[str, Scores]) -> ModerationAnalysis:
        """One image's labels from its raw scores (as :meth:`scores_many` gives them)."""
        return ModerationAnalysis(labels=self._map.labels(scores))

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        """Every image's labels, at any confidence; each model runs once per batch."""
        if not images:
            return []
        return [self.labels_of(scores) for scores in self.scores_many(images)]
