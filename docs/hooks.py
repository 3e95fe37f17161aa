"""MkDocs hook: fills the generated parts of the docs at build time.

A page asks for generated Markdown with an HTML comment, ``<!-- gen:NAME ARG... -->``; the
hook replaces it with what the named generator returns, so the configuration reference, the
CLI's help, the operations table and the benchmark tables are always those of the code and
results files being built. An unknown name, or a generator that fails, fails the build.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

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
            "operations": operations.table, "results": report.render}


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
