"""The stream processor commands: what the API and the reconciler submit, typed.

Each class is one kind in the log; its applier is in :mod:`streamproc.processors.rules`.
The kind strings and payload keys are the log's contract with older nodes (see
:mod:`streamproc.ledger`), so a field is renamed here only with its payload overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from streamproc.dataplane.regions import Region, regions_from_wire, regions_to_wire
from streamproc.ledger import Command
from streamproc.processors.spec import ProcessorSpec


class Report(str, Enum):
    """What a node reports about a processor's current Start."""

    RUNNING = "running"
    STARTING = "starting"
    FAILED = "failed"
    STOPPED = "stopped"
    MESSAGE = "message"


@dataclass(frozen=True)
class CreateProcessor(Command[None]):
    """Register a STOPPED processor with its tags."""

    kind: ClassVar[str] = "processor.create"
    spec: ProcessorSpec
    tags: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The spec as the store keeps it (a plain dict) beside the tags."""
        return {"spec": self.spec.to_dict(), "tags": dict(self.tags)}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> CreateProcessor:
        """Inverse of :meth:`payload`."""
        return cls(ProcessorSpec.from_dict(payload["spec"]), dict(payload["tags"]))


@dataclass(frozen=True)
class DeleteProcessor(Command[None]):
    """Delete a processor that is not running."""

    kind: ClassVar[str] = "processor.delete"
    name: str


@dataclass(frozen=True)
class StartProcessor(Command[None]):
    """STOPPED/FAILED -> STARTING, under a new session id."""

    kind: ClassVar[str] = "processor.start"
    name: str
    session_id: str


@dataclass(frozen=True)
class StopProcessor(Command[None]):
    """STARTING/RUNNING -> STOPPING."""

    kind: ClassVar[str] = "processor.stop"
    name: str


@dataclass(frozen=True)
class UpdateProcessor(Command[None]):
    """Change a processor's regions or data sharing; None leaves a setting as it is."""

    kind: ClassVar[str] = "processor.update"
    name: str
    regions: tuple[Region, ...] | None = None  # () clears them
    data_sharing: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The spec fields this update sets, as ``ProcessorSpec.with_updates`` takes them."""
        changes: dict[str, Any] = {}
        if self.regions is not None:
            changes["regions"] = self.regions
        if self.data_sharing is not None:
            changes["data_sharing"] = self.data_sharing
        return changes

    def payload(self) -> dict[str, Any]:
        """``{"name", "changes"}``, with only the settings that change (regions as JSON)."""
        changes = self.changes()
        if self.regions is not None:  # a key set again keeps its place: the same bytes
            changes["regions"] = regions_to_wire(self.regions)
        return {"name": self.name, "changes": changes}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """``name`` and ``changes`` (whose own keys must all be known: see :meth:`from_known`)."""
        return frozenset({"name", "changes"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> UpdateProcessor:
        """Inverse of :meth:`payload`; a change nobody knows is a ValueError.

        Unlike an unknown payload key, an unknown change is not dropped: applying only the
        changes this node knows would leave its spec unlike the proposer's (the untyped
        applier refused such an update too).
        """
        changes = dict(payload["changes"])
        unknown = set(changes) - {"regions", "data_sharing"}
        if unknown:
            msg = f"unknown processor changes {sorted(unknown)}"
            raise ValueError(msg)
        regions = changes.get("regions")
        return cls(payload["name"], regions_from_wire(regions) if regions is not None else None,
                   changes.get("data_sharing"))


@dataclass(frozen=True)
class ClaimProcessor(Command[None]):
    """A node launched the processor's current Start: its reports count from now on."""

    kind: ClassVar[str] = "processor.claim"
    name: str
    session_id: str


@dataclass(frozen=True)
class ReleaseProcessor(Command[None]):
    """The node that ran the processor stopped it: another may start it now."""

    kind: ClassVar[str] = "processor.release"
    name: str
    session_id: str


@dataclass(frozen=True)
class ReportProcessor(Command[None]):
    """A status change seen by the node running the processor's current Start."""

    kind: ClassVar[str] = "processor.report"
    name: str
    session_id: str
    event: Report
    message: str = ""

    def payload(self) -> dict[str, Any]:
        """The event as its string value."""
        return {"name": self.name, "session_id": self.session_id,
                "event": Report(self.event).value, "message": self.message}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> ReportProcessor:
        """Inverse of :meth:`payload`; an unknown event is a ValueError."""
        return cls(payload["name"], payload["session_id"], Report(payload["event"]),
                   payload.get("message", ""))
