"""The console's screenshots in the docs: the saved ones are in the site, never a broken link.

docs/hooks.py reads the shots from ``$STREAMPROC_CONSOLE_SHOTS`` (the browser tests' folder
otherwise), so each build here gets a temporary folder with fake PNGs in it, or none.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png(shade: int) -> bytes:
    """A 1x1 grey PNG (written by the test: no image file is kept in the repo)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes([0, shade]))) + chunk(b"IEND", b""))


def _build(site: Path, shots: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "STREAMPROC_CONSOLE_SHOTS": str(shots)}
    # Never -q: quiet mode filters the warnings out before --strict counts them.
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_generator_links_only_the_shots_present_and_names_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = _hooks()
    (first, first_alt), (second, _), *_ = hooks.SHOTS
    (tmp_path / f"{first}.png").write_bytes(_png(1))
    (tmp_path / "not-chosen.png").write_bytes(_png(2))
    monkeypatch.setenv(hooks.SHOTS_ENV, str(tmp_path))
    text = hooks.console_screenshots()
    assert f"![{first_alt}](img/console/{first}.png)" in text
    assert text.count("![") == 1  # neither the absent shots nor one not chosen
    assert second in text.split("Screenshots not made yet", 1)[1]
    assert "tests/test_console*.py" in text


def test_with_every_shot_saved_the_site_holds_them_and_the_page_shows_them(
        tmp_path: Path) -> None:
    hooks = _hooks()
    shots = tmp_path / "shots"
    shots.mkdir()
    for i, (stem, _) in enumerate(hooks.SHOTS):
        (shots / f"{stem}.png").write_bytes(_png(i))
    done = _build(tmp_path / "site", shots)
    assert done.returncode == 0, done.stdout + done.stderr
    html = (tmp_path / "site" / "console" / "index.html").read_text()
    for i, (stem, alt) in enumerate(hooks.SHOTS):
        copied = tmp_path / "site" / "img" / "console" / f"{stem}.png"
        assert copied.read_bytes() == _png(i)
        assert f'src="../img/console/{stem}.png"' in html
        assert f'alt="{alt}"' in html
    assert "Screenshots not made yet" not in html
    assert "gen:" not in html


def test_with_no_shot_saved_the_page_says_how_to_make_them_and_has_no_image(
        tmp_path: Path) -> None:
    done = _build(tmp_path / "site", tmp_path / "no-shots")
    assert done.returncode == 0, done.stdout + done.stderr
    html = (tmp_path / "site" / "console" / "index.html").read_text()
    assert "Screenshots not made yet" in html and "tests/test_console*.py" in html
    assert "<img" not in html
    assert not (tmp_path / "site" / "img" / "console").exists()
