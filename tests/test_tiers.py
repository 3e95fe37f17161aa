"""The test tiers (tests/tiers.py): what puts a test in a tier, and the unit tier's guard."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from tiers import CLUSTER, E2E, TIERS, UNIT, Reader, UnitTierViolation

from streamproc.config import load_config
from streamproc.daemon import Daemon
from streamproc.tools.broker import EmbeddedBroker


def _pure() -> int:
    return len(load_config(None, {}).server.host)


def _spawns() -> None:
    subprocess.run(["true"], check=True)


def _starts_a_daemon(path: Path) -> None:
    Daemon(load_config(None, {"storage.data_dir": str(path)})).start()


def _through_a_helper() -> None:
    _spawns()


def _owns_a_broker() -> None:
    EmbeddedBroker().start()


def _imports_inside() -> None:
    from streamproc.tools.clusterkit import Node

    Node.__name__.upper()


def _polls_only() -> None:
    from streamproc.tools.clusterkit import poll

    poll(lambda: True, 1)


class _Helper:
    def run(self) -> None:
        _starts_a_daemon(Path("x"))


def _uses_a_helper_class() -> None:
    _Helper().run()


def _lambda_spawns() -> object:
    return lambda: subprocess.Popen(["true"])


@pytest.mark.parametrize(("fn", "tier"), [
    (_pure, UNIT), (_spawns, E2E), (_starts_a_daemon, E2E), (_through_a_helper, E2E),
    (_owns_a_broker, CLUSTER), (_imports_inside, CLUSTER), (_polls_only, UNIT),
    (_uses_a_helper_class, E2E), (_lambda_spawns, E2E),
])
def test_a_function_reads_as_the_tier_of_what_it_reaches(fn: object, tier: str) -> None:
    assert Reader().function(fn) == tier  # type: ignore[arg-type]


def test_every_collected_test_has_exactly_one_tier(request: pytest.FixtureRequest) -> None:
    for item in request.session.items:
        assert len({m.name for m in item.iter_markers() if m.name in TIERS}) == 1, item.nodeid
    assert request.node.get_closest_marker(UNIT) is not None


@pytest.mark.unit  # its code names subprocess and Daemon: read alone, it would be e2e
def test_the_unit_tier_refuses_processes_daemons_and_leaving_loopback(
        unit_guard: list[str], tmp_path: Path) -> None:
    with pytest.raises(UnitTierViolation, match="spawned a process"):
        subprocess.run(["true"], check=True)
    with pytest.raises(UnitTierViolation, match="spawned a process"):
        os.system("true")
    with pytest.raises(UnitTierViolation, match="started a daemon"):
        _starts_a_daemon(tmp_path)
    with socket.socket() as sock, pytest.raises(UnitTierViolation, match="beyond loopback"):
        sock.connect(("192.0.2.1", 9))
    assert unit_guard == ["spawned a process", "spawned a process", "started a daemon",
                          "connected beyond loopback"]
    unit_guard.clear()  # else the guard fails this test at teardown, as it should


def test_loopback_stays_open_in_the_unit_tier() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname(), timeout=2):
        pass


@pytest.mark.e2e
def test_an_explicit_mark_decides_the_tier(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker(UNIT) is None
    assert subprocess.run(["true"], check=False).returncode == 0  # no guard here


@pytest.fixture
def _child_exit() -> int:
    return subprocess.run(["true"], check=False).returncode


def test_a_fixture_that_spawns_puts_its_tests_in_e2e(
        _child_exit: int, request: pytest.FixtureRequest) -> None:
    assert _child_exit == 0
    assert request.node.get_closest_marker(E2E) is not None
