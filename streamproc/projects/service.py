"""Project operations, API side: decide the creation time, submit the change, read projects.

Nothing here changes a project directly: CreateProject and DeleteProject become commands
whose appliers (:mod:`streamproc.projects.rules`) hold the rules that depend on the state.
What needs none (a Feature's AutoUpdate) is checked here, before anything is submitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from streamproc.errors import InvalidParameterException
from streamproc.ledger import Ledger
from streamproc.projects.commands import CreateProject, DeleteProject
from streamproc.projects.rules import not_found
from streamproc.projects.types import (
    Feature,
    NewProject,
    Project,
    ProjectQuery,
    ProjectStatus,
)
from streamproc.rekognition.constants import MAX_PROJECT_RESULTS, Arns
from streamproc.rekognition.tokens import page_of_keys
from streamproc.storage.projects import ProjectStore

_LISTING = "projects"


def check_auto_update(request: NewProject) -> None:
    """AutoUpdate is required for an adapter project and refused for a Custom Labels one.

    As AWS documents it ("Required argument for Content Moderation. Applicable only to
    adapters"); Describe shows AutoUpdate only for adapter projects.
    """
    if request.feature is Feature.CONTENT_MODERATION and request.auto_update is None:
        raise InvalidParameterException(
            "AutoUpdate is required for a project with Feature CONTENT_MODERATION")
    if request.feature is Feature.CUSTOM_LABELS and request.auto_update is not None:
        raise InvalidParameterException(
            "AutoUpdate applies only to projects with Feature CONTENT_MODERATION")


class ProjectService:
    """What the API calls for projects; raises domain errors only."""

    def __init__(self, store: ProjectStore, ledger: Ledger, arns: Arns,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._ledger = ledger
        self._arns = arns
        self._clock = clock

    def create(self, request: NewProject) -> Project:
        """Create a project (CREATED at once: nothing is provisioned)."""
        check_auto_update(request)
        created_ms = int(self._clock() * 1000)
        project = Project(request.name, self._arns.project(request.name, created_ms),
                          created_ms, request.feature, request.auto_update)
        return self._ledger.submit(CreateProject(project, dict(request.tags or {})))

    def describe(self, query: ProjectQuery) -> tuple[list[Project], str | None]:
        """One page of the projects that pass the filters, in name order, and the next token."""
        wanted = None if query.names is None else set(query.names)
        found = [p for p in map(Project.of, self._store.all())
                 if (wanted is None or p.name in wanted) and p.feature in query.features]
        by_name = {p.name: p for p in found}
        names, token = page_of_keys(_LISTING, list(by_name), query.token,
                                    query.max_results or MAX_PROJECT_RESULTS)
        return [by_name[name] for name in names], token

    def delete(self, resource_id: str) -> ProjectStatus:
        """Delete the project ``NAME/CREATION_MS`` names; the Status DeleteProject answers."""
        project = self.require(resource_id)
        self._ledger.submit(DeleteProject(project.name, project.created_ms))
        return ProjectStatus.DELETING

    def get(self, name: str) -> Project | None:
        """The project called ``name``, or None."""
        row = self._store.get(name)
        return None if row is None else Project.of(row)

    def find(self, resource_id: str) -> Project | None:
        """The project ``NAME/CREATION_MS`` names (its ARN's id), or None."""
        project = self.get(resource_id.rpartition("/")[0])
        # The exact id: ``x/0123`` is not the ARN of ``x/123``, nor an older ``x``'s time.
        return project if project is not None and project.resource_id == resource_id else None

    def require(self, resource_id: str) -> Project:
        """The project ``NAME/CREATION_MS`` names, or ResourceNotFoundException."""
        project = self.find(resource_id)
        if project is None:
            raise not_found(resource_id.rpartition("/")[0])
        return project

    def tag_key(self, resource_id: str) -> str | None:
        """The ARN a project's tags are kept under (None: no such project)."""
        project = self.find(resource_id)
        return None if project is None else project.arn
