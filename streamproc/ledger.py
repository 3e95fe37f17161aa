"""State changes as commands, applied in one order by everyone who keeps the state.

Every change to collections, faces, users, processors and tags is a *command*: a kind and a
JSON payload. The service that receives a request decides everything that needs no shared
state (ids, timestamps, embeddings: the expensive inference happens there, once) and
submits the command; an *applier* registered for its kind checks the rules against the
state (the collection exists, the name is free, the processor may start) and changes it.
Appliers are the one owner of each rule, and because they see commands in one order, every
copy of the state reaches the same result.

:class:`LocalLedger` (a single node) applies each command at once, in the caller's thread;
the cluster's Kafka ledger appends it to a one-partition topic that every node replays, and
the caller waits until its own node has applied it (read-your-writes). Both encode and
decode every command, so a payload that would not survive the log fails here too.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """Where a command sits in the order of changes, as its applier sees it."""

    node: str  # the node that proposed it
    offset: int | None  # its position in the cluster's log; None on a single node
    local: bool  # proposed by this node


Applier = Callable[[dict[str, Any], Applied], Any]


class UnknownCommand(Exception):
    """A command kind nobody registered (a newer node's command, or corruption)."""


class Appliers:
    """Command kind -> the function that applies it."""

    def __init__(self) -> None:
        self._fns: dict[str, Applier] = {}

    def register(self, kind: str, fn: Applier) -> None:
        """Declare the applier of ``kind`` (once)."""
        if kind in self._fns:
            msg = f"two appliers for {kind}"
            raise ValueError(msg)
        self._fns[kind] = fn

    def apply(self, kind: str, payload: dict[str, Any], where: Applied) -> Any:
        """Run the applier; domain errors propagate."""
        fn = self._fns.get(kind)
        if fn is None:
            msg = f"no applier for command {kind!r}"
            raise UnknownCommand(msg)
        return fn(payload, where)


def encode(kind: str, payload: dict[str, Any], command_id: str, node: str) -> bytes:
    """A command as the bytes the log holds."""
    return json.dumps({"kind": kind, "id": command_id, "node": node, "payload": payload},
                      separators=(",", ":")).encode()


def decode(data: bytes) -> tuple[str, str, str, dict[str, Any]]:
    """(kind, id, node, payload); ValueError for anything that is not a command."""
    record = json.loads(data)
    if not isinstance(record, dict) or not isinstance(record.get("payload"), dict):
        msg = "not a command record"
        raise ValueError(msg)
    return str(record["kind"]), str(record["id"]), str(record["node"]), record["payload"]


def pack_vector(vector: np.ndarray) -> str:
    """A float32 vector as base64 text (exact, and a third of the size of JSON floats)."""
    return base64.b64encode(np.ascontiguousarray(vector, np.float32).tobytes()).decode()


def unpack_vector(text: str) -> np.ndarray:
    """Inverse of :func:`pack_vector`."""
    return np.frombuffer(base64.b64decode(text), np.float32).copy()


class Ledger(Protocol):
    """Where services send state changes."""

    node_id: str

    def submit(self, kind: str, payload: dict[str, Any]) -> Any:
        """Apply a command (on this node, after every command before it); its result."""

    def post(self, kind: str, payload: dict[str, Any]) -> None:
        """Send a command without waiting for it (reports from the reconciler)."""


class LocalLedger:
    """A single node: one command at a time, applied in the caller's thread."""

    def __init__(self, appliers: Appliers, node_id: str = "local") -> None:
        self.node_id = node_id
        self._appliers = appliers
        self._lock = threading.RLock()  # re-entrant: an applier may submit a follow-up

    def submit(self, kind: str, payload: dict[str, Any]) -> Any:
        """Apply at once; the applier's result or its domain error."""
        data = encode(kind, payload, str(uuid.uuid4()), self.node_id)
        kind, _, node, payload = decode(data)
        with self._lock:
            return self._appliers.apply(kind, payload, Applied(node, None, True))

    def post(self, kind: str, payload: dict[str, Any]) -> None:
        """Apply at once; a failure is logged (nobody waits for the result)."""
        try:
            self.submit(kind, payload)
        except Exception:
            logger.exception("applying %s failed", kind)
