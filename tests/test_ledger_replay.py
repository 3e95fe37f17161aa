"""The cluster's command log against a real broker: every command applied exactly once.

A node that dies right after applying a command (its effects committed, nothing else done)
and starts again on the same data dir must go on at exactly the next command: none skipped,
none applied twice. The command here is deliberately not idempotent (it appends a row), so
a replayed command shows up as a second row and a skipped one as a missing row.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client import CollectorRegistry

from streamproc.cluster.ledger import KafkaLedger, LedgerSettings
from streamproc.ledger import Applied, Appliers, Command, encode
from streamproc.metrics import ClusterMetrics
from streamproc.storage.cluster import ClusterLog
from streamproc.storage.db import Database
from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.clusterkit import poll


@dataclass(frozen=True)
class Tick(Command[int]):
    """Appends a row (not idempotent on purpose); returns its number."""

    kind: ClassVar[str] = "test.tick"
    n: int


class Crash(BaseException):
    """Stands for the process dying: nothing in the ledger catches it."""


class Node:
    """One data dir's ledger with a counting applier; ``crash_after`` kills it once per n."""

    def __init__(self, data_dir: Path, bootstrap: str, topic: str,
                 crash_after: frozenset[int] = frozenset()) -> None:
        self.db = Database(data_dir / "streamproc.db")
        self.db.open()
        with self.db.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS ticks (n INTEGER NOT NULL, "
                         "at INTEGER NOT NULL)")
        self._crash_after, self._crashed = crash_after, set[int]()
        self.appliers = Appliers()
        self.appliers.register(Tick, self._tick)
        self.log = ClusterLog(self.db, topic, "replay-test")
        self.ledger = KafkaLedger(self.appliers, LedgerSettings(bootstrap, topic, "node-a", 10.0),
                                  self.log, ClusterMetrics.create(CollectorRegistry()))

    def _tick(self, c: Tick, where: Applied) -> int:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO ticks (n, at) VALUES (?, ?)", (c.n, where.offset))
        if c.n in self._crash_after and c.n not in self._crashed:
            self._crashed.add(c.n)
            raise Crash  # the effect is committed; whatever the ledger does next is not
        return c.n

    def ticks(self) -> list[tuple[int, int]]:
        """(n, offset) of every application, in the order they were written."""
        return [(int(n), int(at)) for n, at in self.db.query(
            "SELECT n, at FROM ticks ORDER BY rowid")]

    def close(self) -> None:
        self.ledger.stop(5.0)
        self.db.close()


@pytest.fixture
def topic(broker: EmbeddedBroker) -> str:
    """A fresh one-partition command topic (as a cluster's ``<id>.state``)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"replay-{uuid.uuid4().hex[:8]}.state"
    admin = KafkaAdminClient(bootstrap_servers=[broker.bootstrap])
    try:
        admin.create_topics([NewTopic(name, 1, 1)], timeout_ms=10000)
    finally:
        admin.close()
    return name


@pytest.fixture
def crashes(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """The exceptions that ended threads (a Crash must end the ledger's)."""
    seen: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for node in made:
        node.ledger.stop(5.0)
        node.db.close()


def _write(broker: EmbeddedBroker, topic: str, numbers: range,
           edit: Callable[[bytes], bytes] = lambda record: record) -> None:
    """Commands from another node, appended before this node reads them (one batch)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=[broker.bootstrap], acks="all")
    try:
        for n in numbers:
            record = edit(encode(Tick(n), str(uuid.uuid4()), "node-b"))
            producer.send(topic, record).get(10)
    finally:
        producer.close()


def _newer(record: bytes) -> bytes:
    """As a newer node writes it: a payload key this node's Tick does not have."""
    parsed = json.loads(record)
    parsed["payload"]["added_later"] = "optional"
    return json.dumps(parsed).encode()


def _once_each(ticks: list[tuple[int, int]], numbers: range) -> None:
    assert sorted(n for n, _ in ticks) == list(numbers), ticks  # none twice, none missing
    assert len({at for _, at in ticks}) == len(ticks), ticks


def test_a_node_killed_right_after_an_apply_resumes_at_the_next_command(
        tmp_path: Path, broker: EmbeddedBroker, topic: str, nodes: list[Node],
        crashes: list[BaseException]) -> None:
    _write(broker, topic, range(10))
    first = Node(tmp_path, broker.bootstrap, topic, crash_after=frozenset({4}))
    nodes.append(first)
    first.ledger.start()
    assert poll(lambda: not first.ledger.running, 20, every=0.05), "the ledger did not crash"
    assert [type(e) for e in crashes] == [Crash]
    assert [n for n, _ in first.ticks()] == [0, 1, 2, 3, 4]  # died right after 4
    first.close()
    nodes.remove(first)
    again = Node(tmp_path, broker.bootstrap, topic)  # a new process on the same data dir
    nodes.append(again)
    again.ledger.start()
    again.ledger.catch_up(20)
    _once_each(again.ticks(), range(10))
    assert [again.ledger.submit(Tick(n)) for n in (10, 11)] == [10, 11]
    _once_each(again.ticks(), range(12))
    # Stored with the command's effect: already there when the write is answered.
    assert again.log.applied() == max(at for _, at in again.ticks())


def test_a_ledger_restarted_in_process_after_a_crash_skips_nothing(
        tmp_path: Path, broker: EmbeddedBroker, topic: str, nodes: list[Node],
        crashes: list[BaseException]) -> None:
    """What the supervisor does: start the same ledger again once its thread died."""
    _write(broker, topic, range(10))
    node = Node(tmp_path, broker.bootstrap, topic, crash_after=frozenset({3}))
    nodes.append(node)
    node.ledger.start()
    assert poll(lambda: not node.ledger.running, 20, every=0.05), "the ledger did not crash"
    assert [type(e) for e in crashes] == [Crash]
    node.ledger.start()
    node.ledger.catch_up(20)
    _once_each(node.ticks(), range(10))


def test_a_node_stopped_and_started_again_replays_nothing(
        tmp_path: Path, broker: EmbeddedBroker, topic: str, nodes: list[Node]) -> None:
    first = Node(tmp_path, broker.bootstrap, topic)
    nodes.append(first)
    first.ledger.start()
    assert [first.ledger.submit(Tick(n)) for n in range(3)] == [0, 1, 2]
    first.close()
    nodes.remove(first)
    again = Node(tmp_path, broker.bootstrap, topic)
    nodes.append(again)
    again.ledger.start()
    assert again.ledger.submit(Tick(3)) == 3
    _once_each(again.ticks(), range(4))
    assert [at for _, at in again.ticks()] == [0, 1, 2, 3]


def test_a_newer_nodes_command_with_an_extra_key_is_applied_not_skipped(
        tmp_path: Path, broker: EmbeddedBroker, topic: str, nodes: list[Node]) -> None:
    """A rolling upgrade: skipping it as corrupt would make this node diverge from the rest."""
    _write(broker, topic, range(3), _newer)
    node = Node(tmp_path, broker.bootstrap, topic)
    nodes.append(node)
    node.ledger.start()
    node.ledger.catch_up(20)
    assert node.ticks() == [(0, 0), (1, 1), (2, 2)]


@dataclass(frozen=True)
class Unreadable(Command[None]):
    """A command class whose payload does not read back (a bug in its payload overrides)."""

    kind: ClassVar[str] = "test.unreadable"
    n: int

    def payload(self) -> dict[str, object]:
        return {"number": self.n}


def test_a_command_that_would_not_decode_never_enters_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every node would skip it as corrupt and its submitter would wait in vain: it fails here.

    No broker: the check comes before anything is sent (without it, this ledger that never
    started would answer "cannot be reached").
    """
    node = Node(tmp_path, "127.0.0.1:1", "never.state")
    node.appliers.register(Unreadable, lambda command, where: None)
    try:
        with pytest.raises(ValueError, match="^a test.unreadable command whose payload"):
            node.ledger.submit(Unreadable(1))
        node.ledger.post(Unreadable(2))  # a post is logged, not raised
        assert "could not post test.unreadable" in caplog.text
    finally:
        node.db.close()
