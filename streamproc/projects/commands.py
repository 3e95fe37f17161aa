"""The project commands (appliers: :mod:`streamproc.projects.rules`), as the log holds them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from streamproc.ledger import Command
from streamproc.projects.types import Project
from streamproc.storage.projects import StoredProject


@dataclass(frozen=True)
class CreateProject(Command[Project]):
    """Create a project (its name, ARN and time decided where the request arrived)."""

    kind: ClassVar[str] = "project.create"
    project: Project
    tags: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The project as its stored row's fields, beside the tags."""
        return {"project": asdict(self.project.stored()), "tags": dict(self.tags)}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> CreateProject:
        """Inverse of :meth:`payload`."""
        return cls(Project.of(StoredProject(**payload["project"])), dict(payload["tags"]))


@dataclass(frozen=True)
class DeleteProject(Command[None]):
    """Delete a project (refused while it has versions)."""

    kind: ClassVar[str] = "project.delete"
    name: str
    created_ms: int  # the ARN's time: a project of the same name made since is another one
