"""Reconciler rules the loop tests in test_reconciler.py leave open: plans, logs, placement.

Over tests/fakes.py's Harness (no models, broker or video). ``loop()`` builds a reconciler
over the harness's registry and runtime with other settings or hooks, in one place, so a
change of the reconciler's constructor touches one helper.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import Harness

from streamproc.config import load_config
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.regions import regions_from_wire, regions_to_wire
from streamproc.ledger import Appliers, Command, LocalLedger
from streamproc.processors.commands import (
    ClaimProcessor,
    ReleaseProcessor,
    Report,
    ReportProcessor,
)
from streamproc.processors.conditions import NodeConditions
from streamproc.processors.handover import Handover
from streamproc.processors.kinds import FaceSearchKind
from streamproc.processors.mailbox import CollectionKey, Events
from streamproc.processors.reconciler import Reconciler, ReconcilerSettings
from streamproc.processors.reports import Posted, Reports, Said
from streamproc.processors.runs import (
    HandoverWait,
    PendingFailure,
    ProcessorSlot,
    ProcessorSlots,
    Run,
)
from streamproc.storage.processors import ProcessorStore
from streamproc.tools.clusterkit import poll

REGION = {"BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 0.5, "Height": 1.0}}
KVS = "arn:aws:kinesisvideo:us-east-1:123456789012:stream/door/1600000000000"


def loop(h: Harness, hooks: dict[str, Any] | None = None, ledger: Any = None,
         **settings: Any) -> Reconciler:
    """A reconciler over the harness's registry, runtime, mailbox and ledger."""
    base = {"stop_timeout_s": h.stop_timeout_s, "tick_s": 0.05,
            "default_destination": "k:9092", "restart_delay_s": 0.0}
    return Reconciler(h.registry, h.runtime, {"FaceSearch": FaceSearchKind(h.searcher)},
                      h.mailbox, ledger or h.ledger, ReconcilerSettings(**{**base, **settings}),
                      dataclasses.replace(h.reconciler._hooks, **(hooks or {})))


class _LockedLedger:
    """The harness's ledger, except that ``name``'s failure reports cannot be recorded."""

    def __init__(self, inner: Any, name: str) -> None:
        self._inner, self._name, self.node_id = inner, name, inner.node_id
        self.locked = True

    def submit(self, command: Command[Any]) -> Any:
        return self._inner.submit(command)

    def post(self, command: Command[Any]) -> None:
        if self.locked and isinstance(command, ReportProcessor) and \
                command.name == self._name and command.event is Report.FAILED:
            msg = "database is locked"
            raise OSError(msg)
        self._inner.post(command)


def test_the_loop_is_named_for_health_reports(h: Harness) -> None:
    assert h.reconciler.name == "reconciler"


def test_a_plan_carries_the_definition_with_credentials_only_where_needed(h: Harness) -> None:
    url = "rtsp://admin:hunter2@cam/live?token=s3cret"
    h.create("cam", input_arn=url, regions=regions_from_wire([REGION]))
    h.service.start("cam")
    loop(h, frame_queue=5).reconcile_once()
    plan = h.runtime.latest("cam").plan
    assert plan.url == url  # the reader needs the credentials ...
    # ... and no one else does.
    assert plan.url_shown == plan.stream_arn == "rtsp://***:***@cam/live?token=***"
    assert plan.kind == "FaceSearch" and plan.frame_queue == 5
    assert regions_to_wire(plan.regions) == [REGION]
    assert plan.emit == "frame" and plan.threshold == 80.0
    assert regions_to_wire(h.runtime.latest("cam").regions) == [REGION]


def test_sessions_report_into_their_own_processors_metrics(h: Harness) -> None:
    h.launch("cam").sensor.frame_decoded()
    assert h.metrics_registry.get_sample_value("streamproc_processor_frames_decoded_total",
                                               {"processor": "cam"}) == 1


def test_kinesis_video_inputs_map_to_configured_urls(h: Harness) -> None:
    for name, streams in (("by-arn", {KVS: "rtsp://by-arn/x"}),
                          ("by-name", {"door": "rtsp://by-name/x"}),
                          ("both", {KVS: "rtsp://by-arn/x", "door": "rtsp://by-name/x"})):
        h.create(name, input_arn=KVS)
        h.service.start(name)
        loop(h, video_streams=streams).reconcile_once()
        expected = streams.get(KVS) or streams["door"]
        assert h.runtime.latest(name).plan.url == expected
        h.service.stop(name)
        h.turn()
        h.service.delete(name)


def test_an_output_without_a_cluster_fails_at_launch_with_the_reason(h: Harness) -> None:
    h.create("cam")  # a Kinesis-style ARN: the default cluster
    h.service.start("cam")
    loop(h, default_destination=None).reconcile_once()
    assert h.status("cam") == "FAILED" and not h.runtime.launched
    assert h.message("cam") == ("No Kafka cluster for output "
                                "arn:aws:kinesis:us-east-1:123456789012:stream/out-cam")


def test_a_launch_judges_the_output_again(h: Harness) -> None:
    """A processor started before the outputs rule is relaunched (after a restart) unchecked
    by StartStreamProcessor: the launch itself refuses an output the rule now forbids."""
    h.create("cam", output_arn="kafka://other:9092/records")
    h.service.start("cam")
    stricter = load_config(None, {"kafka.bootstrap": "k:9092"})
    loop(h, outputs=OutputAllowlist.for_config(stricter)).reconcile_once()
    assert h.status("cam") == "FAILED" and not h.runtime.launched
    assert h.message("cam").startswith("Output refused by outputs.clusters: cluster other:9092")
    h.create("inside", output_arn="kafka://k:9092/ok")
    h.service.start("inside")
    loop(h, outputs=OutputAllowlist.for_config(stricter)).reconcile_once()
    assert [p.name for p in h.runtime.launched] == ["inside"]


def test_placement_decides_what_runs_on_this_node(h: Harness) -> None:
    h.create("here")
    h.create("elsewhere")
    h.service.start("here")
    h.service.start("elsewhere")
    reconciler = loop(h, {"placement": lambda name: name == "here"})
    reconciler.reconcile_once()
    assert [s.plan.name for s in h.runtime.launched] == ["here"]
    assert reconciler.running_names() == ["here"]
    assert h.status("elsewhere") == "STARTING"  # another node's to run
    h.service.stop("here")
    h.service.stop("elsewhere")
    for _ in range(3):
        reconciler.reconcile_once()
    # This node settles its own stop; the other's is the other node's to settle.
    assert (h.status("here"), h.status("elsewhere")) == ("STOPPED", "STOPPING")


def test_a_run_whose_processor_disappeared_is_halted(h: Harness) -> None:
    session = h.launch("cam")
    h.registry.remove("cam")
    h.turn()
    assert not session.active.is_set() and h.reconciler.running_names() == []


def test_an_abandoned_halt_settles_in_the_turn_it_is_given_up(h: Harness) -> None:
    h.create("cam")
    h.runtime.stuck.add("cam")
    h.service.start("cam")
    h.turn()
    h.service.stop("cam")
    h.turn()
    assert h.status("cam") == "STOPPING"
    time.sleep(h.stop_timeout_s + 0.05)
    h.turn()
    assert h.status("cam") == "STOPPED" and len(h.runtime.abandoned) == 1


def test_a_failure_persists_that_the_processor_should_not_run(h: Harness) -> None:
    session = h.launch("cam")
    assert ProcessorStore(h.db).load()[0].desired == "RUNNING"
    session.fail("Stream unavailable for 300 s")
    h.turn()
    (stored,) = ProcessorStore(h.db).load()
    assert (stored.status, stored.desired, stored.status_message) == (
        "FAILED", "STOPPED", "Stream unavailable for 300 s")


def test_a_stop_ends_every_session_and_gives_up_on_stuck_ones(h: Harness) -> None:
    for name in ("a", "b"):
        h.create(name)
        h.service.start(name)
    h.runtime.stuck.add("b")
    h.turn()
    started = time.monotonic()
    assert h.reconciler.stop(2.0)
    assert time.monotonic() - started < h.stop_timeout_s + 0.5
    assert not h.runtime.live()
    assert [s.plan.name for s in h.runtime.abandoned] == ["b"]
    assert {s.plan.name for s in h.runtime.halting} == {"a", "b"}


def test_the_loop_finishes_halts_promptly_whatever_its_tick(h: Harness) -> None:
    reconciler = loop(h, tick_s=5.0, stop_timeout_s=10.0)
    h.create("cam")
    h.service.start("cam")
    reconciler.start()
    try:
        deadline = time.monotonic() + 2
        while not h.runtime.launched and time.monotonic() < deadline:
            time.sleep(0.01)
        h.runtime.stuck.add("cam")
        h.service.stop("cam")
        deadline = time.monotonic() + 2
        while not h.runtime.halting and time.monotonic() < deadline:
            time.sleep(0.01)
        assert h.runtime.halting, "the stop was not begun"
        h.runtime.stuck.discard("cam")  # the reader finishes now
        released = time.monotonic()
        while h.status("cam") != "STOPPED" and time.monotonic() - released < 3:
            time.sleep(0.01)
        # Pending halts are checked every 50 ms, not every tick (5 s here).
        assert h.status("cam") == "STOPPED" and time.monotonic() - released < 0.8
    finally:
        reconciler.stop(2.0)


# ---- what operators read in the log -------------------------------------------------------------

def test_crashes_and_contained_bugs_are_logged(h: Harness,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.processors.reconciler")
    session = h.launch("cam")
    assert "processor cam: session launched on tcp://cam-cam:1" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    session.crashed("ZeroDivisionError: division by zero")
    h.turn()
    assert "processor cam: ZeroDivisionError: division by zero; restarting it" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    caplog.clear()

    def broken(spec: Any) -> str:
        msg = "a bug"
        raise RuntimeError(msg)

    h.create("bad")
    h.service.start("bad")
    loop(h, {"emit_mode": broken}, ledger=_LockedLedger(h.ledger, "bad")).reconcile_once()
    errors = [r for r in caplog.records
              if r.levelno == logging.ERROR and "processor bad:" in r.getMessage()]
    assert [r.getMessage() for r in errors] == [
        "processor bad: reconciling failed",
        "processor bad: could not record the failure; retrying"]
    assert isinstance(errors[0].exc_info[1], RuntimeError)
    assert isinstance(errors[1].exc_info[1], OSError)


# ---- claims and reports (what makes a node's word count in a cluster) ---------------------------

def _event(command: Command[Any]) -> str:
    """A report's event ("running", "failed", ...); "" for other commands."""
    return command.event.value if isinstance(command, ReportProcessor) else ""


class _CountingLedger:
    """The harness's ledger; counts posts as (kind, event), and drops those named in
    ``drop`` (by a report's event, or by the kind of another command)."""

    def __init__(self, inner: Any, drop: set[str] | None = None) -> None:
        self._inner, self.node_id = inner, inner.node_id
        self.drop = drop or set()
        self.posts: list[tuple[str, str]] = []

    def submit(self, command: Command[Any]) -> Any:
        return self._inner.submit(command)

    def post(self, command: Command[Any]) -> None:
        self.posts.append((command.kind, _event(command)))
        if (_event(command) or command.kind) not in self.drop:
            self._inner.post(command)


def test_a_launch_claims_the_processor_for_this_node_first(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    entry = h.registry.require("cam")
    entry.owner = "node-gone"  # ran elsewhere before this node took it over
    h.turn()
    assert entry.owner == h.ledger.node_id == "local"
    assert ProcessorStore(h.db).load()[0].owner == "local"
    h.runtime.latest("cam").report_frame()
    h.turn()
    # The claim came first, so this node's report counted; and it carries no message.
    assert (h.status("cam"), h.message("cam")) == ("RUNNING", "")
    h.service.stop("cam")
    h.turn(2)
    assert (h.status("cam"), h.message("cam")) == ("STOPPED", "")


def test_an_unanswered_report_is_posted_once_per_repost_interval(h: Harness) -> None:
    ledger = _CountingLedger(h.ledger, drop={"running"})
    reconciler = loop(h, ledger=ledger, repost_s=60.0)
    h.create("cam")
    h.service.start("cam")
    reconciler.reconcile_once()
    h.runtime.latest("cam").report_frame()
    for _ in range(5):
        reconciler.reconcile_once()
    assert ledger.posts == [("processor.claim", ""), ("processor.report", "running")]
    assert h.status("cam") == "STARTING"  # the report never arrived


def test_a_new_start_under_a_run_relaunches_in_the_same_turn(h: Harness) -> None:
    first = h.launch("cam")
    entry = h.registry.require("cam")
    entry.session_id = "a-later-start"  # e.g. applied from the cluster's log meanwhile
    h.turn()
    assert first in h.runtime.halting and len(h.runtime.launched) == 2
    assert h.runtime.latest("cam") is not first and h.status("cam") == "STARTING"


def test_a_failure_stops_producing_in_the_turn_it_is_seen(h: Harness) -> None:
    session = h.launch("cam")
    h.mailbox.collection_gone("people", session.plan.collection.created)
    h.turn()
    assert (h.status("cam"), h.message("cam")) == ("FAILED", "Collection not found")
    assert session in h.runtime.halting and h.reconciler.running_names() == []


def test_a_pending_failure_of_an_earlier_start_is_dropped(h: Harness) -> None:
    ledger = _LockedLedger(h.ledger, "cam")
    reconciler = loop(h, ledger=ledger)
    h.create("cam")
    h.service.start("cam")
    reconciler.reconcile_once()
    h.runtime.latest("cam").fail("Stream unavailable for 300 s")
    reconciler.reconcile_once()  # the failure could not be recorded: pending
    assert h.status("cam") == "STARTING"
    h.registry.require("cam").session_id = "a-later-start"  # applied from the log meanwhile
    ledger.locked = False
    reconciler.reconcile_once()
    # The earlier Start's failure does not fail the later one, which is launched.
    assert h.status("cam") == "STARTING" and len(h.runtime.launched) == 2


def test_a_stop_with_nothing_to_halt_returns_at_once(h: Harness) -> None:
    reconciler = loop(h, stop_timeout_s=5.0)
    reconciler.start()
    started = time.monotonic()
    assert reconciler.stop(2.0)
    assert time.monotonic() - started < 1.0


def test_a_lost_claim_is_made_again_while_the_run_is_placed_here(h: Harness) -> None:
    ledger = _CountingLedger(h.ledger, drop={"processor.claim"})
    reconciler = loop(h, {"placement": lambda name: name == "cam"}, ledger=ledger,
                      repost_s=0.0)
    assert reconciler.running_names() == []  # before its first turn too
    h.create("cam")
    h.service.start("cam")
    reconciler.reconcile_once()
    assert reconciler.running_names() == ["cam"]
    entry = h.registry.require("cam")
    assert entry.owner == ""  # the claim was lost on the way
    ledger.drop.clear()
    reconciler.reconcile_once()
    assert entry.owner == "local"


# ---- handover between cluster nodes ---------------------------------------------------------
def test_a_processor_moved_from_a_live_node_starts_once_that_node_released_it(
        h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    entry = h.registry.require("cam")
    entry.owner = "node-x"  # node-x runs it and is still a member: it may not know yet
    reconciler = loop(h, {"members": lambda: {"local", "node-x"}}, handover_wait_s=60.0)
    for _ in range(3):
        reconciler.reconcile_once()
    assert not h.runtime.launched and h.status("cam") == "STARTING"
    # A release from another node than the owner, or of an earlier Start, changes nothing.
    LocalLedger(h.appliers, "node-y").post(ReleaseProcessor("cam", entry.session_id))
    LocalLedger(h.appliers, "node-x").post(ReleaseProcessor("cam", "an-earlier-start"))
    assert entry.owner == "node-x"
    LocalLedger(h.appliers, "node-x").post(ReleaseProcessor("cam", entry.session_id))
    assert entry.owner == "" and ProcessorStore(h.db).load()[0].owner == ""
    reconciler.reconcile_once()
    assert [s.plan.name for s in h.runtime.launched] == ["cam"] and entry.owner == "local"


def test_a_handover_waits_a_bounded_time_and_not_for_a_node_that_left(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    for name, owner in (("cam", "node-x"), ("door", "node-gone")):
        h.create(name)
        h.service.start(name)
        h.registry.require(name).owner = owner
    reconciler = loop(h, {"members": lambda: {"local", "node-x"}}, handover_wait_s=0.3)
    reconciler.reconcile_once()
    assert [s.plan.name for s in h.runtime.launched] == ["door"]  # its node left the group
    time.sleep(0.35)
    with caplog.at_level(logging.WARNING, logger="streamproc.processors.handover"):
        reconciler.reconcile_once()
    assert sorted(s.plan.name for s in h.runtime.launched) == ["cam", "door"]
    assert "processor cam: node-x did not release it within 0 s; starting it here" in \
        caplog.messages


def _started(h: Harness, hooks: dict[str, Any] | None = None, **settings: Any
             ) -> tuple[_CountingLedger, Reconciler]:
    """A started "cam" after one pass of a reconciler that posts through a counting ledger."""
    ledger = _CountingLedger(h.ledger)
    reconciler = loop(h, hooks, ledger=ledger, **settings)
    h.create("cam")
    h.service.start("cam")
    reconciler.reconcile_once()
    return ledger, reconciler


def _moving(h: Harness, ledger: Any, **settings: Any) -> tuple[set[str], Reconciler]:
    """A running "cam" on this node (a member beside node-y), and the set that places it."""
    placed = {"cam"}
    reconciler = loop(h, {"placement": lambda name: name in placed,
                          "members": lambda: {"local", "node-y"}}, ledger=ledger, **settings)
    h.create("cam")
    h.service.start("cam")
    reconciler.reconcile_once()
    return placed, reconciler


def test_a_node_releases_a_moved_processor_once_its_halt_is_over(h: Harness) -> None:
    ledger = _CountingLedger(h.ledger)
    placed, reconciler = _moving(h, ledger)
    entry = h.registry.require("cam")
    assert entry.owner == "local"
    h.runtime.stuck.add("cam")  # its read is slow to end
    placed.clear()  # the group moved it to node-y
    reconciler.reconcile_once()
    assert ("processor.release", "") not in ledger.posts and entry.owner == "local"
    h.runtime.stuck.clear()
    reconciler.reconcile_once()
    assert ledger.posts.count(("processor.release", "")) == 1 and entry.owner == ""
    reconciler.reconcile_once()
    assert ledger.posts.count(("processor.release", "")) == 1  # once it is in the state


def test_a_single_node_hands_nothing_over(h: Harness) -> None:
    ledger, reconciler = _started(h)
    h.service.stop("cam")
    for _ in range(3):
        reconciler.reconcile_once()
    assert h.status("cam") == "STOPPED" and h.registry.require("cam").owner == "local"
    assert ("processor.release", "") not in ledger.posts


def test_a_node_relaunches_its_own_processor_without_waiting(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.registry.require("cam").owner = "local"  # this node ran it before (a restart, a crash)
    reconciler = loop(h, {"members": lambda: {"local", "node-x"}}, handover_wait_s=60.0)
    reconciler.reconcile_once()
    assert [s.plan.name for s in h.runtime.launched] == ["cam"]


def test_after_a_restart_a_node_releases_what_it_owned_and_is_placed_elsewhere(
        h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    entry = h.registry.require("cam")
    entry.owner = "local"  # the state says this node runs it; this new process does not
    ledger = _CountingLedger(h.ledger)
    loop(h, {"placement": lambda name: False, "members": lambda: {"local", "node-y"}},
         ledger=ledger).reconcile_once()
    assert ledger.posts == [("processor.release", "")] and entry.owner == ""


def test_a_processor_moved_away_back_and_away_again(h: Harness) -> None:
    ledger = _CountingLedger(h.ledger)
    placed, x = _moving(h, ledger)
    entry = h.registry.require("cam")
    placed.clear()  # away: halted and released
    x.reconcile_once()
    assert entry.owner == "" and len(h.runtime.launched) == 1
    placed.add("cam")  # back: relaunched, and claimed again at once (not held back)
    x.reconcile_once()
    x.reconcile_once()
    assert len(h.runtime.launched) == 2 and entry.owner == "local"
    assert ledger.posts.count(("processor.claim", "")) == 2
    # Seen from node-y: it waits for this node's release; a wait broken off by the
    # processor moving back does not count when it moves to node-y again.
    y_places = {"cam"}
    y = loop(h, {"placement": lambda name: name in y_places,
                 "members": lambda: {"local", "node-y"}}, handover_wait_s=0.3,
             ledger=LocalLedger(h.appliers, "node-y"))
    y.reconcile_once()
    y_places.clear()
    y.reconcile_once()
    time.sleep(0.35)
    y_places.add("cam")
    y.reconcile_once()
    assert len(h.runtime.launched) == 2  # waits anew: "local" still runs it


def test_a_failed_processor_is_released(h: Harness) -> None:
    ledger, reconciler = _started(h, {"members": lambda: {"local", "node-y"}})
    session = h.runtime.latest("cam")
    h.mailbox.collection_gone("people", session.plan.collection.created)
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert h.status("cam") == "FAILED" and h.registry.require("cam").owner == ""


def test_a_processor_waiting_out_a_crash_here_is_not_released(h: Harness) -> None:
    ledger, reconciler = _started(h, {"members": lambda: {"local", "node-y"}},
                                  restart_delay_s=60.0)
    h.runtime.latest("cam").crashed("ZeroDivisionError: division by zero")
    for _ in range(3):
        reconciler.reconcile_once()  # halted, waiting for its restart delay: still ours
    assert len(h.runtime.launched) == 1 and ("processor.release", "") not in ledger.posts
    assert h.registry.require("cam").owner == "local"


class _InOrderLedger:
    """Posts land later, in the order they were made (as a cluster's log delivers them)."""

    def __init__(self, inner: Any) -> None:
        self._inner, self.node_id = inner, inner.node_id
        self.queued: list[Command[Any]] = []

    def submit(self, command: Command[Any]) -> Any:
        return self._inner.submit(command)

    def post(self, command: Command[Any]) -> None:
        self.queued.append(command)

    def land(self) -> None:
        queued, self.queued = self.queued, []
        for command in queued:
            self._inner.post(command)


def test_a_relaunch_before_the_own_release_landed_claims_again(h: Harness) -> None:
    ledger = _InOrderLedger(h.ledger)
    placed, x = _moving(h, ledger)
    ledger.land()
    entry = h.registry.require("cam")
    assert entry.owner == "local"
    placed.clear()
    x.reconcile_once()  # halted; its release is on the way
    placed.add("cam")
    x.reconcile_once()  # relaunched while the state still says "local"
    ledger.land()  # the release lands, then what the relaunch said
    assert len(h.runtime.launched) == 2 and entry.owner == "local"


def test_only_the_owner_releases(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.registry.require("cam").owner = "node-x"  # another node runs it
    ledger = _CountingLedger(h.ledger)
    loop(h, {"placement": lambda name: False, "members": lambda: {"local", "node-x"}},
         ledger=ledger).reconcile_once()
    assert ("processor.release", "") not in ledger.posts


def test_a_claim_after_a_release_is_said_once(h: Harness) -> None:
    ledger = _CountingLedger(h.ledger)
    placed, x = _moving(h, ledger, repost_s=0.0)
    placed.clear()
    x.reconcile_once()  # halted and released
    placed.add("cam")
    for _ in range(4):
        x.reconcile_once()  # relaunched and claimed; the claim is in the state
    assert ledger.posts.count(("processor.claim", "")) == 2
    assert ledger.posts.count(("processor.release", "")) == 1


# ---- the per-processor record, the node's conditions, what a node says --------------------------

def test_a_processor_gone_from_the_registry_is_forgotten_in_every_respect(h: Harness) -> None:
    ledger = _CountingLedger(h.ledger, drop={"running"})
    reconciler = loop(h, ledger=ledger, repost_s=60.0)
    h.create("cam")
    h.service.start("cam")
    reconciler.reconcile_once()
    h.runtime.latest("cam").report_frame()
    reconciler.reconcile_once()  # "running" said (and lost): not said again for 60 s
    entry = h.registry.require("cam")
    h.registry.remove("cam")
    reconciler.reconcile_once()
    assert reconciler.running_names() == [] and len(h.runtime.halting) == 1
    h.registry.add(entry)  # the same name and Start again: nothing of the old one is kept
    reconciler.reconcile_once()
    h.runtime.latest("cam").report_frame()
    reconciler.reconcile_once()
    assert len(h.runtime.launched) == 2
    assert ledger.posts.count(("processor.report", "running")) == 2


def test_a_slot_is_made_on_demand_and_dropped_whole() -> None:
    slots = ProcessorSlots()
    slot = slots.of("cam")
    assert slots.of("cam") is slot and slot.name == "cam" and slot.run is None
    slot.retry_at, slot.failing = 5.0, PendingFailure("s1", "why")
    slots.of("door")
    assert [s.name for s in slots.others({"door"})] == ["cam"]
    slots.drop("cam")
    slots.drop("never")  # nothing to forget
    fresh = slots.of("cam")
    assert fresh is not slot and (fresh.retry_at, fresh.failing, fresh.posted) == (0.0, None, {})
    assert slots.others({"cam", "door"}) == [] and slots.running() == set()


def test_a_slot_keeps_one_restart_budget_per_start() -> None:
    slot = ProcessorSlot("cam")
    budget = slot.budget_for("s1", 1, 60.0)
    assert slot.budget_for("s1", 1, 60.0) is budget
    assert budget.allow(0.0) and not budget.allow(1.0)  # one restart, spent
    again = slot.budget_for("s2", 1, 60.0)  # a new Start, a new budget
    assert again is not budget and again.allow(1.0)


def test_a_handover_wait_counts_for_one_owner_and_start() -> None:
    slot = ProcessorSlot("cam")
    assert slot.waited_s("node-x", "s1", 10.0) == 0.0
    assert slot.waited_s("node-x", "s1", 12.5) == 2.5
    assert slot.waited_s("node-y", "s1", 13.0) == 0.0  # another owner waits anew
    assert slot.waited_s("node-y", "s2", 14.0) == 0.0  # another Start too
    assert slot.waiting == HandoverWait("node-y", "s2", 14.0)


def test_the_slots_tell_which_processors_run_and_what_they_search(h: Harness) -> None:
    session = h.launch("cam")
    slots = ProcessorSlots()
    slots.of("idle")
    slots.of("cam").run = Run(session, "s1", 0)
    info = session.plan.collection
    assert slots.running() == {"cam"} and [s.name for s in slots.runs()] == ["cam"]
    assert slots.collections() == {CollectionKey(info.collection_id, info.created)}


def _plan_to(h: Harness, destination: str) -> Any:
    plan = h.launch("cam").plan
    return dataclasses.replace(plan, output=dataclasses.replace(plan.output,
                                                                destination=destination))


def test_node_conditions_block_by_stage_then_destination_then_collection(h: Harness) -> None:
    plan = _plan_to(h, "k:1")
    key = CollectionKey(plan.collection.collection_id, plan.collection.created)
    c = NodeConditions()
    assert c.blocked(plan) is None and c.outage("k:1") == ""
    c.note(Events(collections_gone={key, CollectionKey("other", 1.0)}), {key})
    assert c.gone == {key} and c.blocked(plan) == "Collection not found"
    c.note(Events(unreachable={"k:1": "down 301 s"}), {key})
    assert c.blocked(plan) == "down 301 s"
    c.note(Events(fail_all="analyzer gave up"), {key})
    assert c.blocked(plan) == "analyzer gave up"
    c.note(Events(), set())  # no run searches the collection any more
    assert c.gone == set() and c.stage_down == "analyzer gave up"  # a dead stage stays


def test_a_destination_back_is_neither_down_nor_unreachable(h: Harness) -> None:
    plan = _plan_to(h, "k:1")
    c = NodeConditions()
    c.note(Events(outages={"k:1": "down 6 s", "k:2": "down 9 s"}), set())
    assert (c.outage("k:1"), c.outage("k:2")) == ("down 6 s", "down 9 s")
    c.note(Events(unreachable={"k:1": "down 301 s"}), set())
    c.note(Events(outages={"k:1": None}), set())
    assert c.outage("k:1") == "" and c.blocked(plan) is None and c.outage("k:2") == "down 9 s"


class _Posts:
    """A ledger that keeps what is posted to it."""

    node_id = "local"

    def __init__(self) -> None:
        self.commands: list[Command[Any]] = []

    def submit(self, command: Command[Any]) -> Any:
        raise AssertionError

    def post(self, command: Command[Any]) -> None:
        self.commands.append(command)


def test_reports_are_typed_commands_said_again_only_after_repost_s(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    entry, posts = h.registry.require("cam"), _Posts()
    reports, posted = Reports(posts, 60.0), dict[Said, Posted]()
    sid = entry.session_id
    reports.report(entry, posted, Report.RUNNING)
    reports.report(entry, posted, Report.RUNNING)  # the same word: held back
    reports.report(entry, posted, Report.MESSAGE, "down 6 s")
    reports.report(entry, posted, Report.MESSAGE, "down 9 s")  # another message: said
    assert posts.commands == [ReportProcessor("cam", sid, Report.RUNNING),
                              ReportProcessor("cam", sid, Report.MESSAGE, "down 6 s"),
                              ReportProcessor("cam", sid, Report.MESSAGE, "down 9 s")]
    entry.session_id = "a-later-start"
    reports.report(entry, posted, Report.RUNNING)  # another Start: said
    assert posts.commands[-1] == ReportProcessor("cam", "a-later-start", Report.RUNNING)
    Reports(posts, 0.0).report(entry, posted, Report.RUNNING)  # repost_s passed
    assert len(posts.commands) == 5


def test_the_latest_of_claim_and_release_is_what_a_node_says(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    entry, posts = h.registry.require("cam"), _Posts()
    reports, posted = Reports(posts, 60.0), dict[Said, Posted]()
    sid = entry.session_id
    reports.claim(entry, posted)
    reports.claim(entry, posted)
    assert not Reports.released_last(posted)
    reports.release(entry, posted)
    assert Reports.released_last(posted)
    reports.claim(entry, posted)  # not held back by the first claim's de-duplication
    reports.release(entry, posted)
    assert posts.commands == [ClaimProcessor("cam", sid), ReleaseProcessor("cam", sid),
                              ClaimProcessor("cam", sid), ReleaseProcessor("cam", sid)]


class _Clock:
    """time.monotonic for one module, set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _entry(owner: str, session_id: str = "s1") -> Any:
    """What Handover and Reports read of a registry entry."""
    return SimpleNamespace(owner=owner, session_id=session_id,
                           spec=SimpleNamespace(name="cam"))


def _handover(monkeypatch: pytest.MonkeyPatch, wait_s: float = 5.0) -> tuple[Handover, _Clock]:
    clock = _Clock(100.0)
    monkeypatch.setattr("streamproc.processors.handover.time.monotonic", clock)
    return Handover("me", wait_s, Reports(LocalLedger(Appliers()), 60.0)), clock


def test_a_handover_starts_exactly_when_the_wait_is_over(monkeypatch: pytest.MonkeyPatch) -> None:
    handover, clock = _handover(monkeypatch)
    slot = ProcessorSlot("cam")
    assert not handover.may_start(_entry("other"), slot, {"me", "other"})
    clock.now = 104.5
    assert not handover.may_start(_entry("other"), slot, {"me", "other"})
    clock.now = 105.0
    assert handover.may_start(_entry("other"), slot, {"me", "other"})
    assert slot.waiting is None


def test_a_new_owner_or_start_restarts_the_handover_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    handover, clock = _handover(monkeypatch)
    slot, members = ProcessorSlot("cam"), {"me", "a", "b"}
    assert not handover.may_start(_entry("a", "s1"), slot, members)
    clock.now = 110.0
    assert not handover.may_start(_entry("b", "s1"), slot, members)  # another owner
    clock.now = 120.0
    assert not handover.may_start(_entry("b", "s2"), slot, members)  # another Start


def test_after_a_handover_without_waiting_a_later_one_waits_anew(
        monkeypatch: pytest.MonkeyPatch) -> None:
    handover, clock = _handover(monkeypatch)
    slot = ProcessorSlot("cam")
    assert not handover.may_start(_entry("a"), slot, {"me", "a"})
    assert handover.may_start(_entry("a"), slot, {"me"})  # a left the cluster
    assert slot.waiting is None
    clock.now = 200.0
    assert not handover.may_start(_entry("a"), slot, {"me", "a"})  # a is back: wait again
    clock.now = 205.0
    assert handover.may_start(_entry("a"), slot, {"me", "a"})



def test_a_report_is_posted_again_exactly_after_repost_s(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(100.0)
    monkeypatch.setattr("streamproc.processors.reports.time.monotonic", clock)
    ledger = _Posts()
    reports, posted = Reports(ledger, 30.0), dict[Said, Posted]()
    reports.report(_entry("me"), posted, Report.FAILED, "why")
    clock.now = 129.5
    reports.report(_entry("me"), posted, Report.FAILED, "why")
    assert len(ledger.commands) == 1
    clock.now = 130.0
    reports.report(_entry("me"), posted, Report.FAILED, "why")
    assert len(ledger.commands) == 2


def test_a_collection_gone_stays_gone_while_a_run_searches_it(h: Harness) -> None:
    plan = _plan_to(h, "k:1")
    key = CollectionKey(plan.collection.collection_id, plan.collection.created)
    c = NodeConditions()
    c.note(Events(collections_gone={key}), {key})
    c.note(Events(), {key})  # a later batch without deletions
    assert c.gone == {key} and c.blocked(plan) == "Collection not found"


def test_a_failure_contained_in_a_turn_halts_the_processors_own_run(h: Harness) -> None:
    broken = {"now": False}

    def placement(name: str) -> bool:
        if broken["now"]:
            raise OSError("disk gone")
        return True

    reconciler = loop(h, {"placement": placement})
    h.create("cam")
    h.service.start("cam")
    reconciler.reconcile_once()
    session = h.runtime.latest("cam")
    broken["now"] = True
    reconciler.reconcile_once()
    assert h.status("cam") == "FAILED" and h.message("cam").startswith("Internal error: OSError")
    assert session in h.runtime.halting and h.runtime.live() == []


def test_a_handover_wait_broken_off_then_begun_again_still_waits(h: Harness) -> None:
    placed: set[str] = set()
    ledger = _CountingLedger(h.ledger)
    reconciler = loop(h, {"placement": lambda name: name in placed,
                          "members": lambda: {"local", "node-x"}}, ledger=ledger,
                      handover_wait_s=30.0)
    h.create("cam")
    h.service.start("cam")
    h.registry.require("cam").owner = "node-x"
    reconciler.reconcile_once()  # placed elsewhere: no wait
    placed.add("cam")
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert h.status("cam") == "STARTING" and h.runtime.launched == []
    assert [p for p in ledger.posts if p[1] == Report.FAILED.value] == []  # nothing broke


def test_a_crashed_run_is_relaunched_once_its_retry_time_is_reached(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    first = h.launch("cam")
    monkeypatch.setattr("streamproc.processors.reconciler.time",
                        SimpleNamespace(monotonic=lambda: 500.0))  # a clock that stands still
    first.crashed("ZeroDivisionError: division by zero")
    h.turn(3)  # restart_delay_s is 0: the retry time is now itself
    assert len(h.runtime.launched) == 2 and h.runtime.latest("cam") is not first


def test_an_outage_is_not_reported_for_a_processor_still_starting(h: Harness) -> None:
    ledger, reconciler = _started(h)
    h.events.destination_outage("k:9092", "Kafka cluster k:9092 unreachable for 6 s")
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert h.status("cam") == "STARTING"
    assert [p for p in ledger.posts if p[1] == Report.MESSAGE.value] == []


def test_the_reconciler_turns_on_its_tick_without_a_post(h: Harness) -> None:
    reconciler = loop(h, tick_s=0.05, restart_delay_s=0.3)
    h.create("cam")
    h.service.start("cam")
    reconciler.start()
    try:
        assert poll(lambda: len(h.runtime.launched) == 1, 3.0, every=0.01)
        h.runtime.latest("cam").crashed("ZeroDivisionError: division by zero")
        # The retry is due on a tick.
        assert poll(lambda: len(h.runtime.launched) == 2, 3.0, every=0.01)
    finally:
        reconciler.stop(1.0)
