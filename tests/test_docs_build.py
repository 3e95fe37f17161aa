"""The docs site builds with warnings as errors, and the front-door files link to what exists.

``mkdocs build --strict`` fails on a page missing from the nav, a broken link or anchor
between pages, and a generated section (configuration, CLI, operations, benchmark tables)
whose generator fails: docs/hooks.py raises. Links from README.md and CONTRIBUTING.md are
outside MkDocs' view, so they are checked here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRONT_DOORS = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "tests/README.md")
# [text](target) outside code; targets that are web addresses or pure anchors are not files.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _links(path: Path) -> list[str]:
    text, fence, found = path.read_text(), False, []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if not fence:
            found += LINK.findall(re.sub(r"`[^`]*`", "", line))
    return found


def _local(target: str) -> str | None:
    if re.match(r"^[a-z]+:", target) or target.startswith("#"):
        return None
    return target.split("#", 1)[0]


@pytest.mark.parametrize("name", FRONT_DOORS)
def test_front_door_links_point_at_files_that_exist(name: str) -> None:
    path = ROOT / name
    missing = [t for t in _links(path) if (f := _local(t)) and not (path.parent / f).exists()]
    assert not missing, f"{name} links to files that do not exist: {missing}"


def test_the_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [gone](nowhere.md#x) `[code](skipped.md)`\n"
                    "```\n[fenced](skipped2.md)\n```\n[web](https://example.com)\n")
    assert [t for t in _links(page) if (f := _local(t)) and not (tmp_path / f).exists()] == [
        "nowhere.md#x"]


def _build(site: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # Never -q: quiet mode filters the warnings out before --strict counts them.
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(config), "-d", str(site)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_docs_site_builds_strictly_with_every_page_generated(tmp_path: Path) -> None:
    done = _build(tmp_path / "site", ROOT / "mkdocs.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    # Each generated page holds what its generator makes, not its marker.
    expected = {"configuration": ["max_request_bytes", "shutdown_timeout_s"],
                "cli": ["--allow-unauthenticated", "prints its licence"],
                "api": ["GetCelebrityInfo", "CreateFaceLivenessSession"],
                "performance": ["benchmarks/results/e2e.json", "Command:"]}
    for page, needles in expected.items():
        html = (site / page / "index.html").read_text()
        assert "gen:" not in html, page
        for needle in needles:
            assert needle in html, (page, needle)


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a page that is not there](missing.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text()
                      .replace("docs_dir: docs", f"docs_dir: {docs}")
                      .replace("  - docs/hooks.py", f"  - {ROOT / 'docs' / 'hooks.py'}")
                      .split("\nnav:")[0] + "\nnav:\n  - Home: index.md\n")
    done = _build(tmp_path / "site", config)
    assert done.returncode != 0
    assert "missing.md" in done.stdout + done.stderr
