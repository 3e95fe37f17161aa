"""A project as the domain sees it: its feature, auto-update setting and status, typed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from streamproc.storage.projects import StoredProject


class Feature(str, Enum):
    """What a project customises (CustomizationFeature)."""

    CONTENT_MODERATION = "CONTENT_MODERATION"
    CUSTOM_LABELS = "CUSTOM_LABELS"


class AutoUpdate(str, Enum):
    """Whether an adapter project's versions are retrained automatically (ProjectAutoUpdate)."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class ProjectStatus(str, Enum):
    """A project's Status.

    Creation is synchronous here, so a project is seen CREATED; DeleteProject answers
    DELETING, as AWS does, and the project is gone by the next call.
    """

    CREATING = "CREATING"
    CREATED = "CREATED"
    DELETING = "DELETING"


@dataclass(frozen=True)
class Project:
    """One project."""

    name: str
    arn: str  # as created (that region's spelling): the key its tags are kept under
    created_ms: int  # the creation time in its ARN, epoch milliseconds
    feature: Feature
    auto_update: AutoUpdate | None  # None for Custom Labels (AWS has no setting for them)
    status: ProjectStatus = ProjectStatus.CREATED

    @property
    def resource_id(self) -> str:
        """``NAME/CREATION_MS``: what follows ``project/`` in its ARN."""
        return f"{self.name}/{self.created_ms}"

    def stored(self) -> StoredProject:
        """The row the store keeps."""
        return StoredProject(self.name, self.arn, self.created_ms, self.feature.value,
                             None if self.auto_update is None else self.auto_update.value,
                             self.status.value)

    @classmethod
    def of(cls, row: StoredProject) -> Project:
        """Inverse of :meth:`stored`."""
        return cls(row.name, row.arn, row.created_ms, Feature(row.feature),
                   None if row.auto_update is None else AutoUpdate(row.auto_update),
                   ProjectStatus(row.status))


@dataclass(frozen=True)
class NewProject:
    """A CreateProject request, parsed."""

    name: str
    feature: Feature = Feature.CUSTOM_LABELS  # AWS's default when Feature is absent
    auto_update: AutoUpdate | None = None
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class ProjectQuery:
    """A DescribeProjects request, parsed: its filters and the page asked for."""

    names: tuple[str, ...] | None = None  # None: every name
    features: tuple[Feature, ...] = (Feature.CUSTOM_LABELS,)  # AWS's default filter
    token: str | None = None
    max_results: int | None = None
