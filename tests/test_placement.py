"""Placement rules without a broker: balance, determinism, stickiness, fencing."""

from __future__ import annotations

import itertools
import math
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamproc.cluster.placement import (
    STUCK_AFTER_SESSIONS,
    MemberListAssignor,
    Placement,
    place,
    place_jobs,
)
from streamproc.metrics import ClusterMetrics

NAMES = [f"cam-{i:03d}" for i in range(100)]


@pytest.mark.parametrize(("count", "members"), [(0, 3), (1, 3), (6, 3), (7, 3), (100, 3),
                                                (100, 7), (5, 8)])
def test_every_processor_is_placed_once_and_loads_differ_by_at_most_one(
        count: int, members: int) -> None:
    nodes = [f"node-{i}" for i in range(members)]
    out = place(NAMES[:count], nodes)
    assert sorted(out) == sorted(NAMES[:count])
    loads = [list(out.values()).count(n) for n in nodes]
    assert max(loads) - min(loads) <= 1
    assert max(loads) == math.ceil(count / members)


def test_every_node_computes_the_same_placement_whatever_the_member_order() -> None:
    nodes = ["a", "b", "c", "d"]
    first = place(NAMES, nodes)
    for order in itertools.permutations(nodes):
        assert place(NAMES, list(order)) == first


def test_no_members_places_nothing() -> None:
    assert place(NAMES, []) == {}


def test_a_node_leaving_moves_its_own_share_and_few_others() -> None:
    before = place(NAMES, ["a", "b", "c", "d"])
    after = place(NAMES, ["a", "b", "c"])
    moved_from_others = [n for n in NAMES if before[n] != "d" and after[n] != before[n]]
    assert all(after[n] != "d" for n in NAMES)
    # Only the rebalancing of the survivors' extra share moves, not a reshuffle.
    assert len(moved_from_others) <= 3, moved_from_others


def test_a_node_joining_takes_about_its_share_and_little_else_moves() -> None:
    before = place(NAMES, ["a", "b", "c"])
    after = place(NAMES, ["a", "b", "c", "d"])
    moved = [n for n in NAMES if after[n] != before[n]]
    taken = [n for n in moved if after[n] == "d"]
    assert len(taken) == 25
    assert len(moved) - len(taken) <= 3, moved


def test_a_new_processor_does_not_move_the_old_ones_much() -> None:
    before = place(NAMES[:30], ["a", "b", "c"])
    after = place(NAMES[:31], ["a", "b", "c"])
    assert sum(before[n] != after[n] for n in NAMES[:30]) <= 1


def test_the_assignor_tells_every_member_the_same_sorted_list() -> None:
    seen: list[list[dict[str, str]]] = []
    assignors = {n: MemberListAssignor({"node": n, "endpoint": f"http://{n}"}, seen.append)
                 for n in ("b", "a", "c")}
    members = [SimpleNamespace(member_id=f"m-{n}", metadata=a.metadata({"t"}))
               for n, a in assignors.items()]
    cluster = SimpleNamespace(partitions_for_topic=lambda topic: {0, 1, 2, 3})
    out = next(iter(assignors.values())).assign(cluster, members)
    assert sorted(out) == ["m-a", "m-b", "m-c"]
    for member_id, assignment in out.items():
        assignors[member_id[-1]].on_assignment(assignment, 1)
    assert all(s == seen[0] for s in seen) and len(seen) == 3
    assert [m["node"] for m in seen[0]] == ["a", "b", "c"]
    assert seen[0][0] == {"node": "a", "endpoint": "http://a", "member": "m-a"}
    partitions = sorted(p for a in out.values() for _, ps in a.assignment for p in ps)
    assert partitions == [0, 1, 2]


def _placement(fence_after: float, names: list[str]) -> Placement:
    metrics = ClusterMetrics.create(CollectorRegistry())
    node = {"node": "a", "endpoint": "http://a"}
    return Placement("127.0.0.1:1", "g", "t", node, lambda: names, metrics,
                     session_timeout_s=6, heartbeat_s=1, fence_after_s=fence_after)


def _heard_at(placement: Placement, when: float) -> None:
    heartbeat = SimpleNamespace(last_receive=when)
    placement._consumer = SimpleNamespace(_coordinator=SimpleNamespace(heartbeat=heartbeat))


def test_a_node_out_of_touch_longer_than_fence_after_owns_nothing() -> None:
    names = ["cam-1", "cam-2"]
    placement = _placement(3.0, names)
    placement._set_members([{"node": "a", "endpoint": "", "member": "m"}])
    placement._assigned_at = time.monotonic() - 10  # the assignment is old
    _heard_at(placement, time.monotonic() - 1.0)
    assert placement.owns("cam-1") and placement.owns("cam-2")
    _heard_at(placement, time.monotonic() - 3.5)
    # No membership thread ran: owns() judges the silence itself.
    assert not placement.owns("cam-1")
    placement._check_fence()
    assert placement.fenced
    _heard_at(placement, time.monotonic())
    assert placement.owns("cam-1")
    placement._check_fence()
    assert not placement.fenced


def test_a_stuck_membership_thread_fences_even_while_heartbeats_flow() -> None:
    placement = _placement(3.0, ["cam-1"])
    placement._set_members([{"node": "a", "endpoint": "", "member": "m"}])
    _heard_at(placement, time.monotonic())  # the client's heartbeat thread still answers
    assert placement.owns("cam-1")
    placement.last_beat = time.monotonic() - 3.5  # but the placement loop has not run
    assert not placement.owns("cam-1")


def test_two_members_with_one_node_id_own_nothing_twice() -> None:
    seen: list[list[dict[str, str]]] = []
    twin = {"node": "a", "endpoint": ""}
    assignor = MemberListAssignor(twin, seen.append)
    members = [SimpleNamespace(member_id=m, metadata=MemberListAssignor(
        {"node": n, "endpoint": ""}, seen.append).metadata({"t"}))
        for m, n in (("m-2", "a"), ("m-1", "a"), ("m-3", "b"))]
    cluster = SimpleNamespace(partitions_for_topic=lambda topic: {0, 1, 2})
    out = assignor.assign(cluster, members)
    assert sorted(out) == ["m-1", "m-2", "m-3"]  # everyone gets an answer
    assignor.on_assignment(out["m-1"], 1)
    assert [(m["node"], m["member"]) for m in seen[-1]] == [("a", "m-1"), ("b", "m-3")]
    assert out["m-2"].assignment == []
    # The twin left out hears of no one, so its Placement owns nothing.
    twin_placement = _placement(3.0, [f"cam-{i}" for i in range(6)])
    MemberListAssignor(twin, twin_placement._set_members).on_assignment(out["m-2"], 1)
    _heard_at(twin_placement, time.monotonic())
    assert not any(twin_placement.owns(f"cam-{i}") for i in range(6))
    first = _placement(3.0, [f"cam-{i}" for i in range(6)])
    MemberListAssignor(twin, first._set_members).on_assignment(out["m-1"], 1)
    _heard_at(first, time.monotonic())
    assert sum(first.owns(f"cam-{i}") for i in range(6)) == 3


def test_a_fresh_assignment_counts_as_word_from_the_group() -> None:
    placement = _placement(3.0, ["cam-1"])
    _heard_at(placement, float("-inf"))  # no heartbeat answered yet
    placement._set_members([{"node": "a", "endpoint": "", "member": "m"}])
    assert placement.owns("cam-1")


def test_fencing_off_keeps_running_through_silence() -> None:
    placement = _placement(0.0, ["cam-1"])
    placement._set_members([{"node": "a", "endpoint": "", "member": "m"}])
    _heard_at(placement, time.monotonic() - 100)
    placement._assigned_at = time.monotonic() - 100
    assert placement.owns("cam-1")


def test_another_member_s_processors_are_not_owned_here() -> None:
    names = [f"cam-{i}" for i in range(10)]
    placement = _placement(3.0, names)
    members: list[dict[str, Any]] = [{"node": n, "endpoint": "", "member": n} for n in "ab"]
    placement._set_members(members)
    _heard_at(placement, time.monotonic())
    owned = [n for n in names if placement.owns(n)]
    assert len(owned) == 5
    assert owned == [n for n, node in place(names, ["a", "b"]).items() if node == "a"]


def test_a_rejoin_in_flight_is_contact_up_to_just_under_the_session_timeout() -> None:
    placement = _placement(3.0, ["cam-1"])
    placement._set_members([{"node": "a", "endpoint": "", "member": "m"}])
    placement._assigned_at = time.monotonic() - 10
    _heard_at(placement, time.monotonic() - 4.0)  # heartbeats pause during a JoinGroup
    placement._consumer._coordinator.rejoining = True
    placement._track_rejoin()
    placement._rejoining_since = time.monotonic() - 4.0  # the rebalance began 4 s ago
    assert placement.owns("cam-1")
    placement._rejoining_since = time.monotonic() - 5.5  # past session_timeout_s - 1
    assert not placement.owns("cam-1")
    placement._consumer._coordinator.rejoining = False
    placement._track_rejoin()
    assert placement._rejoining_since is None
    assert not placement.owns("cam-1")  # and plain silence counts again


def test_a_group_stuck_in_its_rebalance_is_reported_once_and_replaced() -> None:
    told: list[int] = []
    metrics = ClusterMetrics.create(CollectorRegistry())
    placement = Placement("127.0.0.1:1", "g", "t", {"node": "a", "endpoint": ""},
                          lambda: [], metrics, session_timeout_s=6, heartbeat_s=1,
                          fence_after_s=3, on_stuck=lambda: told.append(1))
    _heard_at(placement, time.monotonic())
    placement._consumer._coordinator.rejoining = True
    placement._track_rejoin()
    placement._check_stuck()
    assert told == []  # joining for a moment is not stuck
    placement._rejoining_since = time.monotonic() - 6 * STUCK_AFTER_SESSIONS - 1
    placement._check_stuck()
    placement._check_stuck()
    assert told == [1]  # once per period
    placement._stuck_told_at -= 6 * STUCK_AFTER_SESSIONS + 1
    placement._check_stuck()
    assert told == [1, 1]  # the epoch did not change (the command was lost): ask again
    joined: list[str] = []
    closed: list[bool] = []
    placement._join = lambda group: joined.append(group) or placement._consumer  # type: ignore
    placement._consumer.close = lambda **_: closed.append(True)
    placement.regroup("g")  # the group it is in: nothing to do
    placement._switch_group()
    assert joined == []
    placement.regroup("g.1")
    placement._set_members([{"node": "a", "endpoint": "", "member": "m"}])
    placement._switch_group()
    assert joined == ["g.1"] and closed == [True]
    assert placement._rejoining_since is None and placement._stuck_told_at is None
    # Others may still run the old group's placement: nothing is owned for a session.
    placement._set_members([{"node": "a", "endpoint": "", "member": "m"}])
    placement._processors = lambda: ["cam-1"]
    _heard_at(placement, time.monotonic())
    placement._consumer._coordinator.rejoining = False
    assert not placement.owns("cam-1")
    placement._switched_at -= 6.5
    assert placement.owns("cam-1")


def test_every_node_moves_to_the_next_epoch_once(tmp_path: Path) -> None:
    from streamproc.cluster.commands import AdvanceEpoch
    from streamproc.cluster.node import ClusterNode
    from streamproc.config import load_config
    from streamproc.ledger import Applied, Appliers
    from streamproc.storage.db import Database

    db = Database(tmp_path / "db.sqlite")
    db.open()
    config = load_config(None, {"cluster.bootstrap": "127.0.0.1:1"})
    appliers = Appliers()
    node = ClusterNode(config, appliers, db, "a", "http://a", lambda: [],
                       CollectorRegistry(), lambda: None)
    groups: list[str] = []
    node.placement.regroup = groups.append  # type: ignore[method-assign]
    where = Applied("b", 7, False)
    appliers.apply(AdvanceEpoch(0), where)
    appliers.apply(AdvanceEpoch(0), where)  # a second node asked too
    assert groups == ["streamproc.placement.1"]
    appliers.apply(AdvanceEpoch(1), where)
    assert groups == ["streamproc.placement.1", "streamproc.placement.2"]
    assert node._log.epoch() == 2
    assert node._log.applied() == -1  # the epoch row does not pretend commands were applied
    db.close()


def test_stop_closes_the_consumer_only_once_its_thread_has_ended() -> None:
    release = threading.Event()
    placement = _placement(3.0, [])
    closed: list[bool] = []
    placement._on_start = lambda: None  # type: ignore[method-assign]
    placement._run = lambda: release.wait(10)  # type: ignore[method-assign]
    _heard_at(placement, time.monotonic())
    placement._consumer.close = lambda **_: closed.append(True)
    placement.start()
    assert placement.stop(0.2) is False  # the thread is stuck: it keeps its consumer
    assert closed == []
    release.set()
    assert placement.join(5)
    assert placement.stop(1.0) is True
    assert closed == [True]


def test_owns_and_jobs_here_while_the_member_list_changes_under_it() -> None:
    names = [f"cam-{i}" for i in range(40)]
    placement = _placement(0.0, names)  # fencing off: ownership follows the list alone
    lists = [[{"node": n, "endpoint": "", "member": n} for n in nodes]
             for nodes in (["a", "b"], ["a", "b", "c"], ["a"], ["a", "c", "d"])]
    allowed = [place(names, [m["node"] for m in members]) for members in lists]
    jobs = [(f"job-{i}", None) for i in range(12)] + [("run-c", "c")]
    jobs_allowed = [{j for j, on in place_jobs(jobs, [m["node"] for m in members]).items()
                     if on == "a"} for members in lists]
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                # each answer is one list's placement, never a mix with a stale cache
                assert placement.assignment() in allowed
                placement.owns(names[0])
                assert placement.jobs_here(jobs) in jobs_allowed  # the scheduler's reads
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    placement._set_members(lists[0])
    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    for i in range(2000):
        placement._set_members(lists[i % len(lists)])
    done.set()
    for t in readers:
        t.join(10)
    assert not errors, errors[:1]


def test_jobs_stay_with_a_live_runner_and_the_rest_are_shared_out() -> None:
    members: list[dict[str, Any]] = [{"node": n, "endpoint": "", "member": n} for n in "ab"]
    views = {}
    for name in "abz":
        view = _placement(3.0, [])
        view.node_id = name
        view._set_members(members)
        _heard_at(view, time.monotonic())
        views[name] = view
    queued = [(f"job-{i}", None) for i in range(10)]
    active = [("run-b", "b"), ("run-gone", "c"), *queued]  # c left the cluster
    here = {name: views[name].jobs_here(active) for name in "ab"}
    assert "run-b" in here["b"] and "run-b" not in here["a"]  # stays where it runs
    assert here["a"] | here["b"] == {job for job, _ in active}  # nothing left out
    assert not here["a"] & here["b"]  # nothing twice
    assert len(here["a"]) == len(here["b"]) == 6  # balanced, the running job counted
    # One long job on b: the next queued job goes to the idle node, whatever its rank.
    for job in ("x", "y", "z"):
        assert views["a"].jobs_here([("long", "b"), (job, None)]) == {job}
    # A node joining takes queued jobs but cuts no running one off.
    three = [*members, {"node": "z", "endpoint": "", "member": "z"}]
    for view in views.values():
        view._set_members(three)
    running = [("run-a", "a"), ("run-b", "b"), ("run-b2", "b")]
    active = [*running, *queued[:9]]
    here = {name: view.jobs_here(active) for name, view in views.items()}
    assert {"run-a"} <= here["a"] and {"run-b", "run-b2"} <= here["b"]
    assert sorted(len(h) for h in here.values()) == [4, 4, 4]
    assert set().union(*here.values()) == {job for job, _ in active}
    # Fenced (out of touch), or not in the member list: none.
    views["a"]._assigned_at = time.monotonic() - 10
    _heard_at(views["a"], time.monotonic() - 3.5)
    assert views["a"].jobs_here(active) == set()
    views["b"]._set_members([])
    assert views["b"].jobs_here(active) == set()
