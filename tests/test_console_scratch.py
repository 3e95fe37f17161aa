"""Each process's scratch folder; those of this host's dead processes are removed at start."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from streamproc.console.scratch import process_scratch


def _free_pid() -> int:
    """A pid no process has now (from the top of the range down)."""
    top = int(Path("/proc/sys/kernel/pid_max").read_text())
    for pid in range(top - 1, 1, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise AssertionError("no free pid")


@pytest.mark.unit
def test_a_dead_process_folder_goes_a_live_or_foreign_one_stays(tmp_path: Path) -> None:
    host = socket.gethostname()
    parent = tmp_path / "scratch" / "console-enrol"
    gone = _free_pid()
    dead = parent / f"{host}-{gone}"  # a pid that ran and has ended
    alive = parent / f"{host}-{os.getppid()}"  # our parent still runs
    foreign = parent / f"another-host-{gone}"  # another machine's: not ours to judge
    for folder in (dead, alive, foreign):
        folder.mkdir(parents=True)
        (folder / "upload").write_bytes(b"x")
    mine = process_scratch(tmp_path, "console-enrol")
    assert mine == parent / f"{host}-{os.getpid()}"
    assert not dead.exists()
    assert (alive / "upload").exists() and (foreign / "upload").exists()
