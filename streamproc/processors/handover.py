"""Handover between cluster nodes: one node at a time runs a processor.

A processor that the placement moves from one live node to another is started by the new
node only once the old one has released it (a ``processor.release`` command, posted when
its halt is over), or once the old node has left the member list, or after
``handover_wait_s`` (the longest the old node can keep running it without hearing the
group: the fencing allowance plus the stop timeout). So two nodes do not run it at once
even when the old node learns of the move late (a rejoin that took a while). A single node
(``members`` None) hands nothing over.
"""

from __future__ import annotations

import logging
import time

from streamproc.processors.registry import Entry
from streamproc.processors.reports import Reports
from streamproc.processors.runs import ProcessorSlot

logger = logging.getLogger(__name__)


class Handover:
    """When this node may start a processor, and when it says it no longer runs one."""

    def __init__(self, node_id: str, wait_s: float, reports: Reports) -> None:
        self._node_id = node_id
        self._wait_s = wait_s
        self._reports = reports

    def may_start(self, entry: Entry, slot: ProcessorSlot, members: set[str] | None) -> bool:
        """Nobody else may still run it: released, never run, ours, or its node is gone."""
        owner = entry.owner
        if members is None or owner in ("", self._node_id) or owner not in members:
            slot.waiting = None
            return True
        if slot.waited_s(owner, entry.session_id, time.monotonic()) < self._wait_s:
            return False
        logger.warning("processor %s: %s did not release it within %.0f s; starting it here",
                       entry.spec.name, owner, self._wait_s)
        slot.waiting = None
        return True

    def release(self, entry: Entry, slot: ProcessorSlot, members: set[str] | None) -> None:
        """Say (until the log shows it) that this node no longer runs a processor it owned.

        Called for a processor this node neither runs nor halts nor wants. Then the node it
        is placed on may start it at once; also after a restart, for what the last run of
        this node owned.
        """
        if members is None or entry.owner != self._node_id:
            return
        self._reports.release(entry, slot.posted)
