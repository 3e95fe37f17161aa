"""Listing the local object root (``objects.local_root``): the objects under a key prefix.

A listing names exactly the objects a read would find (:func:`~.object_keys.local_object`):
files whose path spells their key back, never the writes' temporary files (their names hold a
backslash, which no key may), never a link that leads out of its bucket. Folders reached
through a symlink are not walked, so a link loop cannot hold the walk and no folder outside
the bucket is ever listed. Files and folders that vanish while the walk runs (another node
deleting) are left out, not errors.
"""

from __future__ import annotations

import os
from pathlib import Path

from streamproc.errors import InvalidS3ObjectException
from streamproc.storage.object_keys import ListedObject, ObjectRef, local_object, local_path


def list_local(base: Path, bucket: str, prefix: str) -> list[ListedObject]:
    """Every object under ``bucket``/``prefix`` in the root ``base``, by key.

    InvalidS3ObjectException when the bucket is not a folder in the root.
    """
    folder = base / bucket
    try:
        real = folder.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise InvalidS3ObjectException(f"The bucket {bucket} does not exist") from None
    if base not in real.parents or not real.is_dir() or local_path(base, bucket, "x") is None:
        raise InvalidS3ObjectException(f"The bucket {bucket} does not exist")
    found: list[ListedObject] = []
    _walk(base, bucket, folder, "", prefix, found)
    return sorted(found, key=lambda o: o.key)


def _walk(base: Path, bucket: str, folder: Path | str, above: str, prefix: str,
          found: list[ListedObject]) -> None:
    """Add the objects in ``folder`` (whose keys start ``above``) that match ``prefix``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # removed meanwhile, or not readable: nothing listed from it
        return
    for entry in entries:
        key = above + entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                inner = f"{key}/"
                if inner.startswith(prefix) or prefix.startswith(inner):
                    _walk(base, bucket, entry.path, inner, prefix, found)
                continue
            if not key.startswith(prefix) or not _an_object(base, bucket, key, entry):
                continue
            stat = entry.stat()  # a link inside the bucket: its file's, as a read sees it
        except OSError:
            continue
        found.append(ListedObject(key, stat.st_size, stat.st_mtime))


def _an_object(base: Path, bucket: str, key: str, entry: os.DirEntry[str]) -> bool:
    if entry.is_symlink():  # checked as a read checks it: it must stay in its bucket
        return local_object(base, ObjectRef(bucket, key)) is not None
    return entry.is_file(follow_symlinks=False) and local_path(base, bucket, key) is not None
