"""Composition root: builds every component, wires them, starts and stops them in order."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streamproc.api.access import AccessControl
from streamproc.api.auth import SigV4Verifier
from streamproc.api.collection_handlers import HANDLERS, Services
from streamproc.api.exposure import check_exposure
from streamproc.api.images import ImageLoader
from streamproc.api.processor_handlers import PROCESSOR_HANDLERS
from streamproc.api.server import HttpServer
from streamproc.api.tag_handlers import TAG_HANDLERS, Tagging, tag_keys
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.user_handlers import USER_HANDLERS, UserApi
from streamproc.api.validate import ServiceSpec
from streamproc.collections.idempotency import Idempotency
from streamproc.collections.images import ImageService
from streamproc.collections.service import CollectionService
from streamproc.collections.user_search import UserSearchService
from streamproc.collections.users import UserService
from streamproc.config import Config
from streamproc.dataplane.allowlist import InputAllowlist
from streamproc.dataplane.plane import DataPlane
from streamproc.dataplane.publish import kafka_publisher
from streamproc.faces.engine import FaceEngine
from streamproc.ledger import Appliers, Ledger, LocalLedger
from streamproc.metrics import (
    ApiMetrics,
    InferenceMetrics,
    ProcessorMetrics,
    PublisherMetrics,
    StageMetrics,
)
from streamproc.processors.kinds import FaceSearchKind, ProcessorKind
from streamproc.processors.mailbox import Mailbox, MailboxEvents
from streamproc.processors.reconciler import Hooks, Reconciler, ReconcilerSettings
from streamproc.processors.registry import ProcessorRegistry
from streamproc.processors.rules import ProcessorRules
from streamproc.processors.service import ProcessorService
from streamproc.rekognition.constants import FACE_SEARCH, IDEMPOTENCY_WINDOW_S, Arns
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.builder import IndexBuilder
from streamproc.storage.collections import CollectionStore
from streamproc.storage.db import Database
from streamproc.storage.index import IndexPolicy
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.requests import RequestLog
from streamproc.storage.spool import Spool
from streamproc.storage.tags import TagStore
from streamproc.storage.users import UserStore
from streamproc.supervisor import HEALTHY, RestartPolicy, Supervisor

logger = logging.getLogger(__name__)
# Stages whose death past the restart budget leaves no processor able to run.
_VITAL = ("analyzer", "publisher")


def _bind(table: dict[str, Callable[..., Any]], services: Any) -> dict[str, Callable[..., Any]]:
    return {op: functools.partial(fn, services) for op, fn in table.items()}


class Daemon:
    """The whole server. ``start()`` loads models and state, then opens the API."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self._status = "starting"
        self._db: Database | None = None
        self._server: HttpServer | None = None
        self._plane: DataPlane | None = None
        self._builder: IndexBuilder | None = None
        self._supervisor: Supervisor | None = None
        self.reconciler: Reconciler | None = None
        self.processors: ProcessorService | None = None
        self.engine: FaceEngine | None = None
        self.store: CollectionStore | None = None
        self.mailbox = Mailbox()
        self.appliers = Appliers()
        self.ledger: Ledger | None = None
        # Set when the daemon cannot go on (its control loop is gone for good): `serve`
        # then stops it and exits non-zero, so a service manager restarts it.
        self.fatal = threading.Event()
        self.fatal_reason = ""
        self._api_metrics = ApiMetrics.create(self.registry)
        self.access: AccessControl | None = None

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

    def health(self) -> dict[str, Any]:
        """What /health reports: overall status and each supervised stage."""
        stages = self._supervisor.report() if self._supervisor is not None else {}
        status = self._status
        if status == "ok" and any(s["state"] not in HEALTHY for s in stages.values()):
            status = "degraded"
        inference = (self.engine.provider_report()
                     if self.engine is not None and self._status != "starting" else None)
        sessions = self._plane.session_report() if self._plane is not None else {}
        return {"status": status, "stages": stages, "sessions": sessions,
                "inference": inference}

    def start(self) -> None:
        """Check exposure and access files, load the pack, open storage, resume, serve.

        Raises ``ExposureError`` or ``PolicyError`` before any heavy work when the
        configuration would be unsafe or its policy file is malformed.
        """
        check_exposure(self.config)
        if self.config.auth.enabled:
            server = self.config.server
            self.access = AccessControl(self.config.auth, Arns(server.region, server.account_id),
                                        self._api_metrics)
            self.access.load()
        engine = self.engine = FaceEngine(self.config.models)
        engine.load()
        InferenceMetrics.create(self.registry).report(engine.provider_report())
        self._db = Database(self.data_dir / "streamproc.db")
        self._db.open()
        self._builder = IndexBuilder()
        self._builder.start()
        store = self.store = self._collection_store()
        requests = RequestLog(self._db, IDEMPOTENCY_WINDOW_S)
        users = UserStore(self._db, store, requests)
        users.load()
        tags = TagStore(self._db)
        searcher = FaceSearcher(store, lambda: engine.identity, engine.scale, users)
        kinds: dict[str, ProcessorKind] = {FACE_SEARCH: FaceSearchKind(searcher)}
        pmetrics = ProcessorMetrics.create(self.registry)
        registry = ProcessorRegistry()
        # One allowlist for every path that opens media (API, sources, stored-video jobs).
        self.inputs = InputAllowlist(self.config.inputs, [self.config.images.s3_local_root])
        rules = ProcessorRules(registry, ProcessorStore(self._db), tags, kinds, pmetrics,
                               self.config, self.mailbox.changed)
        rules.register(self.appliers)
        self.ledger = LocalLedger(self.appliers)
        self.processors = ProcessorService(registry, self.ledger, tags, pmetrics, self.config,
                                           self.inputs)
        spool = Spool(self.data_dir / "spool.db")
        publisher = kafka_publisher(self.config.kafka, spool,
                                    PublisherMetrics.create(self.registry),
                                    self.processors.sensor_for, MailboxEvents(self.mailbox))
        self._plane = DataPlane(self.config, engine, searcher, spool, publisher, self.inputs)
        self.reconciler = self._reconciler(registry, kinds, pmetrics)
        collections = CollectionService(store, tags, engine, searcher, self.config,
                                        on_delete=self.mailbox.collection_gone)
        user_api = UserApi(
            UserService(users, store, searcher, Idempotency(requests), self.config),
            UserSearchService(users, store, searcher, engine, self.config),
            ImageLoader(self.config.images), engine.face_model_version)
        api = self._api(collections, ImageService(engine, searcher, self.config), tags,
                        user_api)
        self._plane.start()
        rules.load()
        self.reconciler.start()
        self._supervisor = self._supervise()
        self._supervisor.start()
        self._serve(api)
        logger.info("streamproc listening on %s (pack %s, %d-d, %s)", self.endpoint,
                    engine.pack_name, engine.dim, ",".join(engine.providers))

    def _collection_store(self) -> CollectionStore:
        assert self._db is not None
        storage = self.config.storage
        store = CollectionStore(self._db, self._builder, IndexPolicy(
            flat_max_elements=storage.flat_max_elements, nprobe=storage.ivf_nprobe,
            search_threads=storage.faiss_threads))
        store.load()
        return store

    def _reconciler(self, registry: ProcessorRegistry, kinds: dict[str, ProcessorKind],
                    pmetrics: ProcessorMetrics) -> Reconciler:
        assert self.processors is not None and self._plane is not None
        p, sup = self.config.processors, self.config.supervision
        settings = ReconcilerSettings(
            stop_timeout_s=p.stop_timeout_s, video_streams=dict(p.video_streams),
            default_destination=self.config.kafka.bootstrap, frame_queue=p.frame_queue,
            max_restarts=sup.max_restarts, restart_window_s=sup.window_s,
            restart_delay_s=sup.backoff_initial_s)
        hooks = Hooks(sensor=pmetrics.sensor, emit_mode=self.processors.emit_mode)
        return Reconciler(registry, self._plane, kinds, self.mailbox, self.ledger, settings,
                          hooks)

    def _supervise(self) -> Supervisor:
        assert self._plane is not None and self.reconciler is not None
        sup = self.config.supervision
        policy = RestartPolicy(sup.max_restarts, sup.window_s, sup.backoff_initial_s,
                               sup.backoff_max_s, sup.stuck_after_s)
        supervisor = Supervisor(policy, on_give_up=self._stage_gave_up,
                                metrics=StageMetrics.create(self.registry))
        for service in (*self._plane.services, self.reconciler, self._builder):
            if service is not None:
                supervisor.watch(service)
        return supervisor

    def _stage_gave_up(self, stage: str, reason: str) -> None:
        # Runs on the supervisor's thread: only posts an event (for the reconciler, or,
        # when the reconciler itself is gone, for whoever runs the daemon).
        if stage in _VITAL:
            self.mailbox.fail_all(reason)
        elif stage == "reconciler":
            self.fatal_reason = reason
            self.fatal.set()

    def _api(self, collections: CollectionService, images: ImageService,
             tags: TagStore, users: UserApi) -> ControlApi:
        assert self.processors is not None and self.engine is not None
        processors = self.processors
        services = Services(collections=collections, images=images,
                            loader=ImageLoader(self.config.images),
                            face_model_version=self.engine.face_model_version)
        server_cfg, access = self.config.server, self.access
        arns = Arns(server_cfg.region, server_cfg.account_id)
        tagging = Tagging(tags, tag_keys(arns, collections, processors))
        handlers = {**_bind(HANDLERS, services), **_bind(PROCESSOR_HANDLERS, processors),
                    **_bind(TAG_HANDLERS, tagging), **_bind(USER_HANDLERS, users)}
        verifier = (SigV4Verifier(access.secret, self.config.auth.max_clock_skew_s)
                    if access is not None else None)
        limits = ApiLimits(server_cfg.max_request_bytes, server_cfg.max_concurrent_requests,
                           server_cfg.worker_threads)
        return ControlApi(ServiceSpec(), handlers, self._api_metrics, self.registry, limits,
                          self.health, arns, verifier, access)

    def reload_access(self) -> bool:
        """Re-read access keys and policies (SIGHUP); False (old ones kept) on error."""
        if self.access is None:
            logger.info("reload: authentication is off; nothing to reload")
            return False
        return self.access.reload()

    def _serve(self, api: ControlApi) -> None:
        server_cfg = self.config.server
        self._server = HttpServer(api.app(), server_cfg.host, server_cfg.port,
                                  server_cfg.shutdown_timeout_s,
                                  (server_cfg.tls_certfile, server_cfg.tls_keyfile))
        self._server.start()
        self._status = "ok"

    def stop(self) -> None:
        """Stop serving, stop processors (keeping desired state), flush outputs, close storage.

        Every step runs even if an earlier one raised, so one stuck or broken component
        cannot keep the spool from being written or the database from being closed.
        """
        self._status = "stopping"
        server_timeout = self.config.server.shutdown_timeout_s + 2.0
        steps: list[tuple[str, Callable[[], object] | None]] = [
            ("API server", self._server and (lambda: self._server.stop(server_timeout))),
            ("supervisor", self._supervisor and (lambda: self._supervisor.stop(2.0))),
            ("reconciler", self.reconciler and (lambda: self.reconciler.stop(2.0))),
            ("data plane", self._plane and self._plane.stop),
            ("index builder", self._builder and (lambda: self._builder.stop(2.0))),
            ("database", self._db and self._db.close),
        ]
        for what, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception:
                logger.exception("stopping the %s failed; going on with the rest", what)
        logger.info("streamproc stopped")
