"""Stream processor rules: create, start, stop, update, delete, list; raises domain errors."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from streamproc.config import Config
from streamproc.dataplane.plane import DataPlane
from streamproc.dataplane.session import Session
from streamproc.errors import (
    InvalidParameterException,
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from streamproc.metrics import ProcessorMetrics, ProcessorSensor
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.state import (
    CAN_DELETE,
    CAN_START,
    CAN_STOP,
    CAN_UPDATE,
    ProcessorState,
    ProcessorStatus,
)
from streamproc.processors.urls import KVS_ARN, output_target, redact, stream_name
from streamproc.rekognition.tokens import decode_token, encode_token
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)
S = ProcessorStatus
MIN_THRESHOLD = 80.0
EMIT_TAG = "streamproc:emit"


@dataclass
class Entry:
    """A processor known to the daemon, and its session while it runs."""

    spec: ProcessorSpec
    state: ProcessorState
    desired: str
    session: Session | None = None


class ProcessorService:
    """Owns every processor's definition and state; drives the data plane."""

    def __init__(self, store: ProcessorStore, tags: TagStore, plane: DataPlane,
                 metrics: ProcessorMetrics, config: Config) -> None:
        self._store = store
        self._tags = tags
        self._plane = plane
        self._metrics = metrics
        self._config = config
        self._entries: dict[str, Entry] = {}
        self._lock = threading.RLock()

    # ---- loading and shutdown -------------------------------------------------------
    def load(self) -> None:
        """Read processors; restart those that were running when the daemon stopped."""
        for stored in self._store.load():
            status = S(stored.status)
            if status not in (S.STOPPED, S.FAILED):
                status = S.STOPPED  # a transient state cannot outlive the process
            entry = self._new_entry(ProcessorSpec.from_dict(stored.spec), status,
                                    stored.status_message, stored.updated, stored.desired)
            self._entries[stored.name] = entry
        for entry in list(self._entries.values()):
            if entry.desired == "RUNNING":
                logger.info("resuming processor %s", entry.spec.name)
                self._start(entry)

    def shutdown(self) -> None:
        """Stop every session but keep each processor's desired state for the next start."""
        for entry in list(self._entries.values()):
            if entry.session is not None:
                self._plane.halt(entry.session)
                entry.session = None

    def _new_entry(self, spec: ProcessorSpec, status: ProcessorStatus, message: str,
                   updated: float | None, desired: str) -> Entry:
        sensor = self._metrics.sensor(spec.name)

        def persist(name: str, old: ProcessorStatus, new: ProcessorStatus, msg: str) -> None:
            sensor.status(old.value, new.value)
            self._store.save_status(name, new.value, msg, time.time())

        state = ProcessorState(spec.name, status, message, updated, listener=persist)
        sensor.status(status.value, status.value)
        return Entry(spec, state, desired)

    # ---- lookups ----------------------------------------------------------------------
    def arn(self, name: str) -> str:
        """The processor's ARN."""
        server = self._config.server
        return f"arn:aws:rekognition:{server.region}:{server.account_id}:streamprocessor/{name}"

    def _entry(self, name: str) -> Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise ResourceNotFoundException(f"Stream processor {name} not found")
        return entry

    def entry_by_arn(self, arn: str) -> Entry | None:
        """The processor with this ARN, if any."""
        return next((e for e in self._entries.values() if e.spec.arn == arn), None)

    # ---- create / delete --------------------------------------------------------------
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
        with self._lock:
            if name in self._entries:
                raise ResourceInUseException("Stream processor name already in use.")
            if len(self._entries) >= self._config.processors.max_processors:
                raise LimitExceededException(
                    "Stream processor limit exceeded for account, limit - "
                    f"{self._config.processors.max_processors}")
            for other in self._entries.values():
                if other.spec.input_arn == spec_args["input_arn"]:
                    raise ResourceInUseException(
                        f"Input stream is already used by stream processor {other.spec.name}")
                if output_target(other.spec.output_arn) == target:
                    raise ResourceInUseException(
                        f"Output stream is already used by stream processor {other.spec.name}")
            spec = ProcessorSpec(arn=self.arn(name), created=time.time(), **spec_args)
            self._store.insert(name, spec.to_dict(), S.STOPPED.value, "STOPPED", spec.created)
            self._entries[name] = self._new_entry(spec, S.STOPPED, "", spec.created, "STOPPED")
        if tags:
            self._tags.set(spec.arn, tags)
        logger.info("created processor %s: %s -> %s", name, redact(spec.input_arn),
                    redact(spec.output_arn))
        return spec

    def delete(self, name: str) -> None:
        """Delete a processor that is not running."""
        with self._lock:
            entry = self._entry(name)
            with entry.state.lock:
                if entry.state.status not in CAN_DELETE:
                    raise ResourceInUseException("Cannot delete stream processor.")
                del self._entries[name]
            self._store.delete(name)
        self._tags.delete_resource(entry.spec.arn)
        self._metrics.remove(name, [s.value for s in S])

    # ---- start / stop -------------------------------------------------------------------
    def start(self, name: str) -> str:
        """STOPPED/FAILED -> STARTING; RUNNING once frames flow. Returns the SessionId."""
        entry = self._entry(name)
        with entry.state.lock:
            if entry.state.status not in CAN_START:
                raise ResourceInUseException("Specified resource is in use.")
            return self._start(entry)

    def _start(self, entry: Entry) -> str:
        spec = entry.spec
        entry.state.change(S.STARTING)
        entry.desired = "RUNNING"
        self._store.save_desired(spec.name, "RUNNING")
        session = self._session(entry)
        entry.session = session
        url = self._resolve_input(spec)
        if url is None:
            session.fail(f"Stream {stream_name(spec.input_arn)} doesn't exist")
            return session.session_id
        self._plane.run(session, url, redact(url))
        return session.session_id

    def _resolve_input(self, spec: ProcessorSpec) -> str | None:
        if not KVS_ARN.match(spec.input_arn):
            return spec.input_arn
        streams = self._config.processors.video_streams
        return streams.get(spec.input_arn) or streams.get(stream_name(spec.input_arn))

    def _session(self, entry: Entry) -> Session:
        spec = entry.spec
        target = output_target(spec.output_arn)
        assert target is not None
        emit = self._tags.get(spec.arn).get(EMIT_TAG, self._config.processors.emit)
        return Session(
            name=spec.name, session_id=str(uuid.uuid4()), collection_id=spec.collection_id,
            threshold=max(spec.threshold, MIN_THRESHOLD), stream_arn=redact(spec.input_arn),
            bootstrap=target.bootstrap or str(self._config.kafka.bootstrap), topic=target.topic,
            emit=emit, sensor=self._metrics.sensor(spec.name), regions=list(spec.regions),
            on_running=self._on_running, on_failed=self._on_failed,
            frame_queue=self._config.processors.frame_queue)

    def _on_running(self, session: Session) -> None:
        entry = self._entries.get(session.name)
        if entry is not None and entry.session is session:
            entry.state.change_if(frozenset({S.STARTING}), S.RUNNING)

    def _on_failed(self, session: Session, message: str) -> None:
        entry = self._entries.get(session.name)
        if entry is None or entry.session is not session:
            return
        with entry.state.lock:
            if entry.state.change_if(frozenset({S.STARTING, S.RUNNING}), S.FAILED, message):
                entry.session = None
        self._plane.halt(session)

    def fail_cluster(self, bootstrap: str, message: str) -> None:
        """Fail every running processor that publishes to ``bootstrap``."""
        for entry in list(self._entries.values()):
            session = entry.session
            if session is not None and session.bootstrap == bootstrap:
                session.fail(message)

    def cluster_outage(self, bootstrap: str, message: str | None) -> None:
        """Show (message) or clear (None) a Kafka outage on the processors it affects.

        They stay RUNNING: records are held and delivered when the cluster returns.
        """
        for entry in list(self._entries.values()):
            session = entry.session
            if session is not None and session.bootstrap == bootstrap:
                entry.state.change_if(frozenset({S.RUNNING}), S.RUNNING, message or "")

    def sensor_for(self, name: str) -> ProcessorSensor | None:
        """Metrics of an existing processor (None once deleted)."""
        return self._metrics.sensor(name) if name in self._entries else None

    def fail_collection(self, collection_id: str) -> None:
        """Fail running processors whose collection was deleted."""
        for entry in list(self._entries.values()):
            session = entry.session
            if session is not None and session.collection_id == collection_id:
                session.fail("Collection not found")

    def stop(self, name: str) -> None:
        """STARTING/RUNNING -> STOPPING -> STOPPED, within the configured stop timeout."""
        entry = self._entry(name)
        with entry.state.lock:
            if entry.state.status not in CAN_STOP:
                raise ResourceInUseException("Processor not available for stopping stream.")
            entry.state.change(S.STOPPING)
            session, entry.session = entry.session, None
        entry.desired = "STOPPED"
        self._store.save_desired(name, "STOPPED")
        if session is not None and not self._plane.halt(session):
            logger.warning("processor %s: source thread still blocked; abandoned", name)
        entry.state.change(S.STOPPED)

    # ---- describe / list / update --------------------------------------------------------
    def describe(self, name: str) -> tuple[ProcessorSpec, ProcessorState]:
        """Definition and state."""
        entry = self._entry(name)
        return entry.spec, entry.state

    def list(self, token: str | None, max_results: int | None
             ) -> tuple[list[tuple[str, str]], str | None]:
        """(name, status) pairs in name order, paginated."""
        after = decode_token("processors", token, str)
        limit = max_results or 1000
        with self._lock:
            names = sorted(n for n in self._entries if after is None or n > after)
            page = [(n, self._entries[n].state.status.value) for n in names[:limit]]
        more = len(names) > limit
        return page, encode_token("processors", page[-1][0]) if more else None

    def update(self, name: str, regions: list[dict[str, Any]] | None,
               data_sharing: bool | None, delete: list[str], connected_home: bool) -> None:
        """Apply UpdateStreamProcessor; a running processor picks up new regions at once."""
        if connected_home:
            raise InvalidParameterException(
                "SettingsForUpdate.ConnectedHomeForUpdate applies only to label detection "
                "processors; this is a face search processor")
        entry = self._entry(name)
        with entry.state.lock:
            if entry.state.status not in CAN_UPDATE:
                raise ResourceInUseException("Specified resource is in use.")
            changes: dict[str, Any] = {}
            if regions is not None:
                changes["regions"] = regions
            if "RegionsOfInterest" in delete:
                changes["regions"] = []
            if data_sharing is not None:
                changes["data_sharing"] = data_sharing
            entry.spec = entry.spec.with_updates(**changes)
            self._store.save_spec(name, entry.spec.to_dict())
            if entry.session is not None:
                entry.session.regions = list(entry.spec.regions)


def _check_emit_tag(tags: dict[str, str]) -> None:
    value = tags.get(EMIT_TAG)
    if value is not None and value not in ("frame", "track"):
        raise InvalidParameterException(f"Tag {EMIT_TAG} must be 'frame' or 'track'")
