"""Every change to stream processors, applied in ledger order (on every node that keeps them).

The API side (:mod:`streamproc.processors.service`) and the reconciler only submit
commands; the rules live here, once: names, limits and exclusive inputs at Create, which
status allows Start, Stop, Update and Delete, and which reports from a running session may
change the status (only those of the current Start, from the node that runs it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from streamproc.config import Config
from streamproc.errors import (
    InvalidParameterException,
    LimitExceededException,
    ResourceInUseException,
)
from streamproc.ledger import Applied, Appliers
from streamproc.metrics import ProcessorMetrics
from streamproc.processors.commands import (
    ClaimProcessor,
    CreateProcessor,
    DeleteProcessor,
    ReleaseProcessor,
    Report,
    ReportProcessor,
    StartProcessor,
    StopProcessor,
    UpdateProcessor,
)
from streamproc.processors.kinds import ProcessorKind
from streamproc.processors.registry import Desired, Entry, ProcessorRegistry
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.state import (
    CAN_DELETE,
    CAN_START,
    CAN_STOP,
    CAN_UPDATE,
    ProcessorState,
    ProcessorStatus,
)
from streamproc.processors.urls import output_target
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)
S = ProcessorStatus
ACTIVE = frozenset({S.STARTING, S.RUNNING})
# What a running session's report may do: (from which statuses, to which).
_REPORTS: dict[Report, tuple[frozenset[ProcessorStatus], ProcessorStatus]] = {
    Report.RUNNING: (frozenset({S.STARTING}), S.RUNNING),
    # Launched again (after a daemon restart, or on another node): RUNNING once frames flow.
    Report.STARTING: (frozenset({S.RUNNING}), S.STARTING),
    Report.FAILED: (ACTIVE, S.FAILED),
    Report.STOPPED: (frozenset({S.STOPPING}), S.STOPPED),
    Report.MESSAGE: (frozenset({S.RUNNING}), S.RUNNING),
}


class ProcessorRules:
    """Applies processor commands to the registry and its store."""

    def __init__(self, registry: ProcessorRegistry, store: ProcessorStore, tags: TagStore,
                 kinds: dict[str, ProcessorKind], metrics: ProcessorMetrics, config: Config,
                 notify: Callable[[str], None]) -> None:
        self._registry = registry
        self._store = store
        self._tags = tags
        self._kinds = kinds
        self._metrics = metrics
        self._config = config
        self._notify = notify

    def register(self, appliers: Appliers) -> None:
        """Declare this module's commands."""
        appliers.register(CreateProcessor, self._create)
        appliers.register(DeleteProcessor, self._delete)
        appliers.register(StartProcessor, self._start)
        appliers.register(StopProcessor, self._stop)
        appliers.register(UpdateProcessor, self._update)
        appliers.register(ClaimProcessor, self._claim)
        appliers.register(ReleaseProcessor, self._release)
        appliers.register(ReportProcessor, self._report)

    def load(self) -> None:
        """Fill the registry from the store; the reconciler takes it from there."""
        for stored in self._store.load():
            entry = self._new_entry(ProcessorSpec.from_dict(stored.spec), S(stored.status),
                                    stored.status_message, stored.updated,
                                    Desired(stored.desired))
            entry.session_id, entry.owner = stored.session_id, stored.owner
            self._registry.add(entry)
            self._notify(stored.name)

    def _new_entry(self, spec: ProcessorSpec, status: ProcessorStatus, message: str,
                   updated: float | None, desired: Desired) -> Entry:
        sensor = self._metrics.sensor(spec.name)

        def persist(name: str, old: ProcessorStatus, new: ProcessorStatus, msg: str) -> None:
            sensor.status(old.value, new.value)
            self._store.save_status(name, new.value, msg, time.time())

        state = ProcessorState(spec.name, status, message, updated, listener=persist)
        sensor.status(status.value, status.value)
        return Entry(spec, state, desired)

    # ---- create / delete ---------------------------------------------------------------------
    def _create(self, c: CreateProcessor, where: Applied) -> None:
        spec = c.spec
        self._kinds[spec.kind]  # noqa: B018 - an unknown kind fails here, on every node alike
        entry = self._new_entry(spec, S.STOPPED, "", spec.created, Desired.STOPPED)

        def check(entries: list[Entry]) -> None:
            self._check_create(spec, entries)
            self._store.insert(spec.name, spec.to_dict(), S.STOPPED.value,
                               Desired.STOPPED.value, spec.created)

        self._registry.insert(entry, check)
        if c.tags:
            self._tags.set(spec.arn, c.tags)
        self._notify(spec.name)

    def _check_create(self, spec: ProcessorSpec, entries: list[Entry]) -> None:
        if any(e.spec.name == spec.name for e in entries):
            raise ResourceInUseException("Stream processor name already in use.")
        if len(entries) >= self._config.processors.max_processors:
            raise LimitExceededException(
                "Stream processor limit exceeded for account, limit - "
                f"{self._config.processors.max_processors}")
        target = output_target(spec.output_arn)
        for other in entries:
            if other.spec.input_arn == spec.input_arn:
                raise ResourceInUseException(
                    f"Input stream is already used by stream processor {other.spec.name}")
            if output_target(other.spec.output_arn) == target:
                raise ResourceInUseException(
                    f"Output stream is already used by stream processor {other.spec.name}")

    def _delete(self, c: DeleteProcessor, where: Applied) -> None:
        name = c.name
        entry = self._registry.require(name)
        with entry.state.lock:
            if entry.state.status not in CAN_DELETE:
                raise ResourceInUseException("Cannot delete stream processor.")
            self._registry.remove(name)
            self._store.delete(name)
        self._tags.delete_resource(entry.spec.arn)
        self._metrics.remove(name, [s.value for s in S])
        self._notify(name)

    # ---- start / stop / update ----------------------------------------------------------------
    def _start(self, c: StartProcessor, where: Applied) -> None:
        entry = self._registry.require(c.name)
        with entry.state.lock:
            if entry.state.status not in CAN_START:
                raise ResourceInUseException("Specified resource is in use.")
            entry.session_id = c.session_id
            entry.state.change(S.STARTING)
            entry.desired = Desired.RUNNING
            self._store.save_desired(entry.spec.name, Desired.RUNNING.value, entry.session_id)
        self._notify(entry.spec.name)

    def _stop(self, c: StopProcessor, where: Applied) -> None:
        entry = self._registry.require(c.name)
        with entry.state.lock:
            if entry.state.status not in CAN_STOP:
                raise ResourceInUseException("Processor not available for stopping stream.")
            entry.state.change(S.STOPPING)
            entry.desired = Desired.STOPPED
            self._store.save_desired(entry.spec.name, Desired.STOPPED.value)
        self._notify(entry.spec.name)

    def _update(self, c: UpdateProcessor, where: Applied) -> None:
        entry = self._registry.require(c.name)
        with entry.state.lock:
            if entry.state.status not in CAN_UPDATE:
                raise ResourceInUseException("Specified resource is in use.")
            entry.spec = entry.spec.with_updates(**c.changes())
            entry.version += 1
            self._store.save_spec(entry.spec.name, entry.spec.to_dict())
        self._notify(entry.spec.name)

    # ---- what the node running a session says -------------------------------------------------
    def _claim(self, c: ClaimProcessor, where: Applied) -> None:
        """A node launched the processor: from now on its reports are the ones that count."""
        entry = self._registry.get(c.name)
        if entry is None or entry.session_id != c.session_id or entry.owner == where.node:
            return
        entry.owner = where.node
        self._store.save_owner(entry.spec.name, where.node)

    def _release(self, c: ReleaseProcessor, where: Applied) -> None:
        """The node that ran the processor stopped it: another may start it now."""
        entry = self._registry.get(c.name)
        if entry is None or entry.session_id != c.session_id or entry.owner != where.node:
            return  # an earlier Start's session, or already claimed by another node
        entry.owner = ""
        self._store.save_owner(entry.spec.name, "")

    def _report(self, c: ReportProcessor, where: Applied) -> None:
        """A status change seen by the node running the processor's current Start."""
        entry = self._registry.get(c.name)
        if entry is None or entry.session_id != c.session_id:
            return  # about an earlier Start, or a deleted processor
        if entry.owner and entry.owner != where.node:
            return  # from a node that no longer runs it
        allowed, new = _REPORTS[Report(c.event)]
        with entry.state.lock:
            changed = entry.state.change_if(allowed, new, c.message)
            if changed and new is S.FAILED:
                entry.desired = Desired.STOPPED  # FAILED stays down until started again
                self._store.save_desired(entry.spec.name, Desired.STOPPED.value)


def check_emit_tag(tags: dict[str, str], tag: str) -> None:
    """The per-processor emit tag takes ``frame`` or ``track``."""
    value = tags.get(tag)
    if value is not None and value not in ("frame", "track"):
        raise InvalidParameterException(f"Tag {tag} must be 'frame' or 'track'")
