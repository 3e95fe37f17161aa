"""Unpack, check and atomically install a model pack under ``ROOT/models/NAME``.

Everything happens in a staging folder beside the target (same filesystem, so the final
step is a rename): the archive is unpacked there, the pack's detector and recogniser must be
present, match any pinned digest and load and run in onnxruntime; only then is the staged
folder renamed into place. A failure at any step removes the staging folder, so the model
root never holds a half-installed or wrong pack.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from streamproc.config import ModelsConfig, PackConfig
from streamproc.storage.digest import sha256_of


class InstallError(Exception):
    """The archive is not a usable pack (``bad_archive``) or could not be written."""

    def __init__(self, message: str, bad_archive: bool) -> None:
        super().__init__(message)
        self.bad_archive = bad_archive


def install(source: Path, name: str, models: ModelsConfig,
            pins: Mapping[str, str] | None = None) -> Path:
    """Install the pack in ``source`` (a .zip archive or a folder) as ``ROOT/models/name``."""
    pack = models.packs[name]
    models_dir = Path(models.root).expanduser() / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    staging_root = Path(tempfile.mkdtemp(prefix=f".{name}-staging-", dir=models_dir))
    try:
        staged = staging_root / "models" / name
        try:
            _unpack(source, staged)
        except OSError as exc:
            msg = f"cannot unpack into {models_dir}: {exc.strerror or exc}"
            raise InstallError(msg, bad_archive=False) from None
        _flatten(staged, pack)
        _check_files(staged, pack, pins or {})
        _check_loads(staging_root, name, models)
        return _swap_in(staged, models_dir / name)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


def _unpack(source: Path, staged: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, staged)
        return
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        msg = f"{source} is not a zip archive (or is truncated)"
        raise InstallError(msg, bad_archive=True) from None
    with archive:
        needed = sum(info.file_size for info in archive.infolist())
        free = shutil.disk_usage(staged.parent.parent).free
        if needed > free:
            msg = (f"the pack needs {needed / 1e6:.0f} MB but only {free / 1e6:.0f} MB are "
                   f"free under {staged.parent.parent.parent}")
            raise InstallError(msg, bad_archive=False)
        staged.mkdir(parents=True)
        try:
            archive.extractall(staged)  # zipfile drops absolute and ".." parts of names
        except (zipfile.BadZipFile, EOFError) as exc:
            msg = f"{source} is damaged: {exc}"
            raise InstallError(msg, bad_archive=True) from None


def _flatten(staged: Path, pack: PackConfig) -> None:
    """Archives that wrap the pack in one folder (antelopev2.zip does) are moved up a level."""
    if (staged / pack.detector).is_file():
        return
    holders = [p.parent for p in staged.rglob(pack.detector) if p.is_file()]
    if len(holders) == 1 and (holders[0] / pack.recognizer).is_file():
        inner = staged.parent / ".inner"
        holders[0].rename(inner)
        shutil.rmtree(staged)
        inner.rename(staged)


def _check_files(staged: Path, pack: PackConfig, pins: Mapping[str, str]) -> None:
    missing = [f for f in (pack.detector, pack.recognizer) if not (staged / f).is_file()]
    if missing:
        found = sorted(p.name for p in staged.rglob("*.onnx"))
        msg = f"the archive lacks {', '.join(missing)} (it holds: {', '.join(found) or 'no ONNX'})"
        raise InstallError(msg, bad_archive=True)
    for file_name, expected in pins.items():
        path = staged / file_name
        if path.is_file() and sha256_of(path) != expected:
            msg = f"{file_name} does not match its pinned SHA-256 {expected}"
            raise InstallError(msg, bad_archive=True)


def _check_loads(staging_root: Path, name: str, models: ModelsConfig) -> None:
    """Open both models in onnxruntime on CPU and run them once (FaceEngine's warm-up)."""
    from streamproc.faces.engine import FaceEngine

    probe = models.model_copy(update={"root": staging_root, "pack": name, "providers": "cpu"})
    try:
        FaceEngine(probe).load()
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a usable pack"
        msg = f"the pack's models do not load: {type(exc).__name__}: {exc}"
        raise InstallError(msg, bad_archive=True) from None


def _swap_in(staged: Path, target: Path) -> Path:
    """Rename the checked pack into place; an older copy is moved aside first, then removed."""
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}-previous")
        shutil.rmtree(backup, ignore_errors=True)
        target.rename(backup)
    try:
        staged.rename(target)
    except OSError:
        if backup is not None:
            backup.rename(target)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return target
