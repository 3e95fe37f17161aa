"""Code rules CI checks: the package layering (import-linter) and the lint rules (ruff).

Needs no models. The layering is written in pyproject.toml ([tool.importlinter]).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_packages_import_only_the_layers_below_them() -> None:
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_lower_package_importing_a_higher_one_breaks_the_contract(tmp_path: Path) -> None:
    """The contract is live: an upward import planted in a copy of the tree is caught."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "streamproc", copy / "streamproc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    planted = copy / "streamproc" / "storage" / "planted.py"
    planted.write_text("from streamproc.api import transport  # noqa: F401\n")
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=copy,
                            capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(copy), "PATH": str(BIN)})
    assert result.returncode != 0
    assert "streamproc.storage.planted -> streamproc.api.transport" in result.stdout


def test_ruff_passes() -> None:
    result = subprocess.run([_tool("ruff"), "check", "streamproc", "tests", "benchmarks"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
