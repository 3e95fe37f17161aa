"""The supervisor on its own (no models): restarts with backoff and budget, stuck stages."""

from __future__ import annotations

import threading
import time

from streamproc.lifecycle import Service
from streamproc.supervisor import HEALTHY, RestartBudget, RestartPolicy, Supervisor


class _Dies(Service):
    def __init__(self) -> None:
        super().__init__("dies")
        self.runs = 0

    def _run(self) -> None:
        self.runs += 1
        msg = f"crash {self.runs}"
        raise RuntimeError(msg)


class _Hangs(Service):
    def __init__(self) -> None:
        super().__init__("hangs")
        self.release = threading.Event()

    def _run(self) -> None:
        self.release.wait(10)  # never beats while it waits


def _healthy(supervisor: Supervisor) -> bool:
    """Every stage alive and making progress (or busy with a long job), as /health judges."""
    return all(s["state"] in HEALTHY for s in supervisor.report().values())


def _until_dead(service: Service) -> None:
    deadline = time.monotonic() + 2
    while service.running and time.monotonic() < deadline:
        time.sleep(0.01)


def test_budget_is_a_sliding_window() -> None:
    budget = RestartBudget(2, window_s=10)
    assert budget.allow(0) and budget.allow(1) and not budget.allow(2)
    assert budget.allow(10.5)  # the first restart left the window


def test_restarts_back_off_then_give_up_once() -> None:
    gave_up: list[tuple[str, str]] = []
    supervisor = Supervisor(RestartPolicy(max_restarts=2, backoff_initial_s=1.0),
                            on_give_up=lambda n, r: gave_up.append((n, r)))
    dies = _Dies()
    supervisor.watch(dies)
    stage = supervisor._stages["dies"]
    dies.start()
    _until_dead(dies)
    supervisor.check("dies", stage, 100.0)  # died: restart scheduled after 1 s
    assert dies.runs == 1 and stage.restart_at == 101.0
    supervisor.check("dies", stage, 100.5)
    assert dies.runs == 1  # still backing off
    supervisor.check("dies", stage, 101.0)
    _until_dead(dies)
    assert dies.runs == 2
    supervisor.check("dies", stage, 102.0)  # second death: backoff doubled
    assert stage.restart_at == 104.0
    supervisor.check("dies", stage, 104.0)
    _until_dead(dies)
    supervisor.check("dies", stage, 105.0)  # third death: budget of 2 spent
    assert dies.runs == 3 and len(gave_up) == 1
    assert gave_up[0][1] == "dies stage failed 3 times in 60 s: RuntimeError('crash 3')"
    supervisor.check("dies", stage, 200.0)
    supervisor.check("dies", stage, 260.0)  # long after: a stage given up stays down
    time.sleep(0.05)
    assert dies.runs == 3 and len(gave_up) == 1
    assert supervisor.report()["dies"]["state"] == "failed" and not _healthy(supervisor)


def test_a_stage_without_progress_is_reported_stuck() -> None:
    supervisor = Supervisor(RestartPolicy(stuck_after_s=0.2))
    hangs = _Hangs()
    supervisor.watch(hangs)
    hangs.start()
    assert supervisor.report()["hangs"]["state"] == "ok"
    time.sleep(0.3)
    assert supervisor.report()["hangs"]["state"] == "stuck" and not _healthy(supervisor)
    hangs.release.set()
    hangs.stop(1)


def test_supervisor_stops_in_bounded_time() -> None:
    supervisor = Supervisor(RestartPolicy(), interval_s=0.05)
    supervisor.start()
    started = time.monotonic()
    assert supervisor.stop(1.0) and time.monotonic() - started < 0.5


def test_a_stage_busy_with_a_long_job_is_not_stuck() -> None:
    supervisor = Supervisor(RestartPolicy(stuck_after_s=0.1))
    hangs = _Hangs()
    supervisor.watch(hangs)
    hangs.start()
    hangs.busy = "rebuilding the index of collection big"
    time.sleep(0.2)
    report = supervisor.report()["hangs"]
    assert report["state"] == "busy" and _healthy(supervisor)
    hangs.busy = None
    assert supervisor.report()["hangs"]["state"] == "stuck"
    hangs.release.set()
    hangs.stop(1)


def test_the_index_builder_beats_while_idle() -> None:
    from streamproc.storage.builder import IndexBuilder

    supervisor = Supervisor(RestartPolicy(stuck_after_s=1.0))  # it beats every 0.2 s
    builder = IndexBuilder()
    supervisor.watch(builder)
    builder.start()
    first = builder.last_beat
    deadline = time.monotonic() + 10
    while builder.last_beat < first + 1.5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert builder.last_beat >= first + 1.5, "no beat 1.5 s on without work"
    assert supervisor.report()["index-builder"]["state"] == "ok"
    builder.stop(1)


def test_a_reconciler_that_gave_up_makes_the_daemon_exit() -> None:
    from streamproc.config import load_config
    from streamproc.daemon import Daemon

    daemon = Daemon(load_config(None, {}))  # nothing started: only the decision is tested
    daemon._stage_gave_up("index-builder", "index-builder stage failed 6 times")
    assert not daemon.fatal.is_set()
    daemon._stage_gave_up("reconciler", "reconciler stage failed 6 times in 60 s: boom")
    assert daemon.fatal.is_set() and daemon.fatal_reason.startswith("reconciler stage")


class _Loop:
    """A control loop's stop flag (the reconciler's, the job scheduler's)."""

    def __init__(self) -> None:
        self.asked = False

    def request_stop(self) -> None:
        self.asked = True


def test_what_a_stage_that_gave_up_leads_to_on_one_daemon_and_on_a_cluster_node() -> None:
    from types import SimpleNamespace

    from streamproc.config import load_config
    from streamproc.daemon import Daemon
    from streamproc.jobs.mailbox import JobMailbox, StageDown

    daemon = Daemon(load_config(None, {}))  # nothing started: only the decision is tested
    jobs = SimpleNamespace(mailbox=JobMailbox(), scheduler=_Loop())
    daemon.jobs = jobs  # type: ignore[assignment]
    daemon.reconciler = _Loop()  # type: ignore[assignment]
    # One daemon: the publisher fails the processors; the analyzer also the jobs it analyses.
    daemon._stage_gave_up("publisher", "publisher stage failed 2 times")
    assert daemon.mailbox.take().fail_all == "publisher stage failed 2 times"
    assert jobs.mailbox.take().down is None
    daemon._stage_gave_up("analyzer", "analyzer stage failed 2 times")
    assert daemon.mailbox.take().fail_all == "analyzer stage failed 2 times"
    assert jobs.mailbox.take().down == StageDown("analyzer stage failed 2 times")
    assert not daemon.fatal.is_set() and not daemon.reconciler.asked  # type: ignore[attr-defined]
    # A cluster node: nothing fails (it is cluster state), the node stops taking work and
    # leaves; a later give-up does not replace the reason that made it leave.
    for stage in ("analyzer", "publisher"):
        node = Daemon(load_config(None, {}))
        node.cluster = object()  # type: ignore[assignment]
        node.jobs = SimpleNamespace(mailbox=JobMailbox(), scheduler=_Loop())  # type: ignore[assignment]
        node.reconciler = _Loop()  # type: ignore[assignment]
        node._stage_gave_up(stage, f"{stage} stage failed 2 times")
        assert node.fatal.is_set()
        assert node.fatal_reason == (f"{stage} stage failed 2 times; "
                                     "leaving the cluster to the other nodes")
        assert node.reconciler.asked and node.jobs.scheduler.asked  # type: ignore[attr-defined]
        assert node.mailbox.take().fail_all is None
        assert node.jobs.mailbox.take().down is None
        node._stage_gave_up("ledger", "ledger stage failed 2 times")
        assert node.fatal_reason.startswith(f"{stage} stage failed 2 times; leaving")
