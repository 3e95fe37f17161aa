"""State changes as commands, applied in one order by everyone who keeps the state.

Every change to collections, faces, users, processors, jobs and tags is a *command*: a
frozen, typed value (a :class:`Command` subclass, in the ``commands`` module of the package
that owns the rule). The service that receives a request decides everything that needs no
shared state (ids, timestamps, embeddings: the expensive inference happens there, once) and
submits the command; the one *applier* registered for its type checks the rules against the
state (the collection exists, the name is free, the processor may start) and changes it.
Appliers are the one owner of each rule, and because they see commands in one order, every
copy of the state reaches the same result.

In the log a command is ``{"kind", "id", "node", "payload"}`` JSON: ``kind`` is the class's
:attr:`Command.kind` and ``payload`` its fields (:meth:`Command.payload`). Those bytes are the
contract with older nodes and older logs: a command class keeps its kind and its payload's
keys (tests/test_command_log.py replays a log written before commands were typed). A key a
class does not read is dropped when it decodes (:meth:`Command.from_payload`), so a new
optional field is a compatible change in a rolling upgrade; renaming or removing one is not.

:class:`LocalLedger` (a single node) applies each command at once, in the caller's thread;
the cluster's Kafka ledger appends it to a one-partition topic that every node replays, and
the caller waits until its own node has applied it (read-your-writes). Both encode and
decode every command, so a value that would not survive the log fails here too.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

R = TypeVar("R")  # what applying a command returns to the one who submitted it
C = TypeVar("C", bound="Command[Any]")


@dataclass(frozen=True)
class Applied:
    """Where a command sits in the order of changes, as its applier sees it."""

    node: str  # the node that proposed it
    offset: int | None  # its position in the cluster's log; None on a single node
    local: bool  # proposed by this node


@dataclass(frozen=True)
class Command(Generic[R]):
    """A state change; subclasses are frozen dataclasses that name their ``kind``.

    ``R`` is what the applier returns to the submitter (``submit`` is typed by it). The
    default payload is the fields by name; a command whose fields are not JSON values as
    they are (a nested domain value, a vector) overrides :meth:`payload` and
    :meth:`from_known` together, and :meth:`payload_keys` where its keys are not its
    field names.
    """

    kind: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        """The JSON object the log holds for this command."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """The payload keys this class reads (the default: its field names)."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_payload(cls: type[C], payload: dict[str, Any]) -> C:
        """The command back from its payload; TypeError/KeyError/ValueError if it is not one.

        Keys this class does not read are dropped first (logged at debug): in a rolling
        upgrade a newer node may add an optional field, and an older node that refused
        such a command would skip it and diverge from the others. A missing key the class
        needs is still an error.
        """
        return cls.from_known(known_keys(cls.kind, payload, cls.payload_keys()))

    @classmethod
    def from_known(cls: type[C], known: dict[str, Any]) -> C:
        """The command from the payload's known keys (:meth:`from_payload` filtered them)."""
        return cls(**known)


def known_keys(kind: str, payload: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """``payload`` without the keys not in ``keys``, each of those named in a debug line."""
    ignored = sorted(set(payload) - keys)
    if ignored:
        logger.debug("%s: ignoring payload keys this node does not read: %s", kind,
                     ", ".join(ignored))
    return {key: value for key, value in payload.items() if key in keys}


class UnknownCommand(Exception):
    """A command kind nobody registered (a newer node's command, or corruption)."""


@dataclass(frozen=True)
class Unregistered(Command[None]):
    """A record of a kind nobody registered here (a newer node's command, or corruption)."""

    kind: ClassVar[str] = ""
    name: str = ""
    body: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """A command as the log carries it: who proposed it and its id beside the value."""

    command: Command[Any]
    command_id: str
    node: str


class Appliers:
    """Command type -> the one function that applies it (and kind -> type, for decoding)."""

    def __init__(self) -> None:
        self._fns: dict[type[Command[Any]], Callable[[Any, Applied], Any]] = {}
        self._types: dict[str, type[Command[Any]]] = {}

    def register(self, command_type: type[C], fn: Callable[[C, Applied], Any]) -> None:
        """Declare the applier of ``command_type`` (once; its kind must be new too)."""
        kind = command_type.kind
        if command_type in self._fns or kind in self._types:
            msg = f"two appliers for {kind}"
            raise ValueError(msg)
        self._fns[command_type] = fn
        self._types[kind] = command_type

    def kinds(self) -> frozenset[str]:
        """The kinds registered here: what this node decodes and applies."""
        return frozenset(self._types)

    def apply(self, command: Command[R], where: Applied) -> R:
        """Run the applier; domain errors propagate."""
        fn = self._fns.get(type(command))
        if fn is None:
            shown = command.name if isinstance(command, Unregistered) else command.kind
            msg = f"no applier for command {shown!r}"
            raise UnknownCommand(msg)
        return fn(command, where)  # type: ignore[no-any-return]

    def decode(self, data: bytes) -> Envelope:
        """A log record back as a typed command.

        A kind nobody registered comes back as :class:`Unregistered` (applying it raises
        UnknownCommand); ValueError for anything that is not a command (not JSON, not an
        object, a payload that does not fit its kind).
        """
        kind, command_id, node, payload = _split(data)
        command_type = self._types.get(kind)
        if command_type is None:  # applying it raises UnknownCommand, where it is counted
            return Envelope(Unregistered(kind, payload), command_id, node)
        try:
            command = command_type.from_payload(payload)
        except (TypeError, KeyError, ValueError) as exc:
            msg = f"a {kind} command whose payload does not fit it: {exc}"
            raise ValueError(msg) from None
        return Envelope(command, command_id, node)


def encode(command: Command[Any], command_id: str, node: str) -> bytes:
    """A command as the bytes the log holds."""
    return json.dumps({"kind": command.kind, "id": command_id, "node": node,
                       "payload": command.payload()}, separators=(",", ":")).encode()


def _split(data: bytes) -> tuple[str, str, str, dict[str, Any]]:
    """(kind, id, node, payload); ValueError for anything that is not a command record."""
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"not JSON: {exc}"
        raise ValueError(msg) from None
    if not isinstance(record, dict) or not isinstance(record.get("payload"), dict) or \
            not all(isinstance(record.get(key), str) for key in ("kind", "id", "node")):
        msg = "not a command record"
        raise ValueError(msg)
    return record["kind"], record["id"], record["node"], record["payload"]


def pack_vector(vector: np.ndarray) -> str:
    """A float32 vector as base64 text (exact, and a third of the size of JSON floats)."""
    return base64.b64encode(np.ascontiguousarray(vector, np.float32).tobytes()).decode()


def unpack_vector(text: str) -> np.ndarray:
    """Inverse of :func:`pack_vector`."""
    vector: np.ndarray = np.frombuffer(base64.b64decode(text), np.float32).copy()
    return vector


class Ledger(Protocol):
    """Where services send state changes."""

    node_id: str

    def submit(self, command: Command[R]) -> R:
        """Apply a command (on this node, after every command before it); its result."""

    def post(self, command: Command[Any]) -> None:
        """Send a command without waiting for it (reports from the control loops)."""


class LocalLedger:
    """A single node: one command at a time, applied in the caller's thread."""

    def __init__(self, appliers: Appliers, node_id: str = "local") -> None:
        self.node_id = node_id
        self._appliers = appliers
        self._lock = threading.RLock()  # re-entrant: an applier may submit a follow-up

    def submit(self, command: Command[R]) -> R:
        """Apply at once; the applier's result or its domain error.

        The command goes through its log bytes first, so what would not survive the
        cluster's log (a value JSON cannot hold, a payload that does not read back) fails on
        a single node too.
        """
        envelope = self._appliers.decode(encode(command, str(uuid.uuid4()), self.node_id))
        with self._lock:  # the decoded value is the same command: R holds for its result
            result: R = self._appliers.apply(envelope.command, Applied(envelope.node, None, True))
        return result

    def post(self, command: Command[Any]) -> None:
        """Apply at once; a failure is logged (nobody waits for the result)."""
        try:
            self.submit(command)
        except Exception:
            logger.exception("applying %s failed", command.kind)
