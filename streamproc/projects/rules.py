"""Every change to projects, applied in ledger order.

The API side (:mod:`streamproc.projects.service`) decides what needs no shared state (the
creation time, so the ARN); what depends on the state is checked here, once: a name is
taken or free, the project limit, and a project that still has versions (models or
adapters) cannot be deleted. The tags a project is created with are written here, with it;
later tag changes are :mod:`streamproc.tags`'s. Deleting a project deletes its datasets
with it (AWS asks only that its versions be deleted first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from streamproc.config import Config
from streamproc.errors import (
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from streamproc.ledger import Applied, Appliers
from streamproc.projects.commands import CreateProject, DeleteProject
from streamproc.projects.types import Project
from streamproc.storage.projects import ProjectStore
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)

# How many versions a project has (projects.versions_rules.VersionRules.count).
VersionCount = Callable[[Project], int]


# What else goes with a deleted project (its datasets).
Gone = Callable[[Project], None]


def nothing_else(project: Project) -> None:
    """Nothing hangs off a project."""


def no_versions(project: Project) -> int:
    """The version count while no project versions exist."""
    return 0


def not_found(name: str) -> ResourceNotFoundException:
    """The one error for a project that is not here (whatever ARN named it)."""
    return ResourceNotFoundException(f"The project {name} does not exist")


class ProjectRules:
    """Applies the project commands to the project and tag stores."""

    def __init__(self, store: ProjectStore, tags: TagStore, config: Config,
                 versions: VersionCount = no_versions, gone: Gone = nothing_else) -> None:
        self._store = store
        self._gone = gone
        self._tags = tags
        self._limit = config.projects.max_projects
        self._versions = versions

    def register(self, appliers: Appliers) -> None:
        """Declare the project commands."""
        appliers.register(CreateProject, self._create)
        appliers.register(DeleteProject, self._delete)

    def _create(self, c: CreateProject, where: Applied) -> Project:
        project = c.project
        if self._store.get(project.name) is not None:
            raise ResourceInUseException(f"The project {project.name} already exists")
        if self._store.count() >= self._limit:
            raise LimitExceededException(
                f"At most {self._limit} projects: {project.name} was not created")
        if not self._store.create(project.stored()):  # cannot happen: ledger order
            raise ResourceInUseException(f"The project {project.name} already exists")
        if c.tags:
            self._tags.set(project.arn, c.tags)
        logger.info("created project %s (%s)", project.name, project.feature.value)
        return project

    def _delete(self, c: DeleteProject, where: Applied) -> None:
        row = self._store.get(c.name)
        if row is None or row.created_ms != c.created_ms:
            raise not_found(c.name)
        project = Project.of(row)
        versions = self._versions(project)
        if versions:
            raise ResourceInUseException(
                f"The project {c.name} has {versions} version(s): delete them first")
        self._store.delete(c.name)
        self._gone(project)
        self._tags.delete_resource(project.arn)
        logger.info("deleted project %s", c.name)
