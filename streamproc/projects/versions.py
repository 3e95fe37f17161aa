"""Project versions as the domain sees them: statuses, the moves between them, requests.

A version is named by its project, its name and its creation time (the ProjectVersionArn
``project/NAME/version/VERSION/CREATED_MS``). CreateProjectVersion answers at once with
TRAINING_IN_PROGRESS; the training runner ends it TRAINING_COMPLETED or TRAINING_FAILED.
A Custom Labels version is then started (STARTING -> RUNNING) and stopped (STOPPING ->
STOPPED); an adapter is used as it is, never started (as on AWS). What the request asked
(``spec``) and what training produced (``result``) are stored in the wire's field names (so
old records replay); both are read through typed views (:attr:`Version.output` and its kin,
:mod:`.version_spec`; :attr:`Version.outcome`, :mod:`.version_result`), never as wire dicts.

A training in progress is bounded: each start of one is recorded (``TrainingAttempt``, with
the window it must end in), and a version TRAINING_IN_PROGRESS for longer than that window
(:meth:`Version.effective`) reads as TRAINING_FAILED on the other nodes: its node stopped,
left or was renamed. Its own node never judges it stale, however long it was down: its
runner retrains it from the start when it starts again (each start a crash cut short counts
toward :data:`MAX_ATTEMPTS`, so a training that crashes the process fails; a clean stop
counts none and clears the window), or the training's deadline ends it. Other nodes judge a
version by the window of its last start, from that start, or (never started, or its start
withdrawn by a clean stop) by their own window from its creation or that stop (a limit: a
live other node whose queue outlasts the window reads as failed). The appliers take the window
and the time from their commands, never from a node's config, so every node applies alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from streamproc.projects.types import Feature
from streamproc.projects.version_result import TrainingOutcome, TrainingRecord
from streamproc.projects.version_spec import AdapterConfig, OutputTarget, TrainingInput
from streamproc.storage.versions import StoredVersion

_ID = re.compile(r"^([a-zA-Z0-9_.\-]{1,255})/version/([a-zA-Z0-9_.\-]{1,255})/([0-9]+)$")


class VersionStatus(str, Enum):
    """ProjectVersionStatus (those this server reaches)."""

    TRAINING_IN_PROGRESS = "TRAINING_IN_PROGRESS"
    TRAINING_COMPLETED = "TRAINING_COMPLETED"
    TRAINING_FAILED = "TRAINING_FAILED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    DELETING = "DELETING"
    COPYING_COMPLETED = "COPYING_COMPLETED"


# Which status may follow which: every other move is ResourceInUseException.
MOVES: dict[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.TRAINING_IN_PROGRESS: frozenset({VersionStatus.TRAINING_COMPLETED,
                                                   VersionStatus.TRAINING_FAILED}),
    VersionStatus.TRAINING_COMPLETED: frozenset({VersionStatus.STARTING}),
    VersionStatus.COPYING_COMPLETED: frozenset({VersionStatus.STARTING}),
    VersionStatus.STOPPED: frozenset({VersionStatus.STARTING}),
    VersionStatus.FAILED: frozenset({VersionStatus.STARTING}),
    VersionStatus.STARTING: frozenset({VersionStatus.RUNNING, VersionStatus.FAILED,
                                       VersionStatus.STOPPING}),
    VersionStatus.RUNNING: frozenset({VersionStatus.STOPPING}),
    VersionStatus.STOPPING: frozenset({VersionStatus.STOPPED}),
}
# A version in one of these cannot be deleted (AWS: "running or training").
BUSY = frozenset({VersionStatus.TRAINING_IN_PROGRESS, VersionStatus.STARTING,
                  VersionStatus.RUNNING, VersionStatus.STOPPING})
# Trained: the model bytes are there (a version can be copied or started).
# A training still in progress this long after its deadline has no runner: the margin covers
# reading the manifests before the deadline starts, writing the outputs after its last check
# and clocks that differ between nodes.
STALE_MARGIN_S = 300.0
MAX_ATTEMPTS = 3  # starts of one training (each cut short by a crash) before it fails
# Spec key (never on the wire): dataset type -> the updated_ms it had when the version was
# created, for each set read from the project's datasets (absent in older records: unpinned).
PINNED = "_datasets"


def stale_window_ms(deadline_s: float) -> int:
    """How long a training may stay in progress: its deadline and :data:`STALE_MARGIN_S`."""
    return int((deadline_s + STALE_MARGIN_S) * 1000)


TRAINED = frozenset({VersionStatus.TRAINING_COMPLETED, VersionStatus.COPYING_COMPLETED,
                     VersionStatus.STARTING, VersionStatus.RUNNING, VersionStatus.FAILED,
                     VersionStatus.STOPPING, VersionStatus.STOPPED})


@dataclass(frozen=True)
class VersionRef:
    """One version as a command names it: project, version name and creation time."""

    project: str
    name: str
    created_ms: int

    @property
    def resource_id(self) -> str:
        """``NAME/version/VERSION/MS``: what follows ``project/`` in its ARN."""
        return f"{self.project}/version/{self.name}/{self.created_ms}"

    def payload(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"project": self.project, "name": self.name, "created_ms": self.created_ms}

    @classmethod
    def of(cls, payload: dict[str, Any]) -> VersionRef:
        """Inverse of :meth:`payload`."""
        return cls(str(payload["project"]), str(payload["name"]), int(payload["created_ms"]))

    @classmethod
    def parse(cls, resource_id: str) -> VersionRef | None:
        """``NAME/version/VERSION/MS`` (a ProjectVersionArn's id) as a reference, or None."""
        match = _ID.fullmatch(resource_id)
        if match is None:
            return None
        return cls(match.group(1), match.group(2), int(match.group(3)))


@dataclass(frozen=True)
class Version:
    """One project version's metadata (its model bytes are kept apart)."""

    ref: VersionRef
    project_ms: int  # the project's creation time: a project made again is another one
    feature: Feature
    status: VersionStatus
    message: str
    updated_ms: int
    node: str  # the node whose runner trains it
    spec: dict[str, Any]  # its stored form (see the views below); set by its creator only
    # Its stored form (read through :attr:`outcome`): EvaluationResult, ... as training wrote
    # them. Kept as stored, as ``spec`` is, so a row and a CreateVersion record keep their bytes.
    result: dict[str, Any]
    min_units: int | None = None
    max_units: int | None = None

    @property
    def output(self) -> OutputTarget:
        """Where its training writes its files (OutputConfig)."""
        return OutputTarget.parse(self.spec["OutputConfig"])

    @property
    def training(self) -> TrainingInput | None:
        """TrainingData as asked (None: none given)."""
        data = self.spec.get("TrainingData")
        return None if data is None else TrainingInput.parse(data)

    @property
    def testing(self) -> TrainingInput | None:
        """TestingData as asked (None: none given)."""
        data = self.spec.get("TestingData")
        return None if data is None else TrainingInput.parse(data)

    @property
    def adapter(self) -> AdapterConfig | None:
        """An adapter's FeatureConfig (None: a Custom Labels version)."""
        data = self.spec.get("FeatureConfig")
        return None if data is None else AdapterConfig.parse(data)

    @property
    def description(self) -> str | None:
        """Its VersionDescription (None: none given)."""
        text = self.spec.get("VersionDescription")
        return None if text is None else str(text)

    @property
    def pins(self) -> dict[str, int] | None:
        """Dataset type -> the ``updated_ms`` it was read at (None: an older, unpinned one)."""
        pins = self.spec.get(PINNED)
        return None if pins is None else {str(k): int(v) for k, v in pins.items()}

    @property
    def outcome(self) -> TrainingOutcome:
        """What its training (or copy) produced, and the record of its training's starts."""
        return TrainingOutcome.parse(self.result)

    def moved(self, status: VersionStatus, message: str, at_ms: int,
              result: TrainingOutcome | None = None) -> Version:
        """The version in ``status`` (the result's parts merged over what it had)."""
        merged = self.result if result is None else self.outcome.merged(result).payload()
        return replace(self, status=status, message=message, updated_ms=at_ms, result=merged)

    @property
    def attempts(self) -> int:
        """How many starts of its training were recorded (and not withdrawn by a stop)."""
        return self.outcome.attempts

    @property
    def stale_ms(self) -> int | None:
        """The window its last recorded start gave its training (None: never started)."""
        attempt = self.outcome.attempt
        return None if attempt is None else attempt.stale_ms

    def trained_result(self) -> TrainingOutcome:
        """Its outcome without the record of its training's starts (which no copy takes)."""
        return self.outcome.trained()

    def attempted(self, attempts: int, stale_ms: int | None, at_ms: int) -> Version:
        """The version with ``attempts`` starts recorded, the last at ``at_ms``.

        ``stale_ms`` None records no window (a clean stop withdrew the start).
        """
        outcome = replace(self.outcome, attempt=TrainingRecord(attempts, stale_ms))
        return replace(self, updated_ms=at_ms, result=outcome.payload())

    def effective(self, now_ms: int, stale_ms: int | None = None,
                  deciding: str | None = None) -> Version:
        """The version as it stands at ``now_ms``: a training silent too long has failed.

        Its own node (``deciding`` is the version's node) never judges it stale, however
        long that node was down: its runner retrains it from the start when it starts again
        (each start a crash cut short counts toward :data:`MAX_ATTEMPTS`, a clean stop none),
        or the training's deadline ends it. Any other node (or ``deciding`` None) judges a
        training started by the window its last recorded start gave, from that start; one
        never started (or whose start a clean stop withdrew) by ``stale_ms`` (the deciding
        node's window; None: never stale) from its creation (or that stop). A documented
        limit: a live but busy other node's queue longer than the window reads as failed
        there.
        """
        if self.status is not VersionStatus.TRAINING_IN_PROGRESS or deciding == self.node:
            return self
        started = self.stale_ms
        window = started if started is not None else stale_ms
        if window is None or now_ms - self.updated_ms < window:
            return self
        since = "creation" if started is None else "start"
        return self.moved(VersionStatus.TRAINING_FAILED, (
            f"training did not finish: nothing ended it within {window / 1000:g} s of its "
            f"{since} (its node stopped, left the cluster or was renamed)"),
            self.updated_ms + window)

    def stored(self) -> StoredVersion:
        """The row the store keeps."""
        r = self.ref
        return StoredVersion(r.project, self.project_ms, r.name, r.created_ms,
                             self.feature.value, self.status.value, self.message,
                             self.updated_ms, self.node, dict(self.spec), dict(self.result),
                             self.min_units, self.max_units)

    @classmethod
    def of(cls, row: StoredVersion) -> Version:
        """Inverse of :meth:`stored`."""
        return cls(VersionRef(row.project, row.name, row.created_ms), row.project_ms,
                   Feature(row.feature), VersionStatus(row.status), row.message,
                   row.updated_ms, row.node, dict(row.spec), dict(row.result), row.min_units,
                   row.max_units)


@dataclass(frozen=True)
class NewVersion:
    """A CreateProjectVersion request, parsed."""

    project_id: str  # NAME/CREATION_MS
    name: str
    output: OutputTarget
    training: TrainingInput | None = None
    testing: TrainingInput | None = None
    description: str | None = None
    feature_config: AdapterConfig | None = None  # None: the request gave no FeatureConfig
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class VersionQuery:
    """A DescribeProjectVersions request, parsed."""

    project_id: str
    names: tuple[str, ...] | None = None
    token: str | None = None
    max_results: int | None = None
