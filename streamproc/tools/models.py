"""``streamproc models list`` and ``streamproc models pull NAME [--from URL|PATH]``.

Nothing downloads unless the operator runs ``pull`` (or sets ``models.auto_pull: true``).
A pull prints the pack's licence first, downloads into ``ROOT/downloads/`` (resumable),
checks the archive's SHA-256 when one is pinned (catalogue or ``--sha256``) and installs it
atomically (:mod:`streamproc.tools.install`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

from streamproc.config import ModelsConfig, ModerationConfig
from streamproc.storage.digest import sha256_of
from streamproc.tools.download import DownloadError, download
from streamproc.tools.install import InstallError, install
from streamproc.tools.packs import (
    CATALOG,
    Catalog,
    licence_of,
    missing_files,
    pack_folder,
    short_licence,
    size_on_disk,
    source_of,
)

DEFAULT_CONVERTER = Path("~/.cache/streamproc/labels-converter")


def convert(models: ModelsConfig, name: str, out_dir: Path | None = None,
            converter: Path | None = None, force: bool = False,
            out: IO[str] = sys.stderr) -> Path:
    """``models convert labels``: make the label pack (streamproc.tools.labelpack)."""
    from streamproc.tools.labelpack.build import convert_labels

    if name != "labels":
        msg = f"no converter for {name!r} (known: labels)"
        raise PullError(msg)
    target = (out_dir or models.label_pack_folder()).expanduser()
    return convert_labels(target, (converter or DEFAULT_CONVERTER).expanduser(), out, force)


class PullError(Exception):
    """A pull that cannot go ahead or did not finish (the message says what to do)."""


def pull(models: ModelsConfig, name: str, origin: str | None = None, sha256: str | None = None,
         force: bool = False, retries: int = 2, out: IO[str] = sys.stderr,
         catalog: Catalog = CATALOG) -> Path:
    """Download (or copy) and install pack ``name``; returns its folder.

    ``catalog`` says where published packs come from and which digests are pinned.
    """
    if name not in models.packs:
        known = ", ".join(sorted(models.packs))
        msg = (f"unknown model pack {name!r}; known packs: {known} (add yours under "
               "models.packs in the config, then pull it with --from)")
        raise PullError(msg)
    target = pack_folder(models, name)
    if not force and not missing_files(models, name):
        print(f"{name} is already installed at {target} (--force reinstalls it)", file=out)
        return target
    source = source_of(models, name, origin, catalog)
    if source is None:
        msg = (f"no public download is known for {name}; pass --from URL|ARCHIVE "
               "(a .zip of the pack's files, or a folder holding them)")
        raise PullError(msg)
    print(f"{name}: licence: {licence_of(name, catalog)}", file=out)
    print(f"{name}: from {source} into {target}", file=out, flush=True)
    with _exclusive(models, name):
        archive, fetched = _obtain(models, name, source, retries, out)
        entry = catalog.get(name)
        _check_digest(archive, sha256 or (entry.sha256 if entry and origin is None else None),
                      source, fetched)
        try:
            folder = install(archive, name, models, entry.file_sha256 if entry else None)
        except InstallError as exc:
            if fetched and exc.bad_archive:  # kept otherwise: the next run installs it as is
                archive.unlink(missing_ok=True)
            raise PullError(f"{name} was not installed: {exc}") from None
        if fetched:
            archive.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # leave no empty folder behind
                archive.parent.rmdir()
    print(f"{name}: installed at {folder} ({size_on_disk(folder) / 1e6:.1f} MB)", file=out)
    return folder


@contextlib.contextmanager
def _exclusive(models: ModelsConfig, name: str) -> Iterator[None]:
    """One pull at a time per model root (daemons may share one and auto-pull).

    The lock is on the ``ROOT/models`` folder itself: no lock file to create or clean up.
    """
    folder = Path(models.root).expanduser() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            msg = f"another pull into {models.root} is running; wait for it, then pull {name}"
            raise PullError(msg) from None
        yield
    finally:
        os.close(fd)


def _check_digest(archive: Path, expected: str | None, source: str, fetched: bool) -> None:
    if not expected or not archive.is_file():
        return
    actual = sha256_of(archive)
    if actual != expected.lower():
        if fetched:
            archive.unlink()
        msg = (f"checksum mismatch for {source}: expected SHA-256 {expected}, got {actual}; "
               f"{'the download was deleted' if fetched else 'refusing it'}, "
               "nothing was installed")
        raise PullError(msg)


def _obtain(models: ModelsConfig, name: str, source: str, retries: int, out: IO[str]
            ) -> tuple[Path, bool]:
    """The archive on local disk, and whether we downloaded it (ours to delete)."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        dest = Path(models.root).expanduser() / "downloads" / f"{name}.zip"
        if dest.is_file():  # downloaded whole before; its install stopped (e.g. disk full)
            print(f"{name}: using {dest}, downloaded earlier", file=out)
            return dest, True
        try:
            return download(source, dest, retries=retries, progress=out), True
        except DownloadError as exc:
            hint = "" if exc.received else (
                "; without internet access pass --from a mirror URL or a local archive "
                "(or set models.mirror)")
            raise PullError(f"{name} was not installed: {exc}{hint}") from None
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(source).expanduser()
    if not path.exists():
        msg = f"{path} does not exist (--from takes an http(s) URL, a .zip or a folder)"
        raise PullError(msg)
    return path, False


def list_packs(models: ModelsConfig, out: IO[str] = sys.stdout) -> None:
    """Print every known pack: installed or not, size, files, licence."""
    names = sorted(set(models.packs) | set(CATALOG))
    print(f"model root: {Path(models.root).expanduser()}  (* = the configured pack)", file=out)
    print(f"  {'PACK':<11} {'STATE':<10} {'SIZE':>8}  {'DETECTOR + RECOGNISER':<50} LICENCE",
          file=out)
    for name in names:
        pack = models.packs.get(name)
        folder = pack_folder(models, name)
        state = "installed" if pack and not missing_files(models, name) else (
            "incomplete" if folder.is_dir() else "missing")
        if state == "installed":
            size = f"{size_on_disk(folder) / 1e6:.0f} MB"
        else:
            size = f"~{CATALOG[name].size_mb} MB" if name in CATALOG else "-"
        files = f"{pack.detector} + {pack.recognizer}" if pack else "(not configured)"
        mark = "*" if name == models.pack else " "
        licence = _installed_licence(folder, name) if state == "installed" else None
        print(f"{mark} {name:<11} {state:<10} {size:>8}  {files:<50} "
              f"{licence or short_licence(name)}", file=out)
    print("licences:", file=out)
    for text in sorted({licence_of(name) for name in names}):
        print(f"  - {text}", file=out)
    _list_label_pack(models, out)


def _list_label_pack(models: ModelsConfig, out: IO[str]) -> None:
    """The label pack's state: installed (checked against its manifest), broken or missing."""
    from streamproc.labels.pack import PackError, check_pack, read_manifest

    folder = models.label_pack_folder()
    try:
        manifest = check_pack(folder)
    except PackError as exc:
        state = "missing" if not folder.exists() else f"broken ({exc})"
        print(f"label pack (DetectLabels): {state} at {folder}; make it with "
              "`streamproc models convert labels`", file=out)
        return
    licence = read_manifest(folder).get("licence", "not recorded")
    print(f"label pack (DetectLabels): installed at {folder}, {size_on_disk(folder) / 1e6:.1f} MB,"
          f" {manifest.model_version}, licence {licence}", file=out)


def list_moderation_packs(config: ModerationConfig, models: ModelsConfig,
                          out: IO[str] = sys.stdout) -> None:
    """Print every moderation pack: state, version, served labels, files, licences."""
    from streamproc.moderation.catalog import describe

    print("moderation packs  (* = moderation.pack; files are checked against their SHA-256)",
          file=out)
    for pack in describe(config, models):
        state = "installed" if pack.installed else "missing"
        mark = "*" if pack.selected else " "
        print(f"{mark} {pack.name:<18} {state:<10} {pack.model_version}", file=out)
        print(f"    serves: {', '.join(pack.served)}", file=out)
        for model in pack.models:
            print(f"    {model.name}: {model.file} [{model.state}] sha256 {model.sha256}",
                  file=out)
            print(f"      {model.where}", file=out)
            print(f"      licence: {model.licence}", file=out)


def _installed_licence(folder: Path, name: str) -> str | None:
    """A signed MODEL.LICENSE in the pack (insightface verifies it) overrides the default."""
    if not (folder / "MODEL.LICENSE").exists():
        return None
    from insightface.model_zoo.model_license import inspect_model_package_license

    return inspect_model_package_license(folder, expected_model_id=name).message
