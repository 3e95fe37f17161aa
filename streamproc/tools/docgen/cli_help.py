"""The ``--help`` text of ``streamproc`` and of every subcommand, built in-process.

The text is what argparse prints for the parser ``streamproc.cli`` builds, at a fixed
terminal width (``COLUMNS=100``) so the generated page does not depend on who built it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from unittest import mock

from streamproc.tools.cli_parser import build_parser

COLUMNS = "100"
Page = tuple[tuple[str, ...], argparse.ArgumentParser]


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Page]:
    """``(path, parser)`` for the parser and, depth first, every sub(sub)command under it."""
    yield path, parser
    for action in parser._actions:  # argparse keeps subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subcommands(child, (*path, name))


def help_pages() -> list[tuple[str, str]]:
    """``(command line, help text)`` for ``streamproc`` and each subcommand, in CLI order."""
    # argparse reads COLUMNS when it formats (and when it names a subparser's prog).
    with mock.patch.dict(os.environ, {"COLUMNS": COLUMNS}):
        return [(" ".join(("streamproc", *path)), parser.format_help())
                for path, parser in subcommands(build_parser())]


def help_texts() -> str:
    """Every help page as a ``### streamproc ...`` heading and a text block (``gen:cli``)."""
    return "\n".join(f"### {command}\n\n```text\n{text.rstrip()}\n```\n"
                     for command, text in help_pages())
