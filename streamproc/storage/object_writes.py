"""Atomic writes into the local object root (``objects.local_root``).

An object appears whole or not at all: its bytes go to a temporary file in the target's
folder, are fsynced, and the file is renamed over the key (``os.replace``). The temporary
name holds a backslash, which no key may hold (:func:`~.object_keys.local_path`), so even
while it is being written no reader sees it as an object; a failed write removes it.

The bucket folder must already exist (a missing bucket is an error, never created); folders
under it are made as needed, each checked not to lead out of the bucket through a symlink.
A symlink at the key itself is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from streamproc.errors import OutputNotWritable
from streamproc.storage.object_keys import ObjectRef, local_path

_CHUNK = 1 << 20
_TEMP = ".part\\"  # the temporary files' prefix: the backslash keeps them from being keys


def write_local(base: Path, ref: ObjectRef, source: bytes | Path) -> None:
    """Write ``source`` (bytes, or a file's contents) as ``ref`` under ``base``, atomically.

    Raises OutputNotWritable for a missing bucket, a key the root cannot hold, a folder that
    leads out of the bucket, or any failure to write; the source file failing to open is
    the caller's OSError.
    """
    target = local_path(base, ref.bucket, ref.name)
    if target is None:
        raise OutputNotWritable(f"The output key {ref.shown} is not one this store writes")
    with contextlib.ExitStack() as stack:
        data = source if isinstance(source, bytes) else stack.enter_context(source.open("rb"))
        folder = _make_folders(base, ref.bucket, ref.name.split("/")[:-1])
        _replace(folder / target.name, data, ref)


def delete_local(base: Path, ref: ObjectRef) -> None:
    """Remove ``ref``'s file under ``base``; a missing object is no error (as in S3).

    A symlink at the key is removed itself, never the file it leads to; a folder on the way
    that leads out of the bucket is refused (OutputNotWritable), as is a missing bucket.
    """
    folder = _unlink(base, ref)
    if folder is not None:
        _sync_folder(folder)


def delete_many_local(base: Path, bucket: str, names: list[str]) -> list[str]:
    """Remove these objects of ``bucket`` as :func:`delete_local` does; the names removed.

    Each folder is synced once, after its files went, not once a file: a crash before
    then can bring some back, which a delete allows (a later delete removes them again).
    A name that cannot be removed is left out of the answer (logged by the caller).
    """
    done: list[str] = []
    folders: set[Path] = set()
    for name in names:
        try:
            folder = _unlink(base, ObjectRef(bucket, name))
        except OutputNotWritable:
            continue
        done.append(name)
        if folder is not None:
            folders.add(folder)
    for folder in folders:
        _sync_folder(folder)
    return done


def _unlink(base: Path, ref: ObjectRef) -> Path | None:
    """Unlink ``ref``'s file; its folder to sync, or None when there was no file."""
    target = local_path(base, ref.bucket, ref.name)
    if target is None:  # no file holds such a key
        return None
    folder = _bucket(base, ref.bucket)
    real, shown = folder.resolve(), ref.bucket
    for segment in ref.name.split("/")[:-1]:
        folder, shown = folder / segment, f"{shown}/{segment}"
        if not folder.exists():
            return None
        _inside(folder, real, shown)
    try:
        os.unlink(folder / target.name)
    except (FileNotFoundError, IsADirectoryError):  # no object (a folder is none either)
        return None
    except OSError as exc:
        raise OutputNotWritable(f"Deleting {ref.shown} failed: {_why(exc)}") from None
    return folder


def check_local_output(base: Path, bucket: str, prefix: str) -> None:
    """OutputNotWritable unless objects can be written under ``bucket``/``prefix``.

    The bucket must exist; the prefix's folders that exist must stay in the bucket; and a
    file can really be created (a probe, removed at once: it also catches read-only mounts
    and permissions, which ``os.access`` misreads for root).
    """
    folder = _bucket(base, bucket)
    real, shown = folder.resolve(), bucket
    for segment in prefix.split("/")[:-1]:
        if not (folder / segment).exists():
            break
        folder, shown = folder / segment, f"{shown}/{segment}"
        _inside(folder, real, shown)
    probe = folder / f"{_TEMP}{uuid.uuid4().hex}"
    try:
        probe.open("xb").close()
        probe.unlink()
    except OSError as exc:
        raise OutputNotWritable(
            f"The output bucket {bucket} is not writable: {_why(exc)}") from None


def _bucket(base: Path, bucket: str) -> Path:
    """The bucket's folder, which must exist, be a folder and lie in the root."""
    folder = base / bucket
    try:
        real = folder.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise OutputNotWritable(f"The output bucket {bucket} does not exist") from None
    if base not in real.parents or not real.is_dir():
        raise OutputNotWritable(f"The output bucket {bucket} does not exist")
    return folder


def _inside(folder: Path, bucket_real: Path, shown: str) -> None:
    """OutputNotWritable unless ``folder`` is a folder inside the bucket (links followed)."""
    try:
        real = folder.resolve(strict=True)
    except (OSError, RuntimeError):
        real = None
    if real is None or bucket_real not in real.parents or not real.is_dir():
        raise OutputNotWritable(
            f"The output folder {shown} leads out of its bucket or is not a folder")


def _make_folders(base: Path, bucket: str, segments: list[str]) -> Path:
    """The key's folder under the bucket, made one segment at a time, each checked."""
    folder = _bucket(base, bucket)
    real, shown = folder.resolve(), bucket
    for segment in segments:
        folder, shown = folder / segment, f"{shown}/{segment}"
        try:
            folder.mkdir()
        except FileExistsError:
            pass  # a folder already (checked next), or a file or link (refused next)
        except OSError as exc:
            raise OutputNotWritable(
                f"Cannot make the output folder {shown}: {_why(exc)}") from None
        _inside(folder, real, shown)
    return folder


def _replace(target: Path, data: bytes | BinaryIO, ref: ObjectRef) -> None:
    """Write to a temporary file beside ``target``, fsync, rename over it; clean up on error."""
    temp = target.with_name(f"{_TEMP}{uuid.uuid4().hex}")
    try:
        with temp.open("xb") as out:
            if isinstance(data, bytes):
                out.write(data)
            else:
                shutil.copyfileobj(data, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise OutputNotWritable(f"Writing {ref.shown} failed: {_why(exc)}") from None
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; some filesystems cannot fsync a folder, which costs nothing."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
