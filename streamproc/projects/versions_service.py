"""Project version and policy operations, API side: decide, submit, read.

CreateProjectVersion answers at once (TRAINING_IN_PROGRESS) and wakes the training runner
(:mod:`streamproc.daemon.training`), which trains on its own thread; nothing here reads an
image. Start and Stop of a Custom Labels version are decided here and run at once: Start
checks that the model's bytes load on this server's backbone (STARTING, then RUNNING, or
FAILED with the reason: a version trained on another pack), answering STARTING as AWS
does (a server without a backbone fails it: nothing could serve it). Adapters are never
started or copied (InvalidParameterException, as on AWS); a copy's output files are copied
to its own OutputConfig. A request's own checks and its stored spec are
:mod:`.versions_requests`'s.
Project policies are stored, listed and deleted with their revision checks; they do not
yet gate CopyProjectVersion (copies here are within one account).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    StreamprocError,
)
from streamproc.ledger import Ledger
from streamproc.moderation.adapter import no_backbone
from streamproc.moderation.custom_labels import load_classifier
from streamproc.projects.datasets import Dataset
from streamproc.projects.service import ProjectService
from streamproc.projects.types import Feature, Project
from streamproc.projects.version_spec import OutputTarget
from streamproc.projects.versions import (
    PINNED,
    NewVersion,
    Version,
    VersionQuery,
    VersionRef,
    VersionStatus,
)
from streamproc.projects.versions_commands import (
    CreateVersion,
    DeletePolicy,
    DeleteVersion,
    PutPolicy,
    SetVersionStatus,
)
from streamproc.projects.versions_outputs import CopyTarget, copy_outputs
from streamproc.projects.versions_requests import (
    check_copyable,
    check_document,
    check_name_free,
    check_new,
    check_output,
    new_spec,
)
from streamproc.projects.versions_rules import version_not_found
from streamproc.rekognition.constants import MAX_POLICY_RESULTS, MAX_VERSION_RESULTS, Arns
from streamproc.rekognition.tokens import page_of_keys
from streamproc.storage.objects import ObjectStore
from streamproc.storage.versions import StoredPolicy, VersionStore

# The backbone identity this server's pack gives (None: no feature extractor).
Backbone = Callable[[], str | None]


class VersionService:
    """What the API calls for project versions and policies; raises domain errors only."""

    def __init__(self, store: VersionStore, projects: ProjectService, objects: ObjectStore,
                 ledger: Ledger, arns: Arns, node: str, wake: Callable[[], None],
                 backbone: Backbone, clock: Callable[[], float] = time.time,
                 stale_ms: int | None = None) -> None:
        self._store = store
        self._projects = projects
        self._objects = objects
        self._ledger = ledger
        self._arns = arns
        self._node = node
        self._wake = wake
        self._backbone = backbone
        self._clock = clock
        # Another node's training never started is judged against this window
        # (stale_window_ms of the configured deadline); this node's own is never stale (its
        # runner will start it); one started carries its own window in the ledger.
        self._stale_ms = stale_ms

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ---- reads ------------------------------------------------------------------------------
    def find(self, resource_id: str) -> Version | None:
        """The version ``NAME/version/VERSION/MS`` names, or None."""
        ref = VersionRef.parse(resource_id)
        row = None if ref is None else self._store.get(ref.project, ref.name)
        if ref is None or row is None or row.created_ms != ref.created_ms:
            return None
        return Version.of(row).effective(self._now_ms(), self._stale_ms, self._node)

    def require(self, resource_id: str) -> Version:
        """The version ``NAME/version/VERSION/MS`` names, or ResourceNotFoundException."""
        version = self.find(resource_id)
        if version is None:
            raise version_not_found(resource_id.split("/version/")[-1].rpartition("/")[0])
        return version

    def model(self, version: Version) -> bytes | None:
        """The version's trained model bytes (None until trained)."""
        return self._store.model(version.ref.project, version.ref.name)

    def describe(self, query: VersionQuery) -> tuple[list[Version], str | None]:
        """One page of the project's versions (by name), and the next token."""
        project = self._projects.require(query.project_id)
        wanted = None if query.names is None else set(query.names)
        now = self._now_ms()
        found = {v.ref.name: v.effective(now, self._stale_ms, self._node)
                 for v in map(Version.of, self._store.of_project(project.name))
                 if v.project_ms == project.created_ms and (wanted is None or
                                                            v.ref.name in wanted)}
        names, token = page_of_keys(f"versions:{query.project_id}", sorted(found),
                                    query.token, query.max_results or MAX_VERSION_RESULTS)
        return [found[name] for name in names], token

    # ---- changes ----------------------------------------------------------------------------
    def create(self, request: NewVersion,
               datasets: Callable[[Project], Sequence[Dataset]] = lambda _: ()) -> Version:
        """Create a version (TRAINING_IN_PROGRESS) and wake the runner to train it.

        ``datasets`` gives the project's datasets as they stand: a set without Assets is
        read from its dataset, which must be there (TRAIN) and not busy; its ``updated_ms``
        is pinned in the version, so the training fails if the dataset changes before
        the runner reads it (:class:`.versions_inputs.InputReader`).
        """
        project = self._projects.require(request.project_id)
        check_new(self._objects, project, request)
        spec = new_spec(project, request, {d.key.type: d for d in datasets(project)})
        now = self._now_ms()
        version = Version(VersionRef(project.name, request.name, now), project.created_ms,
                          project.feature, VersionStatus.TRAINING_IN_PROGRESS,
                          "The model is being trained", now, self._node, spec, {})
        made = self._ledger.submit(CreateVersion(version, None, dict(request.tags or {})))
        self._wake()
        return made

    def delete(self, resource_id: str) -> VersionStatus:
        """Delete a version; the Status DeleteProjectVersion answers (DELETING)."""
        version = self.require(resource_id)
        # The node's own versions it never judges stale (Version.effective): it names itself.
        self._ledger.submit(DeleteVersion(version.ref, self._now_ms(), self._stale_ms,
                                          self._node))
        return VersionStatus.DELETING

    def _custom(self, resource_id: str, verb: str) -> Version:
        version = self.require(resource_id)
        if version.feature is not Feature.CUSTOM_LABELS:
            raise InvalidParameterException(
                f"An adapter (Feature CONTENT_MODERATION) is not {verb}: it is used as it is")
        return version

    def start(self, resource_id: str, min_units: int, max_units: int | None) -> VersionStatus:
        """StartProjectVersion: STARTING, then RUNNING (or FAILED: the model cannot load)."""
        version = self._custom(resource_id, "started")
        if max_units is not None and max_units < min_units:
            raise InvalidParameterException("MaxInferenceUnits is less than MinInferenceUnits")
        self._ledger.submit(SetVersionStatus(
            version.ref, VersionStatus.STARTING, "The model is starting", self._now_ms(),
            units=(min_units, max_units if max_units is not None else min_units)))
        problem = self._loadable(version)
        end = VersionStatus.FAILED if problem else VersionStatus.RUNNING
        self._ledger.submit(SetVersionStatus(version.ref, end, problem or "The model is running",
                                             self._now_ms()))
        return VersionStatus.STARTING

    def _loadable(self, version: Version) -> str:
        """Why the version's model cannot serve here ('' when it can)."""
        data = self.model(version)
        if data is None:
            return "The model has no trained weights"
        backbone = self._backbone()
        if backbone is None:  # loads(data, None) would skip the check: it could not serve
            return no_backbone().message
        try:  # what DetectCustomLabels would load: its refusal is the FAILED reason
            load_classifier(data, backbone)
        except StreamprocError as error:
            return error.message
        return ""

    def stop(self, resource_id: str) -> VersionStatus:
        """StopProjectVersion: STOPPING, then STOPPED."""
        version = self._custom(resource_id, "stopped")
        self._ledger.submit(SetVersionStatus(version.ref, VersionStatus.STOPPING,
                                             "The model is stopping", self._now_ms()))
        self._ledger.submit(SetVersionStatus(version.ref, VersionStatus.STOPPED,
                                             "The model is stopped", self._now_ms()))
        return VersionStatus.STOPPING

    def copy(self, source_project_id: str, source_id: str, target_project_id: str,
             name: str, output: OutputTarget, tags: dict[str, str] | None) -> Version:
        """CopyProjectVersion: a trained Custom Labels version into another project.

        The source's output files are copied under the copy's OutputConfig (so the source's
        bucket must be one this server reads, ``objects.buckets``) before the copy is
        recorded; its result keeps no record of the source's training starts.
        """
        source_project = self._projects.require(source_project_id)
        source = self._custom(source_id, "copied")
        if source.ref.project != source_project.name:
            raise ResourceNotFoundException(
                f"The version {source.ref.name} is not one of project {source_project.name}")
        target = self._projects.require(target_project_id)
        if target.feature is not Feature.CUSTOM_LABELS:
            raise InvalidParameterException("A version is copied only into a Custom Labels "
                                            "project")
        check_output(self._objects, output, target.name, name)
        # The applier's own rules, checked before the copy's files are written.
        check_name_free(self._store.get(target.name, name) is not None, target.name, name)
        check_copyable(source)
        now = self._now_ms()
        spec = {k: v for k, v in source.spec.items() if k != PINNED} | {
            "OutputConfig": output.stored()}
        copied = replace(copy_outputs(self._objects, source,
                                      CopyTarget(output, target.name, name)),
                         source_arn=self._arns.version(source.ref.project, source.ref.name,
                                                       source.ref.created_ms))
        version = Version(VersionRef(target.name, name, now), target.created_ms,
                          Feature.CUSTOM_LABELS, VersionStatus.COPYING_COMPLETED,
                          "The model was copied", now, self._node, spec, copied.payload())
        return self._ledger.submit(CreateVersion(version, source.ref, dict(tags or {})))

    # ---- policies ---------------------------------------------------------------------------
    def put_policy(self, project_id: str, name: str, revision: str | None,
                   document: str) -> StoredPolicy:
        """PutProjectPolicy: create, or replace the revision given."""
        project = self._projects.require(project_id)
        check_document(document)
        now = self._now_ms()
        new_revision = hashlib.sha256(f"{name}\n{now}\n{document}".encode()).hexdigest()[:32]
        return self._ledger.submit(PutPolicy(StoredPolicy(
            project.name, name, new_revision, document, now, now), project.created_ms,
            revision))

    def policies(self, project_id: str, token: str | None, max_results: int | None
                 ) -> tuple[list[StoredPolicy], Project, str | None]:
        """One page of the project's policies, by name."""
        project = self._projects.require(project_id)
        held = {p.name: p for p in self._store.policies(project.name)}
        names, next_token = page_of_keys(f"policies:{project_id}", sorted(held), token,
                                         max_results or MAX_POLICY_RESULTS)
        return [held[n] for n in names], project, next_token

    def delete_policy(self, project_id: str, name: str, revision: str | None) -> None:
        """DeleteProjectPolicy (with a revision: only if it is the current one)."""
        project = self._projects.require(project_id)
        self._ledger.submit(DeletePolicy(project.name, project.created_ms, name, revision))

