"""MkDocs hook: fills the generated parts of the docs at build time.

A page asks for generated Markdown with an HTML comment, ``<!-- gen:NAME ARG... -->``; the
hook replaces it with what the named generator returns, so the configuration reference, the
CLI's help, the operations table and the benchmark tables are always those of the code and
results files being built. An unknown name, or a generator that fails, fails the build.

The console's screenshots are build inputs too, though not files of docs/: the browser tests
save them (``tests/artifacts/console/``, never committed) and :func:`on_files` adds the saved
ones to the build, so the page's image links are checked like any other.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The console's browser tests save their screenshots here (tests/console_browser.py); the
# variable points a build elsewhere (tests/test_docs_screenshots.py uses a temporary folder).
SHOTS_ENV = "STREAMPROC_CONSOLE_SHOTS"
SHOTS_URI = "img/console"  # where the shots appear in the site, as if under docs/
# The best shot of each page, in the order of the Pages table: (file stem, alt text).
SHOTS = (
    ("overview-sparklines", "Overview: health per stage, processors by status, fps and "
                            "latency sparklines"),
    ("processors-paged", "Stream processors: the first page (25) of the paged list, with "
                         "status, StatusMessage, analysed fps and last match"),
    ("processor-live", "A processor: its regions of interest over the current frame and the "
                       "live feed of matches with face crops"),
    ("processor-form", "Create a processor: the CreateStreamProcessor form"),
    ("collection-enrolled", "Collections: enrolled faces as a grid of crops"),
    ("collection-users", "Collections: users as a grid of cards, each with one face's crop"),
    ("collection-search", "Collections: search by an uploaded photo, boxes drawn and "
                          "matches listed"),
    ("job-timeline", "Jobs: a face detection job's results on a timeline, with the frame at "
                     "the chosen mark"),
)

MARKER = re.compile(r"<!--\s*gen:(?P<name>[a-z_]+)(?P<args>(?:\s+[^\s>-][^\s>]*)*)\s*-->")


def _generators() -> dict[str, Callable[..., str]]:
    """The generators by marker name (imported lazily: only a build needs them)."""
    # The benchmarks package lives at the repository root, beside streamproc/; MkDocs puts
    # back sys.path after loading a hook, so the root is added when the generators load.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import report
    from streamproc.tools.docgen import cli_help, config_ref, operations

    return {"config": config_ref.reference, "cli": cli_help.help_texts,
            "operations": operations.table, "results": report.render,
            "console_screenshots": console_screenshots}


def shots_dir() -> Path:
    """The folder the console's screenshots are read from."""
    return Path(os.environ.get(SHOTS_ENV) or ROOT / "tests" / "artifacts" / "console")


def present_shots() -> list[tuple[str, str, Path]]:
    """(stem, alt text, file) of each chosen shot that the browser tests have saved."""
    folder = shots_dir()
    return [(stem, alt, folder / f"{stem}.png") for stem, alt in SHOTS
            if (folder / f"{stem}.png").is_file()]


def console_screenshots() -> str:
    """Markdown images of the saved shots; a line naming the command for those missing.

    Never an image link to a file that is not there: the shots are build outputs of the
    browser tests (no image is committed), so a build before them gets the line instead.
    """
    present = present_shots()
    lines = [f"![{alt}]({SHOTS_URI}/{stem}.png)\n\n*{alt}.*\n" for stem, alt, _ in present]
    missing = [stem for stem, _ in SHOTS if stem not in {s for s, _, _ in present}]
    if missing:
        lines.append(f"Screenshots not made yet ({', '.join(missing)}): the console's browser "
                     "tests save them, `.venv/bin/python -m pytest -q tests/test_console*.py`, "
                     "then build the docs again.\n")
    return "\n".join(lines)


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """MkDocs event: the saved shots join the site's files, as if they were under docs/.

    Being files of the build (not copied in after it), their links are checked by --strict
    like any other and ``mkdocs serve`` serves them.
    """
    from mkdocs.structure.files import File

    for stem, _alt, path in present_shots():
        files.append(File.generated(config, f"{SHOTS_URI}/{stem}.png", abs_src_path=str(path)))
    return files


def expand(markdown: str, source: str = "<page>") -> str:
    """``markdown`` with every ``gen:`` marker replaced by its generator's output."""
    generators = _generators()

    def one(match: re.Match[str]) -> str:
        name, args = match["name"], match["args"].split()
        if name not in generators:
            msg = f"{source}: unknown generated section {name!r} (known: {sorted(generators)})"
            raise ValueError(msg)
        return generators[name](*args)

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: expand the page's markers before it is rendered."""
    return expand(markdown, page.file.src_path)
