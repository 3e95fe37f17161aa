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
from streamproc.api.processor_handlers import PROCESSOR_HANDLERS, ProcessorServices
from streamproc.api.server import HttpServer
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.validate import ServiceSpec
from streamproc.collections.images import ImageService
from streamproc.collections.service import CollectionService
from streamproc.config import Config
from streamproc.dataplane.plane import DataPlane, PlaneEvents
from streamproc.faces.engine import FaceEngine
from streamproc.metrics import (
    ApiMetrics,
    InferenceMetrics,
    ProcessorMetrics,
    ProcessorSensor,
    PublisherMetrics,
)
from streamproc.processors.service import ProcessorService
from streamproc.storage.builder import IndexBuilder
from streamproc.storage.collections import CollectionStore
from streamproc.storage.db import Database
from streamproc.storage.index import IndexPolicy
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.spool import Spool
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)


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
        self.processors: ProcessorService | None = None
        self.engine: FaceEngine | None = None
        self.store: CollectionStore | None = None

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

    def health(self) -> dict[str, Any]:
        """What /health reports."""
        inference = (self.engine.provider_report()
                     if self.engine is not None and self._status != "starting" else None)
        return {"status": self._status, "inference": inference}

    def start(self) -> None:
        """Open storage, load the model pack, rebuild indexes, resume processors, serve."""
        self.engine = FaceEngine(self.config.models)
        self.engine.load()
        InferenceMetrics.create(self.registry).report(self.engine.provider_report())
        self._db = Database(self.data_dir / "streamproc.db")
        self._db.open()
        self._builder = IndexBuilder()
        self._builder.start()
        store = CollectionStore(self._db, self._builder, IndexPolicy(
            flat_max_elements=self.config.storage.flat_max_elements,
            nprobe=self.config.storage.ivf_nprobe,
            search_threads=self.config.storage.faiss_threads))
        store.load()
        self.store = store
        tags = TagStore(self._db)
        events = PlaneEvents(sensor_for=self._sensor_for, on_outage=self._cluster_outage,
                             on_unreachable=self._cluster_unreachable)
        self._plane = DataPlane(self.config, self.engine, store,
                                Spool(self.data_dir / "spool.db"),
                                PublisherMetrics.create(self.registry), events)
        self.processors = ProcessorService(
            ProcessorStore(self._db), tags, self._plane,
            ProcessorMetrics.create(self.registry), self.config)
        collections = CollectionService(store, tags, self.engine, self.config,
                                        on_delete=self.processors.fail_collection)
        services = Services(collections=collections,
                            images=ImageService(self.engine, self.config),
                            loader=ImageLoader(self.config.images),
                            face_model_version=self.engine.face_model_version)
        handlers = {**_bind(HANDLERS, services), **_bind(
            PROCESSOR_HANDLERS, ProcessorServices(self.processors, collections, tags))}
        server_cfg = self.config.server
        auth = self.config.auth
        verifier = (SigV4Verifier(dict(auth.access_keys), auth.max_clock_skew_s)
                    if auth.enabled else None)
        limits = ApiLimits(server_cfg.max_request_bytes, server_cfg.max_concurrent_requests,
                           server_cfg.worker_threads)
        api = ControlApi(ServiceSpec(), handlers, ApiMetrics.create(self.registry),
                         self.registry, limits, self.health, verifier)
        self._plane.start()
        self.processors.load()
        self._server = HttpServer(api.app(), server_cfg.host, server_cfg.port,
                                  server_cfg.shutdown_timeout_s,
                                  (server_cfg.tls_certfile, server_cfg.tls_keyfile))
        self._server.start()
        self._status = "ok"
        logger.info("streamproc listening on %s (pack %s, %d-d, %s)", self.endpoint,
                    self.engine.pack_name, self.engine.dim, ",".join(self.engine.providers))

    # The data plane reports through these; they forward to the processor service.
    def _cluster_unreachable(self, bootstrap: str, message: str) -> None:
        if self.processors is not None:
            self.processors.fail_cluster(bootstrap, message)

    def _cluster_outage(self, bootstrap: str, message: str | None) -> None:
        if self.processors is not None:
            self.processors.cluster_outage(bootstrap, message)

    def _sensor_for(self, name: str) -> ProcessorSensor | None:
        return self.processors.sensor_for(name) if self.processors is not None else None

    def stop(self) -> None:
        """Stop serving, stop processors (keeping desired state), flush Kafka, close storage."""
        self._status = "stopping"
        if self._server is not None:
            self._server.stop(self.config.server.shutdown_timeout_s + 2.0)
        if self.processors is not None:
            self.processors.shutdown()
        if self._plane is not None:
            self._plane.stop()
        if self._builder is not None:
            self._builder.stop(2.0)
        if self._db is not None:
            self._db.close()
        logger.info("streamproc stopped")
