"""Which processors each node runs: Kafka group membership, then a balanced placement.

Every node is a member of one consumer group over the placement topic. The group does what
Kafka is good at: it notices members that join, leave (at once, on SIGTERM) or go silent
(after the session timeout), and every member learns the same member list at the same
moment (the leader's assignor writes it into every member's assignment). From that list and
the processors in the shared state, each node computes the same placement on its own:
processors in creation order, each to the first member of its rendezvous ranking that still
has room, with room for ``ceil(n/m)`` on ``n % m`` members and ``floor(n/m)`` on the others.
So loads differ by at most one, and a member joining or leaving (or a processor created)
moves few processors besides the ones that must move.

Fencing: a node that has not heard from the group coordinator for ``fence_after_s`` (less
than the session timeout after which the group hands its processors to others) owns nothing
until it hears again, so two nodes never run one processor at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)

from streamproc.lifecycle import Service
from streamproc.metrics import ClusterMetrics

logger = logging.getLogger(__name__)


def _rank(name: str, member: str) -> int:
    digest = hashlib.blake2b(f"{name}\0{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def place(names: Sequence[str], members: Sequence[str]) -> dict[str, str]:
    """Name -> member: balanced within one, deterministic, sticky (see module docstring)."""
    if not members:
        return {}
    base, extra = divmod(len(names), len(members))
    load = dict.fromkeys(members, 0)
    full = 0  # members holding base + 1
    out: dict[str, str] = {}
    for name in names:
        for member in sorted(members, key=lambda m: _rank(name, m), reverse=True):
            if load[member] < base or (load[member] == base and full < extra):
                if load[member] == base:
                    full += 1
                load[member] += 1
                out[name] = member
                break
    return out


class MemberListAssignor(AbstractPartitionAssignor):
    """The group leader's assignor: every member gets the whole member list.

    Each member also gets one partition of the placement topic (the group protocol wants
    partitions); what it runs is computed from the list by :func:`place`.
    """

    name = "streamproc-members"
    version = 0

    def __init__(self, node: dict[str, str], on_members: Callable[[list[dict[str, str]]], None]
                 ) -> None:
        self._node = node
        self._on_members = on_members

    def metadata(self, topics: set[str]) -> ConsumerProtocolSubscription:
        """What this member tells the leader: its node id and API endpoint."""
        return ConsumerProtocolSubscription(self.version, sorted(topics),
                                            json.dumps(self._node).encode())

    def assign(self, cluster: Any, members: list[Any]) -> dict[str, ConsumerProtocolAssignment]:
        """Leader side: the sorted member list to everyone, one partition each."""
        nodes = []
        for member in members:
            try:
                info = json.loads(member.metadata.user_data or b"{}")
            except ValueError:
                info = {}
            nodes.append({"node": str(info.get("node", member.member_id)),
                          "endpoint": str(info.get("endpoint", "")),
                          "member": member.member_id})
        nodes.sort(key=lambda n: n["node"])
        data = json.dumps({"members": nodes}).encode()
        topics = sorted({t for m in members for t in m.metadata.topics})
        out = {}
        for i, node in enumerate(nodes):
            parts = [(t, [i]) for t in topics if i < len(cluster.partitions_for_topic(t) or ())]
            out[node["member"]] = ConsumerProtocolAssignment(self.version, parts, data)
        return out

    def on_assignment(self, assignment: ConsumerProtocolAssignment, generation: int) -> None:
        """Member side: the new member list."""
        try:
            members = json.loads(assignment.user_data or b"{}").get("members", [])
        except ValueError:
            members = []
        self._on_members(members)


class Placement(Service):
    """Membership of this node, the member list, and the processors placed here."""

    def __init__(self, bootstrap: str, group: str, topic: str, node: dict[str, str],
                 processors: Callable[[], list[str]], metrics: ClusterMetrics,
                 session_timeout_s: float, heartbeat_s: float, fence_after_s: float,
                 on_change: Callable[[], None] = lambda: None,
                 client_options: dict[str, Any] | None = None) -> None:
        super().__init__("placement")
        self.node_id = node["node"]
        self._node = node
        self._bootstrap, self._group, self._topic = bootstrap, group, topic
        self._processors = processors
        self._metrics = metrics
        self._session_s, self._heartbeat_s = session_timeout_s, heartbeat_s
        self._fence_after = fence_after_s
        self._options = client_options or {}
        self._consumer: Any = None
        self._assigned_at = float("-inf")
        self._members: list[dict[str, str]] = []
        self._lock = threading.Lock()  # guards _members and _cache
        self._cache: tuple[tuple[str, ...], tuple[str, ...], dict[str, str]] | None = None
        self.fenced = False
        self._on_change = on_change  # told when the member list or fencing changes

    # ---- membership ------------------------------------------------------------------------
    def _on_start(self) -> None:
        from kafka import KafkaConsumer

        assignor = MemberListAssignor(self._node, self._set_members)
        self._consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap.split(","), group_id=self._group,
            enable_auto_commit=False, partition_assignment_strategy=[assignor],
            session_timeout_ms=int(self._session_s * 1000),
            heartbeat_interval_ms=int(self._heartbeat_s * 1000),
            max_poll_interval_ms=max(60000, int(self._session_s * 4000)),
            fetch_max_wait_ms=100, **self._options)
        self._consumer.subscribe([self._topic])

    def _set_members(self, members: list[dict[str, str]]) -> None:
        with self._lock:
            self._members = members
            self._cache = None
            self._assigned_at = time.monotonic()  # a new assignment is word from the group
        self._metrics.nodes.set(len(members))
        logger.info("cluster members: %s", ", ".join(m["node"] for m in members) or "none")
        self._on_change()

    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            try:
                self._consumer.poll(timeout_ms=100)
            except Exception as exc:  # a broker away: keep polling, fencing decides
                logger.warning("placement: polling the group failed: %r", exc)
                self.wait(0.5)
            self._check_fence()
            owned = 0 if self.fenced else sum(
                1 for node in self.assignment().values() if node == self.node_id)
            self._metrics.owned.set(owned)

    def _last_contact(self) -> float:
        # kafka-python keeps the time of the last heartbeat answer on its coordinator.
        heartbeat = getattr(getattr(self._consumer, "_coordinator", None), "heartbeat", None)
        return max(float(getattr(heartbeat, "last_receive", float("-inf"))), self._assigned_at)

    def _check_fence(self) -> None:
        if self._fence_after <= 0 or not self._members:
            return
        silent = time.monotonic() - self._last_contact()
        fenced = silent > self._fence_after
        if fenced != self.fenced:
            self.fenced = fenced
            self._metrics.fenced.set(1 if fenced else 0)
            if fenced:
                logger.error("no word from the cluster's group for %.1f s: running nothing "
                             "until it is back", silent)
            else:
                logger.info("back in touch with the cluster's group")
            self._on_change()

    # ---- placement ----------------------------------------------------------------------------
    def members(self) -> list[dict[str, str]]:
        """The live members, as the group last said (node id, API endpoint)."""
        with self._lock:
            return list(self._members)

    def assignment(self) -> dict[str, str]:
        """Processor -> node for every processor, from the current member list."""
        names = tuple(self._processors())
        with self._lock:
            nodes = tuple(m["node"] for m in self._members)
            if self._cache is None or self._cache[:2] != (names, nodes):
                self._cache = (names, nodes, place(names, nodes))
            return self._cache[2]

    def owns(self, name: str) -> bool:
        """True if this node should run ``name`` now."""
        if self.fenced:
            return False
        return self.assignment().get(name) == self.node_id

    def stop(self, timeout: float = 5.0) -> bool:
        """Leave the group at once (others take this node's processors without waiting)."""
        stopped = super().stop(timeout)
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception as exc:
                logger.warning("leaving the cluster's group: %r", exc)
        return stopped
