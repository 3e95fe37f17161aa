"""The daemon: starts its parts in order, reports its health, stops in reverse order."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streamproc.api.access import AccessControl
from streamproc.api.exposure import ExposureError, check_bound, check_exposure
from streamproc.api.peers import ConnectionLimits
from streamproc.api.server import ConnectionTimeouts, HttpServer
from streamproc.celebrities.catalog import load_catalog
from streamproc.cluster.node import ClusterNode
from streamproc.config import Config
from streamproc.console import (
    check_crop_bucket,
    console_extensions,
    console_routes,
    face_crops,
)
from streamproc.console.extension import Extension
from streamproc.daemon.jobs import Jobs, Labels, Moderation, Persons, build_jobs
from streamproc.daemon.labels import label_detector
from streamproc.daemon.parts import (
    ApiHooks,
    Domain,
    Storage,
    Training,
    build_api,
    build_domain,
    open_storage,
    record_owners,
)
from streamproc.daemon.training import TrainingRunner
from streamproc.daemon.versions import LOCAL_NODE, backbone_of, build_runner, serving_of
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.output.publish import kafka_publisher
from streamproc.dataplane.plane import DataPlane
from streamproc.dataplane.stored.label_stage import LABELS, LabelStage
from streamproc.dataplane.stored.moderation_stage import ModerationStage
from streamproc.dataplane.stored.person_stage import PERSONS, PersonStage
from streamproc.dataplane.stored.stages import MODERATION
from streamproc.faces.engine import FaceEngine
from streamproc.jobs.parts import JobHooks
from streamproc.labels.types import LabelDetector
from streamproc.ledger import Appliers, Ledger, LocalLedger
from streamproc.metrics import ApiMetrics, InferenceMetrics, PublisherMetrics, StageMetrics
from streamproc.moderation.engine import ModerationEngine
from streamproc.processors.mailbox import Mailbox, MailboxEvents
from streamproc.processors.reconciler import Hooks, Reconciler, ReconcilerSettings
from streamproc.processors.registry import Desired
from streamproc.processors.state import ProcessorStatus
from streamproc.rekognition.constants import Arns
from streamproc.storage.crop_objects import SharedCropStore
from streamproc.storage.objects import ObjectStore
from streamproc.storage.spool import Spool
from streamproc.supervisor import HEALTHY, RestartPolicy, Supervisor

logger = logging.getLogger(__name__)
# What a shared stage past its restart budget leads to, on a single daemon and on a cluster
# node (docs/stream-processors.md, "Supervision and health"); the one place this is decided:
# "fail processors" (and "... and jobs", whose frames the analyzer analyses): nothing here
# can run them, so they FAIL with the reason. "leave": other nodes can run them (or this one
# after its restart), and a member that stayed would fail every share placement gives it,
# so the node stops taking work and exits. "exit": the daemon cannot go on; `serve` stops
# it and exits 1. "fail jobs": the moderation stage analyses job images only (the job
# mailbox fails every running job: it knows no stage). Other stages (jobs scheduler, index
# builder) stay down, shown in /health.
_FAIL, _FAIL_ALL, _FAIL_JOBS, _LEAVE, _EXIT = (
    "fail processors", "fail processors and jobs", "fail jobs", "leave", "exit")
_ON_GIVE_UP: dict[str, dict[str, str]] = {
    "analyzer": {"single": _FAIL_ALL, "cluster": _LEAVE},
    "moderation": {"single": _FAIL_JOBS, "cluster": _LEAVE},
    LABELS: {"single": _FAIL_JOBS, "cluster": _LEAVE},  # job frames only, as moderation
    PERSONS: {"single": _FAIL_JOBS, "cluster": _LEAVE},  # job frames only, as moderation
    "publisher": {"single": _FAIL, "cluster": _LEAVE},
    "reconciler": {"single": _EXIT, "cluster": _EXIT},
    "ledger": {"single": _EXIT, "cluster": _EXIT},
    "placement": {"single": _EXIT, "cluster": _EXIT},
}


def default_node_id(host: str, port: int) -> str:
    """host:port, with the machine's name for a wildcard address (every host has that one)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        host = socket.gethostname()
    return f"{host}:{port}"


class Daemon:
    """The whole server. ``start()`` loads models and state, then opens the API."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self._status = "starting"
        self._server: HttpServer | None = None
        self._plane: DataPlane | None = None
        self._console_parts: list[Extension] = []  # closed at stop, before the API server
        self._crops: Any = None  # the face crop store: its writer is stopped after the server
        self._supervisor: Supervisor | None = None
        self.storage: Storage | None = None
        self.domain: Domain | None = None
        self.cluster: ClusterNode | None = None
        self.reconciler: Reconciler | None = None
        self.engine: FaceEngine | None = None
        # The moderation pack and its job stage (DetectModerationLabels, moderation jobs).
        self.moderation_engine: ModerationEngine | None = None
        self.moderation: Moderation | None = None
        # The label pack (DetectLabels, label jobs); None when none is installed.
        self.labels: LabelDetector | None = None
        self.mailbox = Mailbox()
        self.objects = ObjectStore(config.objects)
        self.jobs: Jobs | None = None
        self.appliers = Appliers()
        self.ledger: Ledger | None = None
        # Set when the daemon cannot go on (a stage it needs is gone for good, see
        # _ON_GIVE_UP): `serve` then stops it and exits 1, so a service manager restarts it.
        self.fatal = threading.Event()
        self.fatal_reason = ""
        self._api_metrics = ApiMetrics.create(self.registry)
        self.access: AccessControl | None = None
        self.training: TrainingRunner | None = None  # trains project versions

    # ---- what others read ------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The expanded data directory."""
        return Path(self.config.storage.data_dir).expanduser()

    @property
    def port(self) -> int:
        """The API port actually bound."""
        assert self._server is not None
        return self._server.port

    @property
    def endpoint(self) -> str:
        """Base URL of the API."""
        scheme = "https" if self.config.server.tls_certfile else "http"
        return f"{scheme}://{self.config.server.host}:{self.port}"

    @property
    def plane(self) -> DataPlane:
        """The data plane (started)."""
        assert self._plane is not None
        return self._plane

    @property
    def processors(self) -> Any:
        """The processors' API service."""
        return self.domain.processors if self.domain is not None else None

    def health(self) -> dict[str, Any]:
        """What /health reports: overall status and each supervised stage."""
        stages = self._supervisor.report() if self._supervisor is not None else {}
        if isinstance(self._crops, SharedCropStore):  # the bucket's writer, a thread of ours
            stages["face-crop-writer"] = self._crops.report()
        status = self._status
        if status == "ok" and any(s["state"] not in HEALTHY for s in stages.values()):
            status = "degraded"
        inference = (self.engine.provider_report()
                     if self.engine is not None and self._status != "starting" else None)
        sessions = self._plane.session_report() if self._plane is not None else {}
        destinations = self._plane.publisher.report() if self._plane is not None else {}
        return {"status": status, "stages": stages, "sessions": sessions,
                "inference": inference, "destinations": destinations}

    # ---- starting ----------------------------------------------------------------------------
    def start(self) -> None:
        """Check exposure and access, load the pack, open storage, [join], resume, serve.

        Raises ``ExposureError``, ``PolicyError`` or ``CatalogError`` before any heavy work
        when the configuration would be unsafe or its policy file or celebrity catalog is
        malformed, and ``ClusterError`` when a cluster node cannot join.
        """
        self._status = "starting"  # (also when a stopped daemon object starts again)
        self.fatal.clear()
        self.fatal_reason = ""
        self._check_access()
        catalog = load_catalog(self.config.celebrities.catalog)  # CatalogError: no start
        engine = self.engine = FaceEngine(self.config.models)
        engine.load()
        InferenceMetrics.create(self.registry).report(engine.provider_report())
        moderation_engine = self.moderation_engine = self._load_moderation()
        labels = self.labels = self._label_pack()
        storage = self.storage = open_storage(self.config, self.data_dir)
        self._server = self._bind()
        ledger = self.ledger = self._ledger(storage)
        domain = self.domain = build_domain(self.config, engine, storage, ledger,
                                            self.appliers, self.mailbox, self.registry)
        self._plane = self._build_plane(engine, domain)
        moderation = self.moderation = self._moderation_stage(moderation_engine, self._plane)
        label_jobs = self._label_stage(labels, self._plane)
        persons = self._person_stage(labels, engine, self._plane)
        self.reconciler = self._build_reconciler(domain)
        jobs = self.jobs = build_jobs(
            self.config, engine.face_model_version, storage.db, domain.searcher, self._plane,
            self._plane.publisher, self.objects, self.registry, self.data_dir, ledger,
            self.appliers,
            JobHooks(self.cluster.jobs_here) if self.cluster is not None else JobHooks(),
            moderation, label_jobs, storage.users, catalog, persons=persons)
        self._plane.start()
        domain.processor_rules.load()
        if self.cluster is not None:
            self.cluster.join(engine.identity, lambda: [
                i for i in map(storage.collections.get, storage.collections.list_ids())
                if i is not None])
        self.reconciler.start()
        jobs.scheduler.load()
        jobs.scheduler.start()
        self._supervisor = self._supervise()
        self._supervisor.start()
        training = self._training(storage, moderation_engine, ledger)
        address = self._server.address or ""
        crops = self._crops = face_crops(self.config, self.data_dir, address,
                                         self._api_metrics.console_crops_dropped.inc)
        api = build_api(self.config, engine, domain, storage, ledger, jobs, self.objects,
                        ApiHooks(
            self.health, self._cluster_report if self.cluster else None, self._api_metrics,
            self.registry, self.access), moderation, training, crops, labels)
        plane, processors = self._plane, domain.registry

        def collection_of(name: str) -> str | None:
            entry = processors.get(name)
            return None if entry is None else entry.spec.collection_id

        def extensions() -> tuple[Extension, ...]:
            parts = console_extensions(self.config, plane, collection_of, jobs.service,
                                       self.objects, self.registry, api)
            self._console_parts = list(parts)
            return parts

        self._server.serve(api.app(console_routes(self.config, api, self.access, address,
                                                  crops, extensions)))
        self._status = "ok"
        logger.info("streamproc listening on %s (pack %s, %d-d, %s)", self.endpoint,
                    engine.pack_name, engine.dim, ",".join(engine.providers))

    def _training(self, storage: Storage, moderation: ModerationEngine,
                  ledger: Ledger) -> Training:
        """Start the training runner (it loads the backbone; versions left training resume)."""
        node = self.cluster.node_id if self.cluster is not None else LOCAL_NODE
        serving = serving_of(self.config, moderation)  # one backbone for both
        # The data plane (built before this) is what training yields the CPU to.
        runner = self.training = build_runner(self.config, storage.versions, storage.datasets,
                                              self.objects, moderation, ledger, node, serving,
                                              live=self._plane)
        runner.start()
        return Training(node, runner.wake, backbone_of(self.config), serving)

    def _load_moderation(self) -> ModerationEngine:
        """The moderation pack, loaded (raises ModerationModelError with its one line)."""
        moderation = ModerationEngine(self.config.moderation, self.config.models)
        moderation.load()
        # Each model's licence is logged at load; a copyleft one again where it is enabled,
        # at a level that every log level but errors shows.
        for file in moderation.files:
            if "AGPL" in file.licence.upper():
                logger.warning("moderation pack %s enables %s (%s), licensed %s",
                               moderation.pack, file.name, file.provenance, file.licence)
        return moderation

    def _moderation_stage(self, engine: ModerationEngine, plane: DataPlane) -> Moderation:
        """The moderation stage, a background stage of the plane (started, supervised there)."""
        stage = ModerationStage(engine, self.config.jobs.moderation_batch, plane)
        plane.add_background_stage(MODERATION, stage)
        return Moderation(engine, stage)

    def _label_pack(self) -> LabelDetector | None:
        """The label pack, loaded once for DetectLabels, label jobs and person tracking.

        None: not installed. A method, so a test can give a daemon a fake pack.
        """
        return label_detector(self.config)

    def _label_stage(self, detector: LabelDetector | None, plane: DataPlane) -> Labels:
        """The label stage, a background stage of the plane only where there is a pack.

        Without one the kind refuses every Start and launch, so the stage would see no frame:
        it is not started, and /health does not list it.
        """
        stage = LabelStage(detector, self.config.jobs.label_batch, plane,
                           classifier_interval_s=self.config.jobs.label_classifier_interval_s)
        if detector is not None:
            plane.add_background_stage(LABELS, stage)
        return Labels(detector, stage)

    def _person_stage(self, detector: LabelDetector | None, engine: FaceEngine,
                      plane: DataPlane) -> Persons:
        """The person stage, a background stage of the plane (started, supervised there).

        No pack: the stage is never started (nor shown in /health), as the kind refuses
        every Start and launch without one, so no frame reaches it.
        """
        stage = PersonStage(detector, engine, self.config.jobs.person_tracking.batch, plane)
        if detector is not None:
            plane.add_background_stage(PERSONS, stage)
        return Persons(detector, stage)

    def _check_access(self) -> None:
        check_exposure(self.config)
        check_crop_bucket(self.config)  # CropBucketExposed (exit 2) before any heavy work
        if self.config.auth.enabled:
            server = self.config.server
            arns = Arns(server.region, server.account_id, self.config.celebrities.gallery)
            self.access = AccessControl(self.config.auth, arns, self._api_metrics)
            self.access.load()

    def _bind(self) -> HttpServer:
        server = self.config.server
        http = HttpServer(None, server.host, server.port, server.shutdown_timeout_s,
                          ConnectionTimeouts(server.header_timeout_s, server.body_timeout_s,
                                             server.keep_alive_s),
                          (server.tls_certfile, server.tls_keyfile),
                          self._api_metrics.connections_cut,
                          ConnectionLimits(server.max_connections,
                                           server.max_connections_per_client))
        http.bind()  # a cluster node is named after its address, before it serves
        try:
            check_bound(self.config, http.address or "")
        except ExposureError:
            http.stop(0.1)
            raise
        return http

    def _ledger(self, storage: Storage) -> Ledger:
        if not self.config.cluster.bootstrap:
            return LocalLedger(self.appliers)
        assert self._server is not None
        node_id = self.config.cluster.node_id or default_node_id(self.config.server.host,
                                                                 self.port)
        self.cluster = ClusterNode(self.config, self.appliers, storage.db, node_id,
                                   self.endpoint, self._placement_order, self.registry,
                                   self.mailbox.poke)
        self.cluster.prepare()
        return self.cluster.ledger

    def _placement_order(self) -> list[str]:
        """The processors to place, in creation order.

        Those that should run, and those still stopping: whoever they are placed on answers
        for their stop.
        """
        assert self.domain is not None
        entries = [e for e in self.domain.registry.entries()
                   if e.desired is Desired.RUNNING or e.state.status is ProcessorStatus.STOPPING]
        return [e.spec.name for e in sorted(entries, key=lambda e: (e.spec.created,
                                                                     e.spec.name))]

    def _build_plane(self, engine: FaceEngine, domain: Domain) -> DataPlane:
        assert self.storage is not None
        spool = Spool(self.data_dir / "spool.db")
        publisher = kafka_publisher(self.config.kafka, spool,
                                    PublisherMetrics.create(self.registry),
                                    domain.processors.sensor_for, MailboxEvents(self.mailbox),
                                    owner_exists=record_owners(domain, self.storage))
        return DataPlane(self.config, engine, domain.searcher, spool, publisher,
                         domain.inputs)

    def _build_reconciler(self, domain: Domain) -> Reconciler:
        assert self._plane is not None and self.ledger is not None
        p, sup = self.config.processors, self.config.supervision
        settings = ReconcilerSettings(
            stop_timeout_s=p.stop_timeout_s, video_streams=dict(p.video_streams),
            default_destination=self.config.kafka.bootstrap, frame_queue=p.frame_queue,
            max_restarts=sup.max_restarts, restart_window_s=sup.window_s,
            restart_delay_s=sup.backoff_initial_s,
            # A node that has not heard of a move stops within its fencing allowance (one
            # session timeout) plus the stop timeout: the longest a handover waits.
            handover_wait_s=self.config.cluster.session_timeout_s + p.stop_timeout_s,
            outputs=OutputAllowlist.for_config(self.config))
        hooks = Hooks(sensor=domain.metrics.sensor, emit_mode=domain.processors.emit_mode)
        if self.cluster is not None:
            hooks = dataclasses.replace(hooks, placement=self.cluster.owns,
                                        members=self.cluster.live_members)
        return Reconciler(domain.registry, self._plane, domain.kinds, self.mailbox,
                          self.ledger, settings, hooks)

    def _supervise(self) -> Supervisor:
        assert self._plane is not None and self.reconciler is not None
        assert self.storage is not None
        sup = self.config.supervision
        policy = RestartPolicy(sup.max_restarts, sup.window_s, sup.backoff_initial_s,
                               sup.backoff_max_s, sup.stuck_after_s)
        supervisor = Supervisor(policy, on_give_up=self._stage_gave_up,
                                metrics=StageMetrics.create(self.registry))
        cluster = self.cluster.services if self.cluster is not None else []
        jobs = [self.jobs.scheduler] if self.jobs is not None else []
        for service in (*self._plane.services, self.reconciler, *jobs, self.storage.builder,
                        *cluster):
            supervisor.watch(service)
        return supervisor

    def _stage_gave_up(self, stage: str, reason: str) -> None:
        # Runs on the supervisor's thread: only posts events and asks threads to stop (for
        # the reconciler, or, when it or the cluster's log is gone, for whoever runs `serve`).
        action = _ON_GIVE_UP.get(stage, {}).get(
            "cluster" if self.cluster is not None else "single")
        if action == _LEAVE:
            self._leave(f"{reason}; leaving the cluster to the other nodes")
        elif action in (_FAIL, _FAIL_ALL):
            self.mailbox.fail_all(reason)
            if action == _FAIL_ALL and self.jobs is not None:
                self.jobs.mailbox.fail_all(reason)
        elif action == _FAIL_JOBS and self.jobs is not None:
            self.jobs.mailbox.fail_all(reason)
        elif action == _EXIT:
            self._exit(reason)

    def _exit(self, reason: str) -> None:
        """Have `serve` stop the daemon and exit 1; the first reason is the one reported."""
        if not self.fatal.is_set():
            self.fatal_reason = reason
            self.fatal.set()

    def _leave(self, reason: str) -> None:
        """Stop taking work at once, then have `serve` stop the daemon and exit.

        No new launch or claim in between: each would cost a job an attempt or a processor
        a handover.
        """
        loops = (None if self.jobs is None else self.jobs.scheduler, self.reconciler)
        for loop in loops:
            if loop is not None:
                loop.request_stop()  # only a flag; their stop() halts what runs
        self._exit(reason)

    def _cluster_report(self) -> dict[str, Any]:
        assert self.cluster is not None and self.reconciler is not None
        assert self.jobs is not None
        return {**self.cluster.report(self.reconciler.running_names),
                "jobs_running": self.jobs.service.running_on()}

    def reload_access(self) -> bool:
        """Re-read access keys and policies (SIGHUP); False (old ones kept) on error."""
        if self.access is None:
            logger.info("reload: authentication is off; nothing to reload")
            return False
        return self.access.reload()

    # ---- stopping ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving, stop processors (keeping desired state), flush outputs, close storage.

        Every step runs even if an earlier one raised, so one stuck or broken component
        cannot keep the spool from being written or the database from being closed. A
        cluster node leaves its group right after its processors stopped, so the others
        take them over at once. A second call does nothing.
        """
        if self._status in ("stopping", "stopped"):
            return
        self._status = "stopping"
        timeout = self.config.server.shutdown_timeout_s + 2.0
        for what, step in self._stop_steps(timeout):
            try:
                step()
            except Exception:
                logger.exception("stopping the %s failed; going on with the rest", what)
        self._status = "stopped"
        logger.info("streamproc stopped")

    def _stop_steps(self, server_timeout: float) -> list[tuple[str, Callable[[], object]]]:
        """The shutdown steps, in order, for the parts this daemon built."""
        server, supervisor, jobs, training = self._server, self._supervisor, self.jobs, \
            self.training
        reconciler, plane, cluster, storage = self.reconciler, self._plane, self.cluster, \
            self.storage
        crops = self._crops
        steps: list[tuple[str, Callable[[], object] | None]] = [
            # Open live feeds end first (event: end, reason "shutdown"), so no SSE stream
            # holds the API server's graceful shutdown for server.shutdown_timeout_s.
            ("live feeds", None if plane is None else plane.close_tap),
            # Job frames stop their copies and decodes (a worker thread could hold the exit).
            *((f"console part {type(part).__name__}", part.close)
              for part in self._console_parts),
            ("API server", None if server is None else (lambda: server.stop(server_timeout))),
            ("face crop writer", None if crops is None else (lambda: crops.stop(5.0))),
            ("supervisor", None if supervisor is None else (lambda: supervisor.stop(2.0))),
            # A training in hand stops at its next batch, unrecorded: retrained on restart.
            ("training runner", None if training is None else (lambda: training.stop(5.0))),
            ("job scheduler", None if jobs is None else (lambda: jobs.scheduler.stop(2.0))),
            ("reconciler", None if reconciler is None else (lambda: reconciler.stop(2.0))),
            # Records are flushed before the group hears that this node left, so the next
            # runner's records follow this node's for every processor it hands over (unless
            # the publisher gave up: what it held then waits in the spool for the restart).
            ("data plane", None if plane is None else plane.stop),
            ("cluster membership", None if cluster is None else cluster.stop),
            ("index builder", None if storage is None else (lambda: storage.builder.stop(2.0))),
            ("database", None if storage is None else storage.db.close),
        ]
        return [(what, step) for what, step in steps if step is not None]
