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

A group that stays stuck in its rebalance (tansu 0.6 can keep a departed member as the
group's leader after every member left in turn, and then no member ever gets an assignment)
is replaced: a node joining for longer than ``STUCK_AFTER_SESSIONS`` session timeouts posts a
``placement.epoch`` command to the shared log, and every node moves to the group of the next
epoch, which has no ghost, as soon as it applies the command.

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

STUCK_AFTER_SESSIONS = 3  # joining this many session timeouts without an assignment: stuck


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


def place_jobs(active: Sequence[tuple[str, str | None]], members: Sequence[str]
               ) -> dict[str, str]:
    """Job -> member, for jobs paired with the member running them (None: queued).

    A job stays with the member running it (a job is not cut off because a node joined);
    the others (queued, or their node left), oldest first, each go to the member with the
    fewest jobs so far, running ones included, ties broken by rendezvous ranking; so a
    queued job does not wait behind a long one while another node is idle.
    """
    load = dict.fromkeys(members, 0)
    out: dict[str, str] = {}
    for job, on in active:
        if on in load:
            out[job] = on
            load[on] += 1
    for job, on in active:
        if on not in load and load:
            best = min(members, key=lambda m: (load[m], -_rank(job, m)))
            out[job] = best
            load[best] += 1
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
        nodes: dict[str, dict[str, str]] = {}
        for member in sorted(members, key=lambda m: m.member_id):
            try:
                info = json.loads(member.metadata.user_data or b"{}")
            except ValueError:
                info = {}
            node = str(info.get("node", member.member_id))
            if node in nodes:  # two processes with one node id: only one may own anything
                logger.error("cluster: two members call themselves %s; %s is left out of the "
                             "placement until one of them is renamed (--node-id)", node,
                             member.member_id)
                continue
            nodes[node] = {"node": node, "endpoint": str(info.get("endpoint", "")),
                           "member": member.member_id}
        listed = sorted(nodes.values(), key=lambda n: n["node"])
        data = json.dumps({"members": listed}).encode()
        left_out = json.dumps({"members": listed, "excluded": True}).encode()
        topics = sorted({t for m in members for t in m.metadata.topics})
        out = {m.member_id: ConsumerProtocolAssignment(self.version, [], left_out)
               for m in members}
        for i, listed_node in enumerate(listed):
            parts = [(t, [i]) for t in topics if i < len(cluster.partitions_for_topic(t) or ())]
            out[listed_node["member"]] = ConsumerProtocolAssignment(self.version, parts, data)
        return out

    def on_assignment(self, assignment: ConsumerProtocolAssignment, generation: int) -> None:
        """Member side: the new member list."""
        try:
            data = json.loads(assignment.user_data or b"{}")
        except ValueError:
            data = {}
        # A member left out (its node id taken by another process) hears of no one, so it
        # owns nothing: the list names its id, but under the other process.
        self._on_members([] if data.get("excluded") else data.get("members", []))


class Placement(Service):
    """Membership of this node, the member list, and the processors placed here."""

    def __init__(self, bootstrap: str, group: str, topic: str, node: dict[str, str],
                 processors: Callable[[], list[str]], metrics: ClusterMetrics,
                 session_timeout_s: float, heartbeat_s: float, fence_after_s: float,
                 on_change: Callable[[], None] = lambda: None,
                 client_options: dict[str, Any] | None = None,
                 on_stuck: Callable[[], None] = lambda: None) -> None:
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
        self._rejoining_since: float | None = None  # written by the membership thread
        self._switched_at = float("-inf")  # written by the membership thread
        self._members: list[dict[str, str]] = []
        self._lock = threading.Lock()  # guards _members and _cache
        self._cache: tuple[tuple[str, ...], tuple[str, ...], dict[str, str]] | None = None
        self.fenced = False
        self._on_change = on_change  # told when the member list or fencing changes
        self._on_stuck = on_stuck  # told (once per period) while a rebalance never ends
        self._stuck_told_at: float | None = None
        self._next_group: str | None = None  # _group and _next_group: guarded by _lock

    # ---- membership ------------------------------------------------------------------------
    def _on_start(self) -> None:
        if self._consumer is not None:  # restarted by the supervisor: leave as the old member
            self._close_consumer()
            self._consumer = None
        with self._lock:  # an epoch applied while the log was replayed
            if self._next_group is not None:
                self._group, self._next_group = self._next_group, None
            group = self._group
        self._consumer = self._join(group)

    def _join(self, group: str) -> Any:
        from kafka import KafkaConsumer

        assignor = MemberListAssignor(self._node, self._set_members)
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap.split(","), group_id=group,
            enable_auto_commit=False, partition_assignment_strategy=[assignor],
            session_timeout_ms=int(self._session_s * 1000),
            heartbeat_interval_ms=int(self._heartbeat_s * 1000),
            max_poll_interval_ms=self._rebalance_ms(),
            fetch_max_wait_ms=100, **self._options)
        consumer.subscribe([self._topic])
        return consumer

    def _rebalance_ms(self) -> int:
        # The rebalance timeout (kafka-python sends max_poll_interval_ms): a rebalance waits
        # this long for a slow member; STUCK_AFTER_SESSIONS session timeouts exceed it.
        return int(self._session_s * (STUCK_AFTER_SESSIONS - 1) * 1000)

    def regroup(self, group: str) -> None:
        """Use consumer group ``group`` from now on (a new epoch; any thread may call)."""
        with self._lock:
            if group != self._group:
                self._next_group = group

    def _switch_group(self) -> None:
        with self._lock:
            group, self._next_group = self._next_group, None
            if group is not None:
                self._group = group
                self._members, self._cache = [], None  # nothing is ours until the new list
        if group is None:
            return
        self._close_consumer()
        logger.warning("cluster: moving to placement group %s", group)
        self._stuck_told_at, self._rejoining_since = None, None
        # Others may still run processors under the old group's list until they apply the
        # same command: own nothing for a session timeout after a switch.
        self._switched_at = time.monotonic()
        try:
            self._consumer = self._join(group)
        except Exception as exc:  # the broker is away: try again on the next turn
            self._consumer = None
            with self._lock:
                self._next_group = self._next_group or group
            logger.warning("cluster: joining placement group %s failed: %r", group, exc)
            self.wait(1.0)

    def _check_stuck(self) -> None:
        since, told = self._rejoining_since, self._stuck_told_at
        period = STUCK_AFTER_SESSIONS * self._session_s
        now = time.monotonic()
        if since is None or (told is not None and now - told <= period):
            return  # asked this period already: again if the epoch has not changed by then
        if now - since > period:
            with self._lock:
                group = self._group
            logger.error("cluster: the placement group %s has not finished a rebalance in "
                         "%.0f s; asking every node to move to a fresh group", group,
                         time.monotonic() - since)
            self._stuck_told_at = now
            self._on_stuck()

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
            self._switch_group()
            if self._consumer is None:
                continue
            try:
                self._consumer.poll(timeout_ms=100)
            except Exception as exc:  # a broker away: keep polling, fencing decides
                logger.warning("placement: polling the group failed: %r", exc)
                self.wait(0.5)
            self._track_rejoin()
            self._check_stuck()
            self._check_fence()
            owned = 0 if self.fenced else sum(
                1 for node in self.assignment().values() if node == self.node_id)
            self._metrics.owned.set(owned)

    def _last_contact(self) -> float:
        # kafka-python keeps the time of the last heartbeat answer on its coordinator.
        heartbeat = getattr(getattr(self._consumer, "_coordinator", None), "heartbeat", None)
        return max(float(getattr(heartbeat, "last_receive", float("-inf"))), self._assigned_at)

    def _silent_too_long(self) -> bool:
        """Out of touch with the group for more than ``fence_after_s`` (the fencing rule).

        While this node's JoinGroup is in flight there are no heartbeats (the client pauses
        them), but the coordinator keeps a member that is rejoining in the group, and the
        rebalance cannot hand this node's processors to others without giving this node the
        new list too. A rebalance waits up to half a session timeout on tansu; so a rejoin
        counts as contact for up to ``session_timeout_s - 1`` s from its start, not as
        silence, or every rebalance would stop every processor in the cluster.
        """
        if self._fence_after <= 0 or not self._members:
            return False
        now = time.monotonic()
        if now - self.last_beat > self._fence_after:
            return True  # this thread is stuck: the client's heartbeats prove nothing
        since = self._rejoining_since
        if since is not None and now - since <= max(self._fence_after, self._session_s - 1.0):
            return False
        return now - self._last_contact() > self._fence_after

    def _track_rejoin(self) -> None:
        coordinator = getattr(self._consumer, "_coordinator", None)
        if getattr(coordinator, "rejoining", False):
            if self._rejoining_since is None:
                self._rejoining_since = time.monotonic()
        else:
            self._rejoining_since = None

    def _check_fence(self) -> None:
        fenced = self._silent_too_long()
        silent = time.monotonic() - self._last_contact()
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

    def _may_run(self) -> bool:
        """Whether this node may run anything now (the one home of the fencing rule).

        Fencing is judged here from the time of the last word from the group, not from a
        flag the membership thread sets: a stuck membership thread must not keep this node
        running what the group has given to others.
        """
        if self._silent_too_long():
            return False
        # Just moved to a new epoch's group: others may not have yet.
        return time.monotonic() - self._switched_at >= self._session_s

    def owns(self, name: str) -> bool:
        """True if this node should run processor ``name`` now."""
        return self._may_run() and self.assignment().get(name) == self.node_id

    def jobs_here(self, active: Sequence[tuple[str, str | None]]) -> set[str]:
        """Which stored-video jobs this node should run, of ``active`` (oldest first).

        ``active`` pairs each job with the node running its launch (None while queued);
        see :func:`place_jobs`. Fenced, or just moved to a new epoch: none.
        """
        if not self._may_run():
            return set()
        nodes = [m["node"] for m in self.members()]
        if self.node_id not in nodes:
            return set()
        return {job for job, on in place_jobs(active, nodes).items() if on == self.node_id}

    def stop(self, timeout: float = 5.0) -> bool:
        """Leave the group at once (others take this node's processors without waiting).

        The consumer is the membership thread's: it is closed here only once that thread
        has ended (kafka-python's clients are not thread-safe). A thread still stuck past
        ``timeout`` keeps it; the group then drops this node after the session timeout.
        """
        stopped = super().stop(timeout)
        if stopped:
            self._close_consumer()
        else:
            logger.warning("placement thread still busy after %.0f s; the group will notice "
                           "this node's departure after its session timeout", timeout)
        return stopped

    def _close_consumer(self) -> None:
        if self._consumer is None:
            return
        try:
            self._consumer.close(timeout_ms=2000)  # a hung coordinator: do not wait 30 s
        except Exception as exc:
            logger.warning("leaving the cluster's group: %r", exc)
