"""Every change to project versions and project policies, applied in ledger order.

Checked here, once: the project exists (the same one: name and creation time), a version
name is taken once per project, a status moves only along :data:`.versions.MOVES` (so a
training ends once: a second runner's late result is refused), a version that trains or
runs is not deleted (a training stale at the delete's time has failed:
:meth:`.versions.Version.effective`; the deleting node gives no window for its own version
never started, which its runner will start), a training starts at most ``max_attempts`` times
(:class:`TrainingAttempt`; the starting node is the version's own, which never judges it
stale: a restart after any downtime retrains it; a clean stop's withdrawal counts no start
and clears the window), a copy's source is trained, and a policy's revision is the current
one. Tags written with a version are kept under its ARN (``server.region``'s spelling).
"""

from __future__ import annotations

import logging

from streamproc.config import Config
from streamproc.errors import (
    InvalidParameterException,
    InvalidPolicyRevisionIdException,
    LimitExceededException,
    ResourceAlreadyExistsException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from streamproc.ledger import Applied, Appliers
from streamproc.projects.rules import not_found
from streamproc.projects.types import Project
from streamproc.projects.versions import (
    BUSY,
    MOVES,
    Version,
    VersionRef,
    VersionStatus,
)
from streamproc.projects.versions_commands import (
    AddVersionModel,
    CreateVersion,
    DeletePolicy,
    DeleteVersion,
    PutPolicy,
    SetVersionStatus,
    TrainingAttempt,
)
from streamproc.projects.versions_requests import check_copyable, check_name_free
from streamproc.rekognition.constants import Arns
from streamproc.storage.projects import ProjectStore
from streamproc.storage.tags import TagStore
from streamproc.storage.versions import StoredPolicy, VersionStore

logger = logging.getLogger(__name__)

MAX_POLICIES = 5  # AWS: at most five policies per project


def version_not_found(name: str) -> ResourceNotFoundException:
    """The one error for a version that is not here."""
    return ResourceNotFoundException(f"The project version {name} does not exist")


class VersionRules:
    """Applies the version and policy commands to the version store."""

    def __init__(self, store: VersionStore, projects: ProjectStore, tags: TagStore,
                 config: Config) -> None:
        self._store = store
        self._projects = projects
        self._tags = tags
        self._arns = Arns(config.server.region, config.server.account_id)
        self._max_versions = config.projects.max_versions

    def register(self, appliers: Appliers) -> None:
        """Declare the version and policy commands."""
        appliers.register(CreateVersion, self._create)
        appliers.register(SetVersionStatus, self._status)
        appliers.register(AddVersionModel, self._model)
        appliers.register(DeleteVersion, self._delete)
        appliers.register(TrainingAttempt, self._attempt)
        appliers.register(PutPolicy, self._put_policy)
        appliers.register(DeletePolicy, self._delete_policy)

    def count(self, project: Project) -> int:
        """How many versions ``project`` has (DeleteProject refuses while any)."""
        return self._store.count(project.name)

    def project_gone(self, project: Project) -> None:
        """A deleted project's policies go with it (its versions were deleted first)."""
        self._store.delete_project(project.name)

    def tag_key(self, ref: VersionRef) -> str:
        """The ARN a version's tags are kept under."""
        return self._arns.version(ref.project, ref.name, ref.created_ms)

    def tag_key_of(self, resource_id: str) -> str | None:
        """The tag key of the version ``NAME/version/VERSION/MS`` names (None: none such)."""
        ref = VersionRef.parse(resource_id)
        row = None if ref is None else self._store.get(ref.project, ref.name)
        if ref is None or row is None or row.created_ms != ref.created_ms:
            return None
        return self.tag_key(ref)

    def _project(self, name: str, created_ms: int) -> None:
        row = self._projects.get(name)
        if row is None or row.created_ms != created_ms:
            raise not_found(name)

    def require(self, ref: VersionRef) -> Version:
        """The version ``ref`` names (the same one), or ResourceNotFoundException."""
        row = self._store.get(ref.project, ref.name)
        if row is None or row.created_ms != ref.created_ms:
            raise version_not_found(ref.name)
        return Version.of(row)

    def _create(self, c: CreateVersion, where: Applied) -> Version:
        version, ref = c.version, c.version.ref
        self._project(ref.project, version.project_ms)
        check_name_free(self._store.get(ref.project, ref.name) is not None, ref.project,
                        ref.name)
        if self._store.count(ref.project) >= self._max_versions:
            raise LimitExceededException(f"At most {self._max_versions} versions per project "
                                         "(projects.max_versions)")
        model = None
        if c.copy_from is not None:
            source = self.require(c.copy_from)
            check_copyable(source)
            model = self._store.model(source.ref.project, source.ref.name)
        self._store.put(version.stored(), model)
        if c.tags:
            self._tags.set(self.tag_key(ref), c.tags)
        logger.info("created version %s of %s (%s)", ref.name, ref.project,
                    version.status.value)
        return version

    def _status(self, c: SetVersionStatus, where: Applied) -> Version:
        version = self.require(c.version)
        if c.status not in MOVES.get(version.status, frozenset()):
            raise ResourceInUseException(
                f"The version is {version.status.value}: it cannot become {c.status.value}")
        if c.status is VersionStatus.TRAINING_COMPLETED and c.model is None and \
                self._store.model(c.version.project, c.version.name) is None:
            raise InvalidParameterException("A trained version needs its model")
        changed = version.moved(c.status, c.message, c.at_ms, c.result)
        if c.units is not None:
            changed = Version(changed.ref, changed.project_ms, changed.feature,
                              changed.status, changed.message, changed.updated_ms,
                              changed.node, changed.spec, changed.result, *c.units)
        self._store.put(changed.stored(), c.model)
        logger.info("version %s of %s: %s", c.version.name, c.version.project,
                    c.status.value)
        return changed

    def _model(self, c: AddVersionModel, where: Applied) -> int:
        version = self.require(c.version)
        if version.status is not VersionStatus.TRAINING_IN_PROGRESS:
            raise ResourceInUseException(
                f"The version is {version.status.value}: its model is written only in training")
        try:
            return self._store.add_model(c.version.project, c.version.name, c.offset, c.data)
        except ValueError as error:
            raise InvalidParameterException(f"The model's parts are out of order: {error}"
                                            ) from error

    def _attempt(self, c: TrainingAttempt, where: Applied) -> Version:
        version = self.require(c.version)
        if version.status is not VersionStatus.TRAINING_IN_PROGRESS:
            raise ResourceInUseException(
                f"The version is {version.status.value}: its training does not start")
        if c.stopped:  # a clean stop: retrained at the next start, this one not counted,
            # and no window left for the downtime to outlast (its own node never judges it;
            # other nodes judge it by their window from the stop)
            changed = version.attempted(max(0, version.attempts - 1), None, c.at_ms)
        elif (stale := version.effective(c.at_ms, c.stale_ms, c.node)) is not version:
            changed = stale
        elif version.attempts >= c.max_attempts:
            changed = version.moved(VersionStatus.TRAINING_FAILED, (
                f"training did not finish: it was started {version.attempts} times and the "
                "server stopped part-way each time (it may crash the server)"), c.at_ms)
        else:
            changed = version.attempted(version.attempts + 1, c.stale_ms, c.at_ms)
        self._store.put(changed.stored())
        logger.info("version %s of %s: training start %d on %s (%s)", c.version.name,
                    c.version.project, changed.attempts, c.node, changed.status.value)
        return changed

    def _delete(self, c: DeleteVersion, where: Applied) -> None:
        version = self.require(c.version).effective(c.at_ms, c.stale_ms, c.node)
        if version.status in BUSY:
            raise ResourceInUseException(
                f"The version is {version.status.value}: stop it (or let its training end) "
                "before deleting it")
        self._store.delete(c.version.project, c.version.name)
        self._tags.delete_resource(self.tag_key(c.version))
        logger.info("deleted version %s of %s", c.version.name, c.version.project)

    def _put_policy(self, c: PutPolicy, where: Applied) -> StoredPolicy:
        self._project(c.policy.project, c.project_ms)
        held = {p.name: p for p in self._store.policies(c.policy.project)}
        old = held.get(c.policy.name)
        if c.expected is None and old is not None:
            raise ResourceAlreadyExistsException(
                f"The policy {c.policy.name} exists: give its PolicyRevisionId to replace it")
        if c.expected is not None and (old is None or old.revision != c.expected):
            raise InvalidPolicyRevisionIdException(
                f"{c.expected} is not the revision of policy {c.policy.name}")
        if old is None and len(held) >= MAX_POLICIES:
            raise LimitExceededException(f"At most {MAX_POLICIES} policies per project")
        policy = c.policy if old is None else StoredPolicy(
            old.project, old.name, c.policy.revision, c.policy.document, old.created_ms,
            c.policy.updated_ms)
        self._store.put_policy(policy)
        return policy

    def _delete_policy(self, c: DeletePolicy, where: Applied) -> None:
        self._project(c.project, c.project_ms)
        old = {p.name: p for p in self._store.policies(c.project)}.get(c.name)
        if old is None:
            raise ResourceNotFoundException(f"The policy {c.name} does not exist")
        if c.revision is not None and c.revision != old.revision:
            raise InvalidPolicyRevisionIdException(
                f"{c.revision} is not the revision of policy {c.name}")
        self._store.delete_policy(c.project, c.name)
