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
    """``data_dir/scratch/use/<host>-<pid>``, emptied (not created: made when first used)."""
    folder = data_dir.expanduser() / "scratch" / use / f"{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    return folder
