"""A process's own scratch folder under ``storage.data_dir/scratch/<use>``.

Two daemons may share a data dir: each works in ``<use>/<host>-<pid>``, so clearing what a
killed daemon left behind (a folder with this very name: that process is gone, its pid is
ours now) never deletes another daemon's files still in use.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path


def process_scratch(data_dir: Path, use: str) -> Path:
    """``data_dir/scratch/use/<host>-<pid>``, emptied (not created: made when first used).

    The folders of this host's processes that are gone (a daemon killed, then started again
    with another pid) are removed too: their uploads and copies would otherwise stay.
    """
    host = socket.gethostname()
    parent = data_dir.expanduser() / "scratch" / use
    folder = parent / f"{host}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    for other in _dead_siblings(parent, host):
        shutil.rmtree(other, ignore_errors=True)
    return folder


def _dead_siblings(parent: Path, host: str) -> list[Path]:
    """Folders ``<host>-<pid>`` under ``parent`` whose process no longer runs."""
    try:
        entries = list(parent.iterdir())
    except OSError:  # no such folder yet
        return []
    dead = []
    for entry in entries:
        name, _, pid = entry.name.rpartition("-")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            dead.append(entry)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True
