"""The ledger's own rules, model-free: the record format, appliers, and the local ledger.

Each test pins one rule a replaying node depends on: what is not a command record is a
ValueError (never another error, never a command), a kind nobody registered keeps who sent
it, one applier per type and per kind, vectors travel as float32, and a single node applies
its own commands as local ones.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from streamproc.ledger import (
    Applied,
    Appliers,
    Command,
    LocalLedger,
    UnknownCommand,
    Unregistered,
    encode,
    pack_vector,
    unpack_vector,
)


@dataclass(frozen=True)
class Ping(Command[str]):
    kind: ClassVar[str] = "Ping"
    text: str = ""


@dataclass(frozen=True)
class OtherPing(Command[str]):
    kind: ClassVar[str] = "Ping"  # the same kind as Ping, another type
    text: str = ""


def _record(**fields: object) -> bytes:
    base: dict[str, object] = {"kind": "Ping", "id": "c1", "node": "n1", "payload": {}}
    base.update(fields)
    return json.dumps(base).encode()


def test_bytes_that_are_not_json_are_a_value_error_that_says_so() -> None:
    with pytest.raises(ValueError, match="^not JSON: "):
        Appliers().decode(b"{nope")


@pytest.mark.parametrize("data", [b"[1]", b'"text"', _record(kind=1), _record(id=None),
                                  _record(node=2), _record(payload=[])])
def test_json_that_is_not_a_command_record_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="^not a command record$"):
        Appliers().decode(data)


def test_an_unregistered_kind_keeps_its_id_and_node() -> None:
    envelope = Appliers().decode(_record(kind="Newer", payload={"a": 1}))
    assert envelope.command == Unregistered("Newer", {"a": 1})
    assert (envelope.command_id, envelope.node) == ("c1", "n1")


def test_a_command_type_with_no_applier_is_refused_by_its_kind() -> None:
    with pytest.raises(UnknownCommand, match="no applier for command 'Ping'"):
        Appliers().apply(Ping("x"), Applied("n1", None, True))


def test_one_applier_per_type_and_per_kind() -> None:
    appliers = Appliers()
    appliers.register(Ping, lambda c, w: c.text)
    with pytest.raises(ValueError, match="two appliers for Ping"):
        appliers.register(Ping, lambda c, w: c.text)
    with pytest.raises(ValueError, match="two appliers for Ping"):
        appliers.register(OtherPing, lambda c, w: c.text)


def test_a_vector_travels_as_float32_whatever_its_dtype() -> None:
    vector = np.array([0.5, -1.25, 3.0], np.float64)
    back = unpack_vector(pack_vector(vector))
    assert back.dtype == np.float32
    assert back.tolist() == [0.5, -1.25, 3.0]


def test_a_local_ledger_applies_its_own_command_as_local() -> None:
    seen: list[Applied] = []

    def upper(command: Ping, where: Applied) -> str:
        seen.append(where)
        return command.text.upper()

    appliers = Appliers()
    appliers.register(Ping, upper)
    assert LocalLedger(appliers, "me").submit(Ping("hi")) == "HI"
    assert seen == [Applied("me", None, True)]
    assert seen[0].local is True


def test_a_posted_command_that_fails_is_logged_with_its_kind(
        caplog: pytest.LogCaptureFixture) -> None:
    def boom(command: Ping, where: Applied) -> str:
        raise RuntimeError("boom")

    appliers = Appliers()
    appliers.register(Ping, boom)
    with caplog.at_level(logging.ERROR, logger="streamproc.ledger"):
        LocalLedger(appliers).post(Ping())
    [record] = caplog.records
    assert record.getMessage() == "applying Ping failed"
    assert record.exc_info is not None


def test_the_record_of_a_command_is_its_kind_id_node_and_payload() -> None:
    assert json.loads(encode(Ping("a"), "c9", "n2")) == {
        "kind": "Ping", "id": "c9", "node": "n2", "payload": {"text": "a"}}
