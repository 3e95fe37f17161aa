"""The project version and policy commands (appliers: :mod:`.versions_rules`), as logged.

A trained model's bytes (~11 KB per 1,024-feature head) travel through the log, base64 in
the JSON, so every node of a cluster holds them and serves the version; the backbone's
identity is inside them. A small model rides in the :class:`SetVersionStatus` that ends the
training; a larger one (many classes) goes first in :class:`AddVersionModel` parts of
``projects.dataset_chunk_bytes`` each, so no record outgrows what Kafka takes.

Every start of a training is a :class:`TrainingAttempt` (it carries the window the training
must end in: the deciding node's deadline and margin), so a training that crashes its
process is not retried for ever, and every node agrees when one is stale. A
:class:`DeleteVersion` may carry the window for a training never started (older records
have none and replay as they did).
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

from streamproc.ledger import Command
from streamproc.projects.version_result import TrainingOutcome
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.storage.versions import StoredPolicy, StoredVersion


@dataclass(frozen=True)
class CreateVersion(Command[Version]):
    """Create a version (refused if the name is taken); a copy carries its source."""

    kind: ClassVar[str] = "version.create"
    version: Version
    copy_from: VersionRef | None = None  # CopyProjectVersion: its model bytes are copied
    tags: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The version as its stored row's fields, the copy's source and the tags."""
        return {"version": asdict(self.version.stored()),
                "copy_from": None if self.copy_from is None else self.copy_from.payload(),
                "tags": dict(self.tags)}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> CreateVersion:
        """Inverse of :meth:`payload`."""
        source = payload["copy_from"]
        return cls(Version.of(StoredVersion(**payload["version"])),
                   None if source is None else VersionRef.of(source), dict(payload["tags"]))


@dataclass(frozen=True)
class SetVersionStatus(Command[Version]):
    """A version moves to ``status`` (only along :data:`.versions.MOVES`).

    ``result`` may be given in its stored form (a dict, as a record holds it): it is parsed
    here, once, so the command always carries a :class:`TrainingOutcome`.
    """

    kind: ClassVar[str] = "version.status"
    version: VersionRef
    status: VersionStatus
    message: str
    at_ms: int
    result: TrainingOutcome | None = None  # its parts merged over the version's result
    model: bytes | None = None  # the trained model (with TRAINING_COMPLETED)
    units: tuple[int, int] | None = None  # Min/MaxInferenceUnits (with STARTING)

    def __post_init__(self) -> None:
        stored: Any = self.result
        if isinstance(stored, dict):
            object.__setattr__(self, "result", TrainingOutcome.parse(stored))

    def payload(self) -> dict[str, Any]:
        """The enum as its wire string, the result as stored, the model in base64."""
        return {"version": self.version.payload(), "status": self.status.value,
                "message": self.message, "at_ms": self.at_ms,
                "result": None if self.result is None else self.result.payload(),
                "model": None if self.model is None else
                base64.b64encode(self.model).decode("ascii"),
                "units": None if self.units is None else list(self.units)}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> SetVersionStatus:
        """Inverse of :meth:`payload`."""
        model, units, result = payload["model"], payload["units"], payload["result"]
        if result is not None and not isinstance(result, dict):
            msg = f"result is {result!r}, not an object"
            raise ValueError(msg)
        return cls(VersionRef.of(payload["version"]), VersionStatus(payload["status"]),
                   str(payload["message"]), int(payload["at_ms"]),
                   None if result is None else TrainingOutcome.parse(result),
                   None if model is None else base64.b64decode(model, validate=True),
                   None if units is None else (int(units[0]), int(units[1])))


@dataclass(frozen=True)
class AddVersionModel(Command[int]):
    """One part of a training's model bytes, at ``offset`` (0 starts them again)."""

    kind: ClassVar[str] = "version.model"
    version: VersionRef
    offset: int
    data: bytes

    def payload(self) -> dict[str, Any]:
        """The part in base64."""
        return {"version": self.version.payload(), "offset": self.offset,
                "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> AddVersionModel:
        """Inverse of :meth:`payload`."""
        return cls(VersionRef.of(payload["version"]), int(payload["offset"]),
                   base64.b64decode(payload["data"], validate=True))


def model_parts(command: SetVersionStatus, part_bytes: int
                ) -> tuple[list[AddVersionModel], SetVersionStatus]:
    """A training's end as log records: its model in parts when larger than ``part_bytes``."""
    model = command.model
    if model is None or len(model) <= part_bytes:
        return [], command
    parts = [AddVersionModel(command.version, at, model[at:at + part_bytes])
             for at in range(0, len(model), part_bytes)]
    return parts, replace(command, model=None)


@dataclass(frozen=True)
class TrainingAttempt(Command[Version]):
    """A training starts on ``node`` (or, ``stopped``: the start is withdrawn by a stop).

    Refused unless the version is TRAINING_IN_PROGRESS; one already started
    ``max_attempts`` times, or stale at ``at_ms``, is failed instead (the result says which).
    """

    kind: ClassVar[str] = "version.attempt"
    version: VersionRef
    node: str
    at_ms: int
    stale_ms: int  # the window this start gives the training (deadline and margin)
    max_attempts: int
    stopped: bool = False  # a clean stop: this start does not count

    def payload(self) -> dict[str, Any]:
        """Its fields (all of them: there are no older records of this kind)."""
        return {"version": self.version.payload(), "node": self.node, "at_ms": self.at_ms,
                "stale_ms": self.stale_ms, "max_attempts": self.max_attempts,
                "stopped": self.stopped}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> TrainingAttempt:
        """Inverse of :meth:`payload`."""
        stopped = payload["stopped"]
        if not isinstance(stopped, bool):
            msg = f"stopped is {stopped!r}, not a boolean"
            raise ValueError(msg)
        return cls(VersionRef.of(payload["version"]), str(payload["node"]),
                   int(payload["at_ms"]), int(payload["stale_ms"]),
                   int(payload["max_attempts"]), stopped)


@dataclass(frozen=True)
class DeleteVersion(Command[None]):
    """Delete a version (refused while it trains, unless stale at ``at_ms``, or runs)."""

    kind: ClassVar[str] = "version.delete"
    version: VersionRef
    at_ms: int
    stale_ms: int | None = None  # the window for a training never started (None: none)
    # The node that asked: its own versions it never judges stale (None: older records,
    # judged by the window alone, as they were).
    node: str | None = None

    def payload(self) -> dict[str, Any]:
        """The version named, and the time (and the window and node, when given)."""
        window = {} if self.stale_ms is None else {"stale_ms": self.stale_ms}
        node = {} if self.node is None else {"node": self.node}
        return {"version": self.version.payload(), "at_ms": self.at_ms, **window, **node}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> DeleteVersion:
        """Inverse of :meth:`payload`."""
        window, node = payload.get("stale_ms"), payload.get("node")
        return cls(VersionRef.of(payload["version"]), int(payload["at_ms"]),
                   None if window is None else int(window),
                   None if node is None else str(node))


@dataclass(frozen=True)
class PutPolicy(Command[StoredPolicy]):
    """Create or replace a project policy; ``expected`` is the revision it replaces."""

    kind: ClassVar[str] = "policy.put"
    policy: StoredPolicy
    project_ms: int
    expected: str | None  # None: a new policy (refused if the name is taken)

    def payload(self) -> dict[str, Any]:
        """The policy row, its project's time and the revision expected."""
        return {"policy": asdict(self.policy), "project_ms": self.project_ms,
                "expected": self.expected}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> PutPolicy:
        """Inverse of :meth:`payload`."""
        expected = payload["expected"]
        return cls(StoredPolicy(**payload["policy"]), int(payload["project_ms"]),
                   None if expected is None else str(expected))


@dataclass(frozen=True)
class DeletePolicy(Command[None]):
    """Delete a project policy (with ``revision``: only that revision)."""

    kind: ClassVar[str] = "policy.delete"
    project: str
    project_ms: int
    name: str
    revision: str | None
