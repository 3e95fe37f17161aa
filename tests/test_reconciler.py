"""The processors' reconciler against a fake data plane: no models, broker or video needed."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import OTHER_MODEL, Harness

from streamproc.dataplane.regions import regions_from_wire, regions_to_wire
from streamproc.errors import InvalidParameterException, ResourceInUseException, StreamprocError
from streamproc.ledger import Command
from streamproc.processors.commands import Report, ReportProcessor


def _restarts(h: Harness, name: str) -> float:
    value = h.metrics_registry.get_sample_value("streamproc_processor_restarts_total",
                                                {"processor": name})
    return value or 0.0


def test_start_runs_stop_stops(h: Harness) -> None:
    h.create("cam")
    session_id = h.service.start("cam")
    assert h.status("cam") == "STARTING" and not h.runtime.launched  # the API only records
    h.turn()
    session = h.runtime.latest("cam")
    assert session.plan.collection.collection_id == "people"
    assert session.plan.output.destination == "k:9092"
    assert session.plan.output.topic == "out-cam"
    session.report_frame()
    h.turn()
    assert h.status("cam") == "RUNNING"
    h.service.stop("cam")
    assert h.status("cam") == "STOPPING"
    h.turn()
    assert h.status("cam") == "STOPPED" and not session.active.is_set()
    assert h.runtime.halting == [session]
    assert session_id and h.registry.require("cam").desired.value == "STOPPED"


def test_a_failure_is_an_event_for_the_loop(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    session = h.runtime.latest("cam")
    session.report_frame()
    session.fail("Stream unavailable for 300 s: tcp://cam-cam:1: Connection refused")
    assert h.status("cam") == "STARTING"  # nothing changed on the reporting thread
    assert not session.active.is_set()  # but it produces nothing more
    h.turn()
    assert h.status("cam") == "FAILED"
    assert h.message("cam").startswith("Stream unavailable for 300 s")
    # FAILED stays down, also after a daemon restart: desired state is STOPPED.
    assert h.registry.require("cam").desired.value == "STOPPED"
    h.turn(3)
    assert len(h.runtime.launched) == 1


def test_stale_events_of_an_earlier_launch_are_ignored(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    first = h.runtime.latest("cam")
    h.service.stop("cam")
    h.turn()
    h.service.start("cam")
    h.turn()
    second = h.runtime.latest("cam")
    assert second is not first and second.plan.generation > first.plan.generation
    first.fail("late news from the old reader")  # a reader that outlived its halt
    first.crashed("late crash of the old reader")
    h.turn()
    assert h.status("cam") == "STARTING" and second.active.is_set()
    assert first.ended is None  # a halted session cannot end itself any more


def test_a_crashed_reader_is_restarted_within_its_budget(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    for attempt in range(h.max_restarts):
        session = h.runtime.latest("cam")
        session.report_frame()
        session.crashed("ZeroDivisionError: division by zero")
        h.turn(2)
        assert h.status("cam") in ("STARTING", "RUNNING")
        assert len(h.runtime.launched) == attempt + 2
        assert h.runtime.latest("cam").plan.generation > session.plan.generation
    assert _restarts(h, "cam") == h.max_restarts
    h.runtime.latest("cam").crashed("ZeroDivisionError: division by zero")
    h.turn()
    assert h.status("cam") == "FAILED"
    assert h.message("cam") == (f"Processing crashed {h.max_restarts + 1} times within 60 s: "
                                "ZeroDivisionError: division by zero")


def test_a_blocked_reader_does_not_stall_other_processors(tmp_path: Path) -> None:
    # A stop timeout far above a turn's own time (SQLite syncs each write): a turn that
    # waited for the stuck reader would take it.
    h = Harness(tmp_path, stop_timeout_s=3.0)
    h.add_collection("people")
    try:
        _blocked_reader_turn(h)
    finally:
        h.reconciler.stop(1.0)
        h.close()


def _blocked_reader_turn(h: Harness) -> None:
    h.create("stuck")
    h.create("other")
    h.runtime.stuck.add("stuck")
    h.service.start("stuck")
    h.turn()
    h.service.stop("stuck")
    h.service.start("other")
    started = time.monotonic()
    h.turn()  # one turn: the stop is begun and the other processor launched
    assert time.monotonic() - started < h.stop_timeout_s / 2
    assert h.runtime.latest("other").active.is_set()
    assert h.status("stuck") == "STOPPING"
    assert h.settle("stuck", {"STOPPED"}, h.stop_timeout_s + 5) == "STOPPED"
    assert time.monotonic() - started < h.stop_timeout_s + 2
    assert [s.plan.name for s in h.runtime.abandoned] == ["stuck"]


def test_deleted_collection_fails_its_processors_only(h: Harness) -> None:
    h.add_collection("others")
    h.create("a")
    h.create("b", collection="others")
    h.service.start("a")
    h.service.start("b")
    h.turn()
    h.mailbox.collection_gone("people", h.collections.get("people").created)
    h.turn()
    assert (h.status("a"), h.message("a")) == ("FAILED", "Collection not found")
    assert h.status("b") == "STARTING"


def test_outage_is_shown_while_running_and_fails_when_too_long(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    h.runtime.latest("cam").report_frame()
    h.turn()
    h.events.destination_outage("k:9092", "Kafka cluster k:9092 unreachable for 6 s")
    h.turn()
    assert (h.status("cam"), h.message("cam")) == ("RUNNING",
                                                   "Kafka cluster k:9092 unreachable for 6 s")
    h.events.destination_outage("k:9092", None)
    h.turn()
    assert (h.status("cam"), h.message("cam")) == ("RUNNING", "")
    h.events.destination_unreachable("k:9092", "Kafka cluster k:9092 unreachable for 301 s")
    h.turn()
    assert h.status("cam") == "FAILED" and "301 s" in h.message("cam")


def test_a_stage_that_gave_up_fails_every_running_processor(h: Harness) -> None:
    for name in ("a", "b"):
        h.create(name)
        h.service.start(name)
    h.turn()
    h.mailbox.fail_all("analyzer stage failed 6 times in 60 s: RuntimeError('boom')")
    h.turn()
    assert {h.status("a"), h.status("b")} == {"FAILED"}
    assert h.message("a").startswith("analyzer stage failed")
    assert not h.runtime.live()


def test_start_refuses_a_collection_made_by_another_model(h: Harness) -> None:
    h.add_collection("theirs", OTHER_MODEL)
    with pytest.raises(InvalidParameterException, match="test_sface"):
        h.create("cam", collection="theirs")
    h.create("late", collection="later")  # a missing collection is no reason to refuse Create
    h.add_collection("later", OTHER_MODEL)
    with pytest.raises(InvalidParameterException, match="created with model pack test_sface"):
        h.service.start("late")
    assert h.status("late") == "STOPPED"


def test_a_collection_replaced_between_start_and_launch_fails_the_launch(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.collections.delete("people")
    h.add_collection("people", OTHER_MODEL)
    h.turn()
    assert h.status("cam") == "FAILED" and "test_sface" in h.message("cam")
    assert not h.runtime.launched


def test_missing_stream_mapping_fails_with_rekognitions_message(h: Harness) -> None:
    h.create("kvs", input_arn="arn:aws:kinesisvideo:us-east-1:123456789012:stream/door/1")
    h.service.start("kvs")
    h.turn()
    assert (h.status("kvs"), h.message("kvs")) == ("FAILED", "Stream door doesn't exist")


def test_update_reaches_the_running_session(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    h.runtime.latest("cam").report_frame()
    h.turn()
    region = {"BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 0.5, "Height": 1.0}}
    h.service.update("cam", regions_from_wire([region]), None, [], False)
    h.turn()
    assert regions_to_wire(h.runtime.latest("cam").regions) == [region]
    h.service.update("cam", None, None, ["RegionsOfInterest"], False)
    h.turn()
    assert h.runtime.latest("cam").regions == ()
    assert len(h.runtime.launched) == 1  # updated in place, not restarted


def test_processors_that_should_run_resume_after_a_restart(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.add_collection("people")
    first.create("cam")
    first.create("idle")
    first.service.start("cam")
    first.turn()
    first.runtime.latest("cam").report_frame()
    first.turn()
    first.reconciler.stop(1.0)
    first.close()
    second = Harness(tmp_path)
    second.rules.load()
    assert second.status("cam") == "RUNNING" and second.status("idle") == "STOPPED"
    second.turn()
    assert [s.plan.name for s in second.runtime.launched] == ["cam"]
    assert second.status("cam") == "STARTING"  # until the new launch decodes a frame
    second.runtime.latest("cam").report_frame()
    second.turn()
    assert second.status("cam") == "RUNNING"
    second.close()


def test_the_loop_thread_converges_and_stops_in_bounded_time(h: Harness) -> None:
    h.create("cam")
    h.reconciler.start()
    h.service.start("cam")
    deadline = time.monotonic() + 2
    while not h.runtime.launched and time.monotonic() < deadline:
        time.sleep(0.01)
    assert h.runtime.launched, "the loop did not launch the session"
    h.runtime.stuck.add("cam")
    started = time.monotonic()
    assert h.reconciler.stop(1.0)
    assert time.monotonic() - started < h.stop_timeout_s + 1.0
    assert h.runtime.abandoned  # the stuck reader was given up, not waited for


def test_api_threads_and_the_loop_hammer_the_registry(h: Harness) -> None:
    """Many API threads race the loop; every processor ends consistent, nothing raises."""
    names = [f"p{i}" for i in range(8)]
    for name in names:
        h.create(name)
    h.reconciler.start()
    errors: list[BaseException] = []
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            name = rng.choice(names)
            try:
                rng.choice([h.service.start, h.service.stop, h.service.describe,
                            lambda n: h.service.update(n, (), None, [], False)])(name)
                if rng.random() < 0.05:
                    h.runtime.latest(name).fail("flaky camera")
            except (ResourceInUseException, IndexError):
                pass
            except (StreamprocError, Exception) as exc:  # noqa: BLE001 - anything else is a bug
                errors.append(exc)

    def frames() -> None:  # sessions report their first frame at random moments
        rng = random.Random(99)
        while not stop.is_set():
            for session in h.runtime.live():
                if rng.random() < 0.3:
                    session.report_frame()
            time.sleep(0.001)

    violations: list[str] = []

    def invariants() -> None:  # checked while everything runs, not only at the end
        while not stop.is_set():
            live = [s.plan.name for s in h.runtime.live()]
            doubled = {n for n in live if live.count(n) > 1}
            if doubled:
                violations.append(f"two live sessions for {sorted(doubled)}")
            time.sleep(0.002)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=frames), threading.Thread(target=invariants)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(5)
    assert errors == []
    assert violations == []
    for name in names:
        try:
            h.service.stop(name)
        except ResourceInUseException:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
            h.runtime.live() or any(h.status(n) not in ("STOPPED", "FAILED") for n in names)):
        time.sleep(0.02)
    assert h.runtime.live() == []
    assert {h.status(n) for n in names} <= {"STOPPED", "FAILED"}
    assert h.reconciler.error is None and h.reconciler.running


def test_the_record_side_threshold_is_clamped_to_80(h: Harness) -> None:
    h.create("low", threshold=50.0)
    h.create("high", threshold=92.5)
    h.service.start("low")
    h.service.start("high")
    h.turn()
    assert h.runtime.latest("low").plan.threshold == 80.0  # what the analyzer searches with
    assert h.runtime.latest("high").plan.threshold == 92.5


def test_a_crashed_session_waits_its_restart_delay(tmp_path: Path) -> None:
    h = Harness(tmp_path, restart_delay_s=0.3)
    h.add_collection("people")
    h.create("cam")
    h.service.start("cam")
    h.turn()
    h.runtime.latest("cam").crashed("analysis: KeyError: 'x'")
    h.turn(3)
    assert len(h.runtime.launched) == 1  # not relaunched before the delay
    time.sleep(0.35)
    h.turn()
    assert len(h.runtime.launched) == 2
    h.reconciler.stop(1.0)
    h.close()


def test_a_new_start_gets_a_fresh_restart_budget(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    for _ in range(h.max_restarts):  # spend the whole budget of this Start
        h.runtime.latest("cam").crashed("bug")
        h.turn(2)
    h.service.stop("cam")
    h.turn()
    h.service.start("cam")
    h.turn()
    h.runtime.latest("cam").crashed("bug")
    h.turn(2)
    assert h.status("cam") == "STARTING"  # restarted, not FAILED


def test_the_first_reason_a_session_ends_with_wins(h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    session = h.runtime.latest("cam")
    session.fail("Stream unavailable for 300 s: the cause")
    session.fail("a consequence")
    session.crashed("another consequence")
    h.turn()
    assert h.message("cam") == "Stream unavailable for 300 s: the cause"


def test_a_missing_collection_at_launch_fails_with_rekognitions_message(h: Harness) -> None:
    h.create("cam", collection="nobody")
    h.service.start("cam")
    h.turn()
    assert (h.status("cam"), h.message("cam")) == ("FAILED", "Collection not found")


def test_a_failure_is_persisted_as_not_wanted(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.add_collection("people")
    first.create("cam")
    first.service.start("cam")
    first.turn()
    first.runtime.latest("cam").fail("Cannot open tcp://cam-cam:1: Connection refused")
    first.turn()
    first.close()
    second = Harness(tmp_path)
    second.rules.load()
    second.turn(2)
    assert second.status("cam") == "FAILED" and not second.runtime.launched
    second.close()


def test_one_broken_processor_does_not_stop_the_loop_for_others(h: Harness) -> None:
    h.create("good")
    h.create("bad")
    real = h.service.emit_mode

    def emit_mode(spec: Any) -> str:
        if spec.name == "bad":
            msg = "a bug in one processor's settings"
            raise RuntimeError(msg)
        return real(spec)

    h.reconciler._hooks = dataclasses.replace(h.reconciler._hooks, emit_mode=emit_mode)
    h.service.start("bad")
    h.service.start("good")
    h.turn()
    assert h.status("bad") == "FAILED"
    assert h.message("bad") == "Internal error: RuntimeError: a bug in one processor's settings"
    good = h.runtime.latest("good")
    h.service.stop("good")  # the loop still serves the others
    h.turn()
    assert h.status("good") == "STOPPED" and not good.active.is_set()


def test_a_report_lost_on_the_way_is_posted_again_and_nothing_relaunches(
        h: Harness) -> None:
    h.create("cam")
    h.service.start("cam")
    h.turn()
    session = h.runtime.latest("cam")
    dropped: list[ReportProcessor] = []
    real_post = h.ledger.post

    def lossy_post(command: Command[Any]) -> None:
        if isinstance(command, ReportProcessor) and command.event is Report.FAILED and \
                not dropped:
            dropped.append(command)  # as if the log never got it (a broker outage)
            return
        real_post(command)

    h.ledger.post = lossy_post  # type: ignore[method-assign]
    session.fail("Stream unavailable for 300 s")
    h.turn()
    assert dropped and h.status("cam") == "STARTING"  # the report did not arrive ...
    assert not session.active.is_set() and len(h.runtime.launched) == 1  # ... no relaunch
    time.sleep(h.repost_s)
    h.turn()
    assert h.status("cam") == "FAILED" and h.message("cam") == "Stream unavailable for 300 s"
    assert h.registry.require("cam").desired.value == "STOPPED"
    assert len(h.runtime.launched) == 1


def test_a_dead_stage_fails_later_launches_too(h: Harness) -> None:
    h.create("a")
    h.create("b")
    h.service.start("a")
    h.turn()
    h.mailbox.fail_all("analyzer stage failed 6 times in 60 s: RuntimeError('boom')")
    h.turn()
    h.service.start("b")
    h.turn()
    assert h.status("b") == "FAILED" and h.message("b").startswith("analyzer stage failed")
    assert [s.plan.name for s in h.runtime.launched] == ["a"]


def test_an_unreachable_destination_fails_launches_until_it_is_back(h: Harness) -> None:
    h.create("a")
    h.create("b")
    h.service.start("a")
    h.turn()
    h.events.destination_unreachable("k:9092", "Kafka cluster k:9092 unreachable for 301 s")
    h.turn()
    h.service.start("b")
    h.turn()
    assert h.status("b") == "FAILED" and "301 s" in h.message("b")
    h.events.destination_outage("k:9092", None)
    h.turn()
    h.service.start("b")
    h.turn()
    assert h.status("b") == "STARTING" and h.runtime.latest("b").active.is_set()


def test_a_deleted_and_recreated_collection_does_not_fail_new_launches(h: Harness) -> None:
    old = h.collections.get("people")
    h.create("cam")
    h.service.start("cam")
    h.turn()
    h.collections.delete("people")
    h.add_collection("people")
    h.mailbox.collection_gone("people", old.created)
    h.turn()
    assert h.status("cam") == "FAILED"
    h.service.start("cam")  # started again on the new collection of the same name
    h.turn()
    assert h.status("cam") == "STARTING" and h.runtime.latest("cam").active.is_set()
