"""Stream processor rules: create, start, stop, update, delete, list; raises domain errors.

Every operation records what the user wants (definition, desired state, the immediate
status Rekognition reports: STARTING after Start, STOPPING after Stop) and returns; the
reconciler, told through ``notify``, makes the data plane match. Nothing here starts or
stops a thread.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from streamproc.config import Config
from streamproc.dataplane.allowlist import InputAllowlist, InputRefused, InputUnresolved
from streamproc.errors import (
    InvalidParameterException,
    LimitExceededException,
    ResourceInUseException,
)
from streamproc.metrics import ProcessorMetrics, ProcessorSensor
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
from streamproc.processors.urls import KVS_ARN, output_target, redact
from streamproc.rekognition.constants import DEFAULT_PAGE_SIZE, Arns
from streamproc.rekognition.tokens import decode_token, encode_token
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)
S = ProcessorStatus
EMIT_TAG = "streamproc:emit"


class ProcessorService:
    """Owns every processor's definition, desired state and status."""

    def __init__(self, registry: ProcessorRegistry, store: ProcessorStore, tags: TagStore,
                 kinds: dict[str, ProcessorKind], metrics: ProcessorMetrics, config: Config,
                 notify: Callable[[str], None], inputs: InputAllowlist | None = None) -> None:
        self._registry = registry
        self._inputs = inputs
        self._store = store
        self._tags = tags
        self._kinds = kinds
        self._metrics = metrics
        self._config = config
        self._notify = notify
        self._arns = Arns(config.server.region, config.server.account_id)

    # ---- loading ------------------------------------------------------------------------
    def load(self) -> None:
        """Read processors; those that should run are STARTING again (the reconciler runs them)."""
        for stored in self._store.load():
            status = S(stored.status)
            if status not in (S.STOPPED, S.FAILED):
                status = S.STOPPED  # a transient state cannot outlive the process
            desired = Desired(stored.desired)
            entry = self._new_entry(ProcessorSpec.from_dict(stored.spec), status,
                                    stored.status_message, stored.updated, desired)
            self._registry.add(entry)
            if desired is Desired.RUNNING and status is S.STOPPED:
                logger.info("resuming processor %s", stored.name)
                entry.session_id = str(uuid.uuid4())
                entry.state.change(S.STARTING)
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

    def save_desired(self, name: str, desired: Desired) -> None:
        """Persist a desired state (the reconciler calls this when a processor fails)."""
        self._store.save_desired(name, desired.value)

    # ---- lookups --------------------------------------------------------------------------
    def arn(self, name: str) -> str:
        """The processor's ARN."""
        return self._arns.processor(name)

    def exists_arn(self, arn: str) -> bool:
        """True if a processor has this ARN (for tagging)."""
        return self._registry.by_arn(arn) is not None

    def sensor_for(self, name: str) -> ProcessorSensor | None:
        """Metrics of an existing processor (None once deleted)."""
        return self._metrics.sensor(name) if self._registry.get(name) else None

    def emit_mode(self, spec: ProcessorSpec) -> str:
        """``frame`` or ``track``: the processor's tag, else the configured default."""
        return self._tags.get(spec.arn).get(EMIT_TAG, self._config.processors.emit)

    # ---- create / delete --------------------------------------------------------------------
    def create(self, spec_args: dict[str, Any], tags: dict[str, str]) -> ProcessorSpec:
        """Register a STOPPED processor after checking names, inputs, outputs and limits."""
        name = spec_args["name"]
        target = output_target(spec_args["output_arn"])
        if target is None:
            raise InvalidParameterException("Output.KinesisDataStream.Arn names no Kafka topic")
        if target.bootstrap is None and not self._config.kafka.bootstrap:
            raise InvalidParameterException(
                "No default Kafka cluster is configured (streamproc serve --kafka HOST:PORT); "
                "use a kafka://host:port/topic output instead")
        _check_emit_tag(tags)
        self._check_input(spec_args["input_arn"])
        spec = ProcessorSpec(arn=self.arn(name), created=time.time(), **spec_args)
        self._kinds[spec.kind].check(spec)
        entry = self._new_entry(spec, S.STOPPED, "", spec.created, Desired.STOPPED)

        def check(entries: list[Entry]) -> None:
            self._check_create(spec, entries)
            self._store.insert(name, spec.to_dict(), S.STOPPED.value, Desired.STOPPED.value,
                               spec.created)

        self._registry.insert(entry, check)
        if tags:
            self._tags.set(spec.arn, tags)
        logger.info("created processor %s: %s -> %s", name, redact(spec.input_arn),
                    redact(spec.output_arn))
        return spec

    def _check_input(self, url: str) -> None:
        """The inputs allowlist at the API; the source checks again before every connect."""
        if self._inputs is None or KVS_ARN.match(url):
            return  # a KVS-style ARN maps to an operator-configured URL, checked at connect
        try:
            self._inputs.check(url)
        except InputRefused as exc:
            raise InvalidParameterException(
                f"Input.KinesisVideoStream.Arn refused by inputs.{exc.rule}: "
                f"{exc.message}") from None
        except InputUnresolved:
            logger.info("input host of %s does not resolve now; judged again at connect",
                        redact(url))

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

    def delete(self, name: str) -> None:
        """Delete a processor that is not running."""
        entry = self._registry.require(name)
        with entry.state.lock:
            if entry.state.status not in CAN_DELETE:
                raise ResourceInUseException("Cannot delete stream processor.")
            self._registry.remove(name)
            self._store.delete(name)
        self._tags.delete_resource(entry.spec.arn)
        self._metrics.remove(name, [s.value for s in S])
        self._notify(name)

    # ---- start / stop / update ---------------------------------------------------------------
    def start(self, name: str) -> str:
        """STOPPED/FAILED -> STARTING; RUNNING once frames flow. Returns the SessionId."""
        entry = self._registry.require(name)
        with entry.state.lock:
            if entry.state.status not in CAN_START:
                raise ResourceInUseException("Specified resource is in use.")
            self._kinds[entry.spec.kind].check(entry.spec)
            self._check_input(entry.spec.input_arn)
            entry.session_id = str(uuid.uuid4())
            entry.state.change(S.STARTING)
            self._set_desired(entry, Desired.RUNNING)
        self._notify(name)
        return entry.session_id

    def stop(self, name: str) -> None:
        """STARTING/RUNNING -> STOPPING; STOPPED within ``processors.stop_timeout_s``."""
        entry = self._registry.require(name)
        with entry.state.lock:
            if entry.state.status not in CAN_STOP:
                raise ResourceInUseException("Processor not available for stopping stream.")
            entry.state.change(S.STOPPING)
            self._set_desired(entry, Desired.STOPPED)
        self._notify(name)

    def _set_desired(self, entry: Entry, desired: Desired) -> None:
        entry.desired = desired
        self.save_desired(entry.spec.name, desired)

    def update(self, name: str, regions: list[dict[str, Any]] | None,
               data_sharing: bool | None, delete: list[str], connected_home: bool) -> None:
        """Apply UpdateStreamProcessor; a running processor picks up new regions at once."""
        if connected_home:
            raise InvalidParameterException(
                "SettingsForUpdate.ConnectedHomeForUpdate applies only to label detection "
                "processors; this is a face search processor")
        entry = self._registry.require(name)
        with entry.state.lock:
            if entry.state.status not in CAN_UPDATE:
                raise ResourceInUseException("Specified resource is in use.")
            self._check_input(entry.spec.input_arn)
            changes: dict[str, Any] = {}
            if regions is not None:
                changes["regions"] = regions
            if "RegionsOfInterest" in delete:
                changes["regions"] = []
            if data_sharing is not None:
                changes["data_sharing"] = data_sharing
            entry.spec = entry.spec.with_updates(**changes)
            entry.version += 1
            self._store.save_spec(name, entry.spec.to_dict())
        self._notify(name)

    # ---- describe / list ------------------------------------------------------------------------
    def describe(self, name: str) -> tuple[ProcessorSpec, ProcessorState]:
        """Definition and state."""
        entry = self._registry.require(name)
        return entry.spec, entry.state

    def list(self, token: str | None, max_results: int | None
             ) -> tuple[list[tuple[str, str]], str | None]:
        """(name, status) pairs in name order, paginated."""
        after = decode_token("processors", token, str)
        limit = max_results or DEFAULT_PAGE_SIZE
        entries = [e for e in self._registry.entries() if after is None or e.spec.name > after]
        page = [(e.spec.name, e.state.status.value) for e in entries[:limit]]
        more = len(entries) > limit
        return page, encode_token("processors", page[-1][0]) if more else None


def _check_emit_tag(tags: dict[str, str]) -> None:
    value = tags.get(EMIT_TAG)
    if value is not None and value not in ("frame", "track"):
        raise InvalidParameterException(f"Tag {EMIT_TAG} must be 'frame' or 'track'")
