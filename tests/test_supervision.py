"""A stage thread that dies is restarted, shown in /health and counted; past its budget
its processors go FAILED with the reason. Real daemon, a fault injected into the analyzer."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, make_config
from streams import create, wait_status

from streamproc.daemon import Daemon
from streamproc.tools.clusterkit import poll


def _health(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return resp.status, body


def _poll(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _restarts(daemon: Daemon, stage: str) -> float:
    return daemon.registry.get_sample_value("streamproc_stage_restarts_total",
                                            {"stage": stage}) or 0.0


def test_a_dead_analyzer_is_restarted_and_reported(tmp_path: Path, broker: Any) -> None:
    daemon = Daemon(make_config(tmp_path, **{"kafka.bootstrap": broker.bootstrap,
                                             "supervision.backoff_initial_s": 0.2}))
    daemon.start()
    try:
        analyzer = daemon.plane.stages["FaceSearch"]
        real = analyzer._collect
        calls = {"n": 0}

        def once_broken() -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                msg = "injected fault"
                raise RuntimeError(msg)
            return real()

        analyzer._collect = once_broken  # type: ignore[method-assign]
        assert _poll(lambda: calls["n"] >= 2, 5), "the analyzer was not restarted"
        # The supervisor counts the restart and exports stage_up after the thread is back.
        assert _poll(lambda: _restarts(daemon, "analyzer") == 1, 5)
        assert _poll(lambda: daemon.registry.get_sample_value(
            "streamproc_stage_up", {"stage": "analyzer"}) == 1, 5)
        status, body = _health(daemon)
        stage = body["stages"]["analyzer"]
        assert status == 200 and stage["state"] == "ok" and stage["restarts"] == 1
        assert "injected fault" in stage["last_error"]
        assert daemon.registry.get_sample_value("streamproc_stage_up",
                                                {"stage": "analyzer"}) == 1
    finally:
        daemon.stop()


def _break_stage(daemon: Daemon, stage: str) -> None:
    def broken() -> Any:
        msg = f"the {stage} cannot run"
        raise RuntimeError(msg)

    if stage == "analyzer":
        daemon.plane.stages["FaceSearch"]._collect = broken  # type: ignore[method-assign]
    else:
        daemon.plane.publisher._check_senders = broken  # type: ignore[method-assign]


def _mend_stage(daemon: Daemon, stage: str) -> None:
    """Undo :func:`_break_stage` (the stage stays down; its other methods work again)."""
    if stage == "analyzer":
        del daemon.plane.stages["FaceSearch"]._collect
    else:
        del daemon.plane.publisher._check_senders


@pytest.mark.parametrize("stage", ["analyzer", "publisher"])
def test_past_its_budget_a_stage_fails_its_processors(tmp_path: Path, broker: Any,
                                                      stage: str) -> None:
    daemon = Daemon(make_config(tmp_path, **{"kafka.bootstrap": broker.bootstrap,
                                             "supervision.max_restarts": 1,
                                             "supervision.backoff_initial_s": 0.1}))
    daemon.start()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        rek = client_for(daemon.endpoint)
        rek.create_collection(CollectionId="sv")
        create(rek, "sv", f"tcp://127.0.0.1:{server.getsockname()[1]}", "sv-out", "sv")
        rek.start_stream_processor(Name="sv")
        assert wait_status(rek, "sv", {"STARTING"})["Status"] == "STARTING"

        _break_stage(daemon, stage)
        desc = wait_status(rek, "sv", {"FAILED"}, 10)
        assert desc["Status"] == "FAILED"
        assert desc["StatusMessage"].startswith(f"{stage} stage failed 2 times in 60 s")
        assert f"the {stage} cannot run" in desc["StatusMessage"]
        status, body = _health(daemon)
        assert status == 503 and body["status"] == "degraded"
        assert body["stages"][stage]["state"] == "failed"
        assert daemon.registry.get_sample_value("streamproc_stage_up", {"stage": stage}) == 0
        # A processor started after the stage gave up fails at once, with the same reason.
        rek.start_stream_processor(Name="sv")
        desc = wait_status(rek, "sv", {"FAILED"}, 10)
        assert desc["StatusMessage"].startswith(f"{stage} stage failed")
    finally:
        server.close()
        daemon.stop()


def _cluster_node(tmp_path: Path, broker: Any, cluster_id: str, name: str) -> Daemon:
    return Daemon(make_config(tmp_path / name, **{
        "kafka.bootstrap": broker.bootstrap, "cluster.bootstrap": broker.bootstrap,
        "cluster.id": cluster_id, "cluster.node_id": name,
        "supervision.max_restarts": 1, "supervision.backoff_initial_s": 0.1}))


def _silent_processor(daemon: Daemon, server: socket.socket) -> None:
    rek = client_for(daemon.endpoint)
    rek.create_collection(CollectionId="sv")
    create(rek, "sv", f"tcp://127.0.0.1:{server.getsockname()[1]}", "sv-out", "sv")
    rek.start_stream_processor(Name="sv")


@pytest.mark.parametrize("stage", ["analyzer", "publisher"])
def test_in_a_cluster_a_node_whose_stage_gave_up_leaves_and_its_processor_moves(
        tmp_path: Path, broker: Any, stage: str) -> None:
    """Failing the processors would stop them everywhere; a peer can still run them."""
    cluster_id = f"sv-{uuid.uuid4().hex[:8]}"
    nodes = [_cluster_node(tmp_path, broker, cluster_id, name) for name in ("sv-a", "sv-b")]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    try:
        for daemon in nodes:
            daemon.start()
        # The group formed first, so no ordinary rebalance moves the processor later.
        assert poll(lambda: all(d.cluster and len(d.cluster.live_members()) == 2
                                for d in nodes), 60), "the group never formed"
        _silent_processor(nodes[0], server)

        def runner() -> Daemon | None:
            here = [d for d in nodes if "sv" in d.reconciler.running_names()]
            return here[0] if len(here) == 1 else None

        owner = poll(runner, 60)
        assert owner is not None, "the processor never ran"
        other = next(d for d in nodes if d is not owner)
        _break_stage(owner, stage)
        assert owner.fatal.wait(15), "the node did not give up"
        assert owner.fatal_reason.startswith(f"{stage} stage failed 2 times in 60 s")
        assert owner.fatal_reason.endswith("leaving the cluster to the other nodes")
        # It stops taking work at once: its control loops end (what `serve` then stops is
        # only what already ran), and /health says so.
        assert poll(lambda: not owner.reconciler.running
                    and not owner.jobs.scheduler.running, 10), "the node kept taking work"
        status, body = _health(owner)
        assert status == 503 and body["stages"]["reconciler"]["state"] == "stopping"
        assert body["stages"]["jobs"]["state"] == "stopping"
        _mend_stage(owner, stage)  # (mended first: the stop should not meet the fault)
        owner.stop()  # what `streamproc serve` does when the daemon sets fatal
        # A FAILED processor never runs again until started: running on B proves it was not.
        assert poll(lambda: "sv" in other.reconciler.running_names(), 60), \
            "the survivor did not take the processor"
        desc = client_for(other.endpoint).describe_stream_processor(Name="sv")
        assert desc["Status"] in ("STARTING", "RUNNING"), desc
    finally:
        server.close()
        for daemon in nodes:
            daemon.stop()


def test_a_cluster_node_alone_leaves_too_and_its_processor_waits_for_a_node(
        tmp_path: Path, broker: Any) -> None:
    """Failing would be final; kept wanted, the processor runs on the next node that joins."""
    cluster_id = f"sv-{uuid.uuid4().hex[:8]}"
    node = _cluster_node(tmp_path, broker, cluster_id, "sv-alone")
    later = _cluster_node(tmp_path, broker, cluster_id, "sv-later")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    try:
        node.start()
        assert poll(lambda: node.cluster and node.cluster.live_members() == {"sv-alone"}, 60)
        _silent_processor(node, server)
        assert poll(lambda: "sv" in node.reconciler.running_names(), 30)
        _break_stage(node, "analyzer")
        assert node.fatal.wait(15), "the node did not give up"
        assert node.fatal_reason.endswith("leaving the cluster to the other nodes")
        _mend_stage(node, "analyzer")
        node.stop()
        later.start()  # (or the same node restarted by its service manager)
        assert poll(lambda: "sv" in later.reconciler.running_names(), 60)
        desc = client_for(later.endpoint).describe_stream_processor(Name="sv")
        assert desc["Status"] in ("STARTING", "RUNNING"), desc
    finally:
        server.close()
        node.stop()
        later.stop()
