"""The tag commands (appliers: :mod:`streamproc.tags.rules`); kinds and keys as in the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from streamproc.ledger import Command


@dataclass(frozen=True)
class SetTags(Command[None]):
    """Add or overwrite tags of the resource whose tags are kept under ``key``."""

    kind: ClassVar[str] = "tags.set"
    key: str  # the ARN the resource was created with (TagKeys), not the one a client spelt
    tags: dict[str, str]


@dataclass(frozen=True)
class RemoveTags(Command[None]):
    """Remove tags by key (unknown keys are ignored)."""

    kind: ClassVar[str] = "tags.remove"
    key: str
    keys: list[str]
