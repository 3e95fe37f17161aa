"""Write a pack folder whole or not at all, one writer at a time.

Two conversions into one folder once wrecked each other, and a pack cut short stayed broken.
So: a lock file beside the target serialises writers (a second waits, then finds the pack
made); the pack is built in a temporary folder beside the target and renamed into place;
an existing pack is kept only when :func:`~streamproc.labels.pack.check_pack` passes. A
temporary folder left by a writer that was killed is removed by the next lock holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from streamproc.labels.pack import PackError, check_pack


@contextlib.contextmanager
def locked(target: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``target`` (blocking: the holder's build finishes first)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock; the file stays (removing it would race)


def is_valid(target: Path) -> str | None:
    """None when ``target`` holds a complete, unaltered pack, else why not."""
    try:
        check_pack(target)
    except PackError as exc:
        return str(exc)
    return None


def write_pack(target: Path, make: Callable[[Path], None], force: bool = False) -> bool:
    """Build with ``make(temp_folder)`` and rename into ``target``; False if already valid.

    ``make`` fills the folder, manifest included; the result is checked before the swap.
    """
    with locked(target):
        _sweep(target)
        if not force and is_valid(target) is None:
            return False
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            os.chmod(work, 0o755)  # mkdtemp's 0700 would hide the pack from the daemon's user
            make(work)
            check_pack(work)
            _swap(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return True


def _sweep(target: Path) -> None:
    """Remove the temporary folders of a run that was killed mid-build.

    Only the lock's holder makes them, and it removes its own before letting go: any found
    by a new holder are older than it, left by a writer that died (SIGKILL, power).
    """
    for prefix in (f".{target.name}.tmp-", f".{target.name}.old-"):
        for stale in target.parent.glob(f"{glob.escape(prefix)}*"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)


def _swap(work: Path, target: Path) -> None:
    """``work`` becomes ``target``; the old folder (if any) is moved aside, then removed."""
    old = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, old / "pack")
    os.rename(work, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
