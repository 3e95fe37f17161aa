"""Conditions of the whole node that decide whether a session can work: one record.

Outages, unreachable destinations, deleted collections and a dead stage arrive as mailbox
events from other threads; the reconciler keeps them here and checks every session and
every launch against them on each turn, so an event is never lost and a later launch
cannot slip past it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamproc.dataplane.live.session import SessionPlan
from streamproc.processors.mailbox import CollectionKey, Events


@dataclass
class NodeConditions:
    """What the mailbox's events said, kept; owned by the reconciler's thread."""

    outages: dict[str, str] = field(default_factory=dict)  # destination -> StatusMessage
    unreachable: dict[str, str] = field(default_factory=dict)  # destination -> reason
    gone: set[CollectionKey] = field(default_factory=set)  # deleted collections
    stage_down: str | None = None  # a vital stage gave up: no session can work

    def note(self, events: Events, live: set[CollectionKey]) -> None:
        """Take a batch of events; ``live``: the collections sessions here search now."""
        for destination, message in events.outages.items():
            if message is None:  # back: neither down nor unreachable any more
                self.outages.pop(destination, None)
                self.unreachable.pop(destination, None)
            else:
                self.outages[destination] = message
        self.unreachable.update(events.unreachable)
        self.gone |= events.collections_gone
        if events.fail_all is not None:
            self.stage_down = events.fail_all
        self.gone &= live  # only deletions that still concern a run matter

    def blocked(self, plan: SessionPlan) -> str | None:
        """Why a session with this plan cannot work now, if it cannot."""
        if self.stage_down is not None:
            return self.stage_down
        if plan.output.destination in self.unreachable:
            return self.unreachable[plan.output.destination]
        if CollectionKey(plan.collection.collection_id, plan.collection.created) in self.gone:
            return "Collection not found"
        return None

    def outage(self, destination: str) -> str:
        """The StatusMessage a running processor shows for its destination ("" if up)."""
        return self.outages.get(destination, "")
