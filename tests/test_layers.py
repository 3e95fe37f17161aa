"""Code rules CI checks: the package layering (import-linter), the lint rules (ruff), types (mypy).

Needs no models. The layering is written in pyproject.toml ([tool.importlinter]).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_packages_import_only_the_layers_below_them() -> None:
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("where", "imports", "shown"), [
    ("storage", "from streamproc.api import transport",
     "streamproc.storage.planted -> streamproc.api.transport"),
    # Output is below nothing in the data plane but the guard: a record is bytes there.
    ("dataplane/output", "from streamproc.dataplane.live import session",
     "streamproc.dataplane.output.planted -> streamproc.dataplane.live.session"),
    ("dataplane/live", "from streamproc.dataplane.stored import video",
     "streamproc.dataplane.live.planted -> streamproc.dataplane.stored.video"),
    # The moderation engine is below the data plane (only its stage module may reach up).
    ("moderation", "from streamproc.dataplane.stored import video",
     "streamproc.moderation.planted -> streamproc.dataplane.stored.video"),
    ("faces", "from streamproc.moderation import types",
     "streamproc.faces.planted -> streamproc.moderation.types"),
])
def test_a_lower_package_importing_a_higher_one_breaks_the_contract(
        tmp_path: Path, where: str, imports: str, shown: str) -> None:
    """The contracts are live: an upward import planted in a copy of the tree is caught."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "streamproc", copy / "streamproc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    planted = copy / "streamproc" / where / "planted.py"
    planted.write_text(f"{imports}  # noqa: F401\n")
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=copy,
                            capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(copy), "PATH": str(BIN)})
    assert result.returncode != 0
    assert shown in result.stdout


def test_ruff_passes() -> None:
    result = subprocess.run([_tool("ruff"), "check", "streamproc", "tests", "benchmarks", "docs"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes() -> None:
    """The annotations are checked, not only written ([tool.mypy] in pyproject.toml)."""
    result = subprocess.run([_tool("mypy"), "streamproc"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
