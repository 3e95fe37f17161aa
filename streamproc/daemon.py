"""Composition root: builds every component, wires them, starts and stops them in order."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streamproc.api.auth import SigV4Verifier
from streamproc.api.collection_handlers import HANDLERS, Services
from streamproc.api.images import ImageLoader
from streamproc.api.job_handlers import JOB_HANDLERS
from streamproc.api.processor_handlers import PROCESSOR_HANDLERS
from streamproc.api.server import HttpServer
from streamproc.api.tag_handlers import TAG_HANDLERS, Tagging
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.validate import ServiceSpec
from streamproc.collections.images import ImageService
from streamproc.collections.service import CollectionService
from streamproc.config import Config
from streamproc.dataplane.background import BackgroundFeed
from streamproc.dataplane.jobrun import JobSettings
from streamproc.dataplane.jobworker import JobRunner
from streamproc.dataplane.plane import DataPlane
from streamproc.dataplane.publish import Publisher, kafka_publisher
from streamproc.faces.engine import FaceEngine
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.scheduler import JobScheduler, SchedulerSettings
from streamproc.jobs.service import JobService
from streamproc.metrics import (
    ApiMetrics,
    JobMetrics,
    NoticeSensor,
    ProcessorMetrics,
    PublisherMetrics,
    StageMetrics,
)
from streamproc.processors.kinds import FaceSearchKind, ProcessorKind
from streamproc.processors.mailbox import Mailbox, MailboxEvents
from streamproc.processors.reconciler import Hooks, Reconciler, ReconcilerSettings
from streamproc.processors.registry import ProcessorRegistry
from streamproc.processors.service import ProcessorService
from streamproc.rekognition.constants import FACE_SEARCH
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.builder import IndexBuilder
from streamproc.storage.collections import CollectionStore
from streamproc.storage.db import Database
from streamproc.storage.index import IndexPolicy
from streamproc.storage.jobs import JobStore
from streamproc.storage.objects import ObjectStore
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.spool import Spool
from streamproc.storage.tags import TagStore
from streamproc.supervisor import RestartPolicy, Supervisor

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
        self.job_mailbox = JobMailbox()
        self.objects = ObjectStore(config.objects)
        self.scheduler: JobScheduler | None = None
        self.jobs: JobService | None = None

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
        if status == "ok" and any(s["state"] != "ok" for s in stages.values()):
            status = "degraded"
        return {"status": status, "stages": stages}

    def start(self) -> None:
        """Open storage, load the model pack, rebuild indexes, resume processors, serve."""
        engine = self.engine = FaceEngine(self.config.models)
        engine.load()
        self._db = Database(self.data_dir / "streamproc.db")
        self._db.open()
        self._builder = IndexBuilder()
        self._builder.start()
        store = self.store = self._collection_store()
        tags = TagStore(self._db)
        searcher = FaceSearcher(store, lambda: engine.identity, engine.scale)
        kinds: dict[str, ProcessorKind] = {FACE_SEARCH: FaceSearchKind(searcher)}
        pmetrics = ProcessorMetrics.create(self.registry)
        registry = ProcessorRegistry()
        self.processors = ProcessorService(registry, ProcessorStore(self._db), tags, kinds,
                                           pmetrics, self.config, self.mailbox.changed)
        spool = Spool(self.data_dir / "spool.db")
        publisher = kafka_publisher(self.config.kafka, spool,
                                    PublisherMetrics.create(self.registry),
                                    self.processors.sensor_for, MailboxEvents(self.mailbox))
        self._plane = DataPlane(self.config, engine, searcher, spool, publisher)
        self.reconciler = self._reconciler(registry, kinds, pmetrics)
        self.scheduler = self._jobs(searcher, publisher)
        collections = CollectionService(store, tags, engine, searcher, self.config,
                                        on_delete=self.mailbox.collection_gone)
        api = self._api(collections, ImageService(engine, searcher, self.config), tags)
        self._plane.start()
        self.processors.load()
        self.reconciler.start()
        self.scheduler.load()
        self.scheduler.start()
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
        hooks = Hooks(sensor=pmetrics.sensor, emit_mode=self.processors.emit_mode,
                      save_desired=self.processors.save_desired)
        return Reconciler(registry, self._plane, kinds, self.mailbox, settings, hooks)

    def _jobs(self, searcher: FaceSearcher, publisher: Publisher) -> JobScheduler:
        """Stored-video jobs: analysed as background work of the face-search stage."""
        assert self._db is not None and self._plane is not None and self.engine is not None
        cfg = self.config.jobs
        feed = BackgroundFeed()
        self._plane.stages[FACE_SEARCH].add_background(feed, cfg.batch_frames_beside_live)
        runner = JobRunner(self.objects, feed, searcher, JobSettings(
            sample_fps=cfg.sample_fps, max_video_bytes=cfg.max_video_bytes,
            max_duration_s=cfg.max_duration_s, frame_queue=cfg.frame_queue,
            decode_nice=cfg.decode_nice, embed_interval_s=cfg.embed_interval_s,
            scratch=self.data_dir / "scratch"),
            self.engine.face_model_version)
        runner.clean_scratch()
        metrics = JobMetrics.create(self.registry)
        notices = Notices(publisher, self.config.kafka.bootstrap, dict(cfg.notification_topics),
                          NoticeSensor(metrics))
        mailbox, store = self.job_mailbox, JobStore(self._db)
        self.jobs = JobService(store, self.objects, searcher, notices, cfg, mailbox.changed,
                               metrics)
        return JobScheduler(store, runner, mailbox, notices, searcher, metrics,
                            SchedulerSettings(workers=cfg.workers, max_attempts=cfg.max_attempts,
                                              retention_s=cfg.retention_s,
                                              max_matches=cfg.max_matches))

    def _supervise(self) -> Supervisor:
        assert self._plane is not None and self.reconciler is not None
        sup = self.config.supervision
        policy = RestartPolicy(sup.max_restarts, sup.window_s, sup.backoff_initial_s,
                               sup.backoff_max_s, sup.stuck_after_s)
        supervisor = Supervisor(policy, on_give_up=self._stage_gave_up,
                                metrics=StageMetrics.create(self.registry))
        for service in (*self._plane.services, self.reconciler, self.scheduler, self._builder):
            if service is not None:
                supervisor.watch(service)
        return supervisor

    def _stage_gave_up(self, stage: str, reason: str) -> None:
        # Runs on the supervisor's thread: only posts an event for the reconciler.
        if stage in _VITAL:
            self.mailbox.fail_all(reason)
            if stage == "analyzer":  # jobs' frames wait for the analyzer; notices do not
                self.job_mailbox.fail_all(reason)

    def _api(self, collections: CollectionService, images: ImageService,
             tags: TagStore) -> ControlApi:
        assert self.processors is not None and self.engine is not None
        processors = self.processors
        services = Services(collections=collections, images=images,
                            loader=ImageLoader(self.config.images, self.objects),
                            face_model_version=self.engine.face_model_version)
        tagging = Tagging(tags, lambda arn: processors.exists_arn(arn) or
                          collections.exists_arn(arn))
        handlers = {**_bind(HANDLERS, services), **_bind(PROCESSOR_HANDLERS, processors),
                    **_bind(TAG_HANDLERS, tagging), **_bind(JOB_HANDLERS, self.jobs)}
        server_cfg, auth = self.config.server, self.config.auth
        verifier = (SigV4Verifier(dict(auth.access_keys), auth.max_clock_skew_s)
                    if auth.enabled else None)
        limits = ApiLimits(server_cfg.max_request_bytes, server_cfg.max_concurrent_requests,
                           server_cfg.worker_threads)
        return ControlApi(ServiceSpec(), handlers, ApiMetrics.create(self.registry),
                          self.registry, limits, self.health, verifier)

    def _serve(self, api: ControlApi) -> None:
        server_cfg = self.config.server
        self._server = HttpServer(api.app(), server_cfg.host, server_cfg.port,
                                  server_cfg.shutdown_timeout_s,
                                  (server_cfg.tls_certfile, server_cfg.tls_keyfile))
        self._server.start()
        self._status = "ok"

    def stop(self) -> None:
        """Stop serving, stop processors (keeping desired state), flush outputs, close storage."""
        self._status = "stopping"
        if self._server is not None:
            self._server.stop(self.config.server.shutdown_timeout_s + 2.0)
        if self._supervisor is not None:
            self._supervisor.stop(2.0)
        if self.scheduler is not None:
            self.scheduler.stop(2.0)
        if self.reconciler is not None:
            self.reconciler.stop(2.0)
        if self._plane is not None:
            self._plane.stop()
        if self._builder is not None:
            self._builder.stop(2.0)
        if self._db is not None:
            self._db.close()
        logger.info("streamproc stopped")
