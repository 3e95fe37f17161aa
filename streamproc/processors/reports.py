"""What a node says about its processors: reports, claims and releases, as ledger commands.

The reconciler changes no status itself: it posts a report (first frame, failure, stopped,
outage message), a claim (this node runs the current Start now) or a release (it no longer
does) and the ledger's rules apply it on every node. Until the state shows it, the loop
acts on what it said; a word is posted again only after ``repost_s`` (or when it changed:
another Start, another message), so a report lost on the way is made again without
flooding the log while the state is slow to show it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from streamproc.ledger import Ledger
from streamproc.processors.commands import (
    ClaimProcessor,
    ReleaseProcessor,
    Report,
    ReportProcessor,
)
from streamproc.processors.registry import Entry


class Ownership(Enum):
    """What a node says about who runs a processor: it does now, or no longer does."""

    CLAIM = "claim"
    RELEASE = "release"


Said: TypeAlias = Report | Ownership  # a key of what a node said last


@dataclass(frozen=True)
class Posted:
    """The last time a word was said about a processor: for which Start, with what text."""

    session_id: str
    message: str
    at: float  # time.monotonic()


class Reports:
    """Posts what the node says, once per ``repost_s`` for the same Start and message.

    ``posted`` is the processor's own table of what was said last (kept in its record by
    the reconciler's thread, dropped with it).
    """

    def __init__(self, ledger: Ledger, repost_s: float) -> None:
        self._ledger = ledger
        self._repost_s = repost_s

    def report(self, entry: Entry, posted: dict[Said, Posted], event: Report,
               message: str = "") -> None:
        """Post a status report for the current Start (again only after ``repost_s``)."""
        if self._due(entry, posted, event, message):
            self._ledger.post(ReportProcessor(entry.spec.name, entry.session_id, event,
                                              message))

    def claim(self, entry: Entry, posted: dict[Said, Posted]) -> None:
        """Say that this node runs the processor's current Start."""
        if self._said(entry, posted, Ownership.CLAIM):
            self._ledger.post(ClaimProcessor(entry.spec.name, entry.session_id))

    def release(self, entry: Entry, posted: dict[Said, Posted]) -> None:
        """Say that this node no longer runs the processor."""
        if self._said(entry, posted, Ownership.RELEASE):
            self._ledger.post(ReleaseProcessor(entry.spec.name, entry.session_id))

    @staticmethod
    def released_last(posted: dict[Said, Posted]) -> bool:
        """Whether this node's latest word on who runs it was a release."""
        return Ownership.RELEASE in posted

    def _said(self, entry: Entry, posted: dict[Said, Posted], word: Ownership) -> bool:
        if not self._due(entry, posted, word, ""):
            return False
        # The latest of the two is what this node says: the other is not repeated, and
        # saying it again later is not held back by the de-duplication.
        other = Ownership.RELEASE if word is Ownership.CLAIM else Ownership.CLAIM
        posted.pop(other, None)
        return True

    def _due(self, entry: Entry, posted: dict[Said, Posted], word: Said,
             message: str) -> bool:
        """Whether to post ``word`` now; if so, it is noted as posted."""
        now, last = time.monotonic(), posted.get(word)
        if last is not None and (last.session_id, last.message) == (entry.session_id, message) \
                and now - last.at < self._repost_s:
            return False
        posted[word] = Posted(entry.session_id, message, now)
        return True
