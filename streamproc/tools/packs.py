"""Where model packs come from, what they weigh, under which licence, and what is installed.

The download names and URLs are insightface's own (``insightface.utils.storage``: the
``model-zoo`` GitHub release, one ``PACK.zip`` per pack). insightface publishes no checksum for
these archives, so none is pinned for them; where a file's digest is known it is pinned per
file (``file_sha256``) and every pull checks that the pack's ONNX files are there and load.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urljoin

from streamproc.config import ModelsConfig

INSIGHTFACE_LICENCE = (
    "insightface model zoo: the pretrained models are for non-commercial research use only "
    "(https://github.com/deepinsight/insightface#license); commercial use needs a licence "
    "from InsightFace")
TEST_LICENCE = ("test pack: SCRFD detector non-commercial research use only (insightface); "
                "recogniser Apache-2.0 or MIT (see shared/models/licenses)")


@dataclass(frozen=True)
class PackSource:
    """A pack with a published download."""

    archive: str  # file name on insightface's model-zoo release
    size_mb: int  # approximate download size, as the release page lists it
    licence: str = INSIGHTFACE_LICENCE
    sha256: str | None = None  # of the archive, where one is published
    file_sha256: Mapping[str, str] = field(default_factory=dict)  # pinned ONNX files

    @property
    def url(self) -> str:
        """The archive's URL on insightface's model-zoo release."""
        from insightface.utils.storage import model_zoo_download_url

        return model_zoo_download_url(self.archive)


# det_500m.onnx of buffalo_sc is byte-identical to the test packs' detector (shared/models README).
_DET_500M = MappingProxyType(
    {"det_500m.onnx": "5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a"})
Catalog = Mapping[str, PackSource]
CATALOG: Catalog = MappingProxyType({
    "buffalo_l": PackSource("buffalo_l.zip", 288),
    "buffalo_s": PackSource("buffalo_s.zip", 122),
    "buffalo_sc": PackSource("buffalo_sc.zip", 15, file_sha256=_DET_500M),
    "antelopev2": PackSource("antelopev2.zip", 344),
})
_LICENCES = MappingProxyType({"test_mfn": TEST_LICENCE, "test_sface": TEST_LICENCE})
_SHORT = MappingProxyType({INSIGHTFACE_LICENCE: "non-commercial research only",
                           TEST_LICENCE: "mixed: detector non-commercial"})


def licence_of(name: str, catalog: Catalog = CATALOG) -> str:
    """The licence text printed before a pull and by ``models list``."""
    if name in catalog:
        return catalog[name].licence
    return _LICENCES.get(name, "not recorded here: check where the pack comes from")


def short_licence(name: str) -> str:
    """A few words for the ``models list`` table."""
    full = licence_of(name)
    return _SHORT.get(full, full)


def pack_folder(models: ModelsConfig, name: str) -> Path:
    """``ROOT/models/NAME``, insightface's layout."""
    return Path(models.root).expanduser() / "models" / name


def missing_files(models: ModelsConfig, name: str) -> list[str]:
    """The pack's model files not present on disk (all of them when the pack is unknown)."""
    pack = models.packs.get(name)
    if pack is None:
        return [name]
    folder = pack_folder(models, name)
    return [f for f in (pack.detector, pack.recognizer) if not (folder / f).is_file()]


def source_of(models: ModelsConfig, name: str, override: str | None = None,
              catalog: Catalog = CATALOG) -> str | None:
    """Where a pull reads the pack: ``--from``, else the configured mirror, else the release."""
    if override:
        return override
    if models.mirror:
        archive = catalog[name].archive if name in catalog else f"{name}.zip"
        if "://" in models.mirror:
            return urljoin(models.mirror.rstrip("/") + "/", archive)
        return str(Path(models.mirror).expanduser() / archive)
    return catalog[name].url if name in catalog else None


def fix_command(models: ModelsConfig, name: str, config_path: Path | None,
                model_root: Path | None) -> str:
    """The exact ``streamproc models pull`` command that installs a missing pack.

    It repeats the ``--config`` and ``--model-root`` the daemon was started with, so the
    pull reads the same configuration and writes where the daemon looks.
    """
    words = ["streamproc", "models", "pull", name]
    if config_path is not None:
        words += ["--config", str(config_path)]
    if model_root is not None:
        words += ["--model-root", str(model_root)]
    command = shlex.join(words)
    if source_of(models, name) is None:
        command += " --from URL|ARCHIVE   # no public download is known for this pack"
    return command


def size_on_disk(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
