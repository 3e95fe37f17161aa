"""The code shown in Markdown pages: fenced and indented blocks, and the command lines in them.

Used by ``test_docs_commands.py`` to run what the README and the docs pages show. Plain
Python, no Markdown library: the pages use a small subset (fences, 4-space blocks, lists,
inline code), and each rule below says which reading of CommonMark it follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
LIST_ITEM = re.compile(r"^([-*+]|\d+[.)])\s")
SHELL_LANGS = ("bash", "sh", "shell", "console")
# Inline code that starts like this is a full command shown in prose (the docs write short
# AWS CLI examples inline); other inline spans name a command in passing (`streamproc serve`).
INLINE_COMMAND = re.compile(r"`(aws [^`]+)`")


@dataclass(frozen=True)
class Block:
    """One code block: its language (``indented`` for a 4-space block), text and first line."""

    lang: str
    text: str
    line: int  # 1-based line of the block's first content line


@dataclass(frozen=True)
class Command:
    """One command line of a shell block, continuations joined and comments removed."""

    text: str
    line: int


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, every indented code block and every inline ``aws ...`` command."""
    lines = markdown.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            i = _fenced(lines, i, match, found)
        elif _starts_indented_block(lines, i):
            i = _indented(lines, i, found)
        else:
            found.extend(Block("inline", m.group(1), i + 1)
                         for m in INLINE_COMMAND.finditer(lines[i]))
            i += 1
    return found


def _fenced(lines: list[str], start: int, match: re.Match[str], found: list[Block]) -> int:
    """Read a fenced block from ``start``; return the index after its closing fence."""
    fence, indent = match.group("fence"), len(match.group("indent"))
    closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    body: list[str] = []
    i = start + 1
    while i < len(lines) and not closing.match(lines[i]):
        # Content is de-indented by the fence's own indentation, as CommonMark does.
        line = lines[i]
        body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
        i += 1
    found.append(Block(match.group("lang").lower(), "\n".join(body), start + 2))
    return i + 1


def _starts_indented_block(lines: list[str], i: int) -> bool:
    """A 4-space line after a blank line, not the continuation of a list item."""
    if not lines[i].startswith("    ") or not lines[i].strip():
        return False
    if i == 0 or lines[i - 1].strip():
        return False  # no blank line before: a lazy paragraph continuation
    for previous in reversed(lines[:i]):
        if previous.strip() and not previous.startswith(" "):
            # The nearest unindented line: a list item owns the indented text after it.
            return LIST_ITEM.match(previous) is None
    return True


def _indented(lines: list[str], start: int, found: list[Block]) -> int:
    """Read an indented code block (blank lines inside it included)."""
    body: list[str] = []
    i = start
    while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
        body.append(lines[i][4:])
        i += 1
    while body and not body[-1].strip():
        body.pop()
    found.append(Block("indented", "\n".join(body), start + 1))
    return i


def commands(block: Block) -> list[Command]:
    """The command lines of a shell block (``console``: only the ``$ `` lines)."""
    if block.lang not in (*SHELL_LANGS, "indented", "inline"):
        return []
    out: list[Command] = []
    pending, first = "", 0
    for number, raw in enumerate(block.text.splitlines(), start=block.line):
        line = raw.rstrip()
        if block.lang == "console" and not pending:
            if not line.startswith("$ "):
                continue  # output shown after a command
            line = line[2:]
        if not pending:
            first = number
        joined = pending + " " + line.strip() if pending else line.strip()
        if joined.endswith("\\"):
            pending = joined[:-1].rstrip()
            continue
        pending = ""
        text = strip_comment(joined)
        if text:
            out.append(Command(" ".join(text.split()), first))
    return out


def strip_comment(line: str) -> str:
    """``line`` without a shell comment (a ``#`` at a word start, outside quotes)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()
