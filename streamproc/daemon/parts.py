"""The daemon's parts, built in groups: storage, the domain services, the data plane, the API.

Each builder only constructs and wires (no thread starts here); :mod:`streamproc.daemon.core`
decides the order things start and stop in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streamproc.api.access import AccessControl
from streamproc.api.auth import SigV4Verifier
from streamproc.api.celebrity_handlers import CELEBRITY_HANDLERS, CelebrityApi
from streamproc.api.collection_handlers import HANDLERS, Services
from streamproc.api.custom_labels_handlers import CUSTOM_LABELS_HANDLERS, CustomLabelsApi
from streamproc.api.images import ImageLoader
from streamproc.api.intake import BodyLimits
from streamproc.api.job_handlers import job_handlers
from streamproc.api.job_kinds.base import WireJobKind
from streamproc.api.label_handlers import LABEL_HANDLERS, LabelApi
from streamproc.api.moderation_handlers import MODERATION_HANDLERS, ModerationApi
from streamproc.api.processor_handlers import PROCESSOR_HANDLERS
from streamproc.api.project_handlers import PROJECT_HANDLERS, ProjectApi
from streamproc.api.tag_handlers import TAG_HANDLERS
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.user_handlers import USER_HANDLERS, UserApi
from streamproc.api.validate import ServiceSpec
from streamproc.celebrities.service import CelebrityService
from streamproc.collections.idempotency import Idempotency
from streamproc.collections.images import ImageService
from streamproc.collections.rules import CollectionRules
from streamproc.collections.service import CollectionService
from streamproc.collections.user_rules import UserRules
from streamproc.collections.user_search import UserSearchService
from streamproc.collections.users import UserService
from streamproc.config import Config
from streamproc.daemon.jobs import Jobs, Moderation
from streamproc.daemon.versions import LOCAL_NODE, Serving
from streamproc.dataplane.guard.allowlist import InputAllowlist
from streamproc.faces.engine import FaceEngine
from streamproc.labels.service import LabelService
from streamproc.labels.types import LabelDetector
from streamproc.ledger import Appliers, Ledger
from streamproc.metrics import ApiMetrics, ProcessorMetrics
from streamproc.moderation.service import ModerationService
from streamproc.processors.kinds import FaceSearchKind, ProcessorKind
from streamproc.processors.mailbox import Mailbox
from streamproc.processors.registry import ProcessorRegistry
from streamproc.processors.rules import ProcessorRules
from streamproc.processors.service import ProcessorService
from streamproc.projects.dataset_rules import DatasetRules
from streamproc.projects.dataset_service import DatasetService
from streamproc.projects.rules import ProjectRules
from streamproc.projects.service import ProjectService
from streamproc.projects.types import Project
from streamproc.projects.versions import stale_window_ms
from streamproc.projects.versions_rules import VersionRules
from streamproc.projects.versions_service import VersionService
from streamproc.projects.versions_serving import VersionModels
from streamproc.rekognition.constants import FACE_SEARCH, IDEMPOTENCY_WINDOW_S, Arns
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.builder import IndexBuilder
from streamproc.storage.collections import CollectionStore
from streamproc.storage.crops import Crops
from streamproc.storage.datasets import DatasetStore
from streamproc.storage.db import Database
from streamproc.storage.index import IndexPolicy
from streamproc.storage.jobs import JobStore
from streamproc.storage.objects import ObjectStore
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.projects import ProjectStore
from streamproc.storage.requests import RequestLog
from streamproc.storage.tags import TagStore
from streamproc.storage.users import UserStore
from streamproc.storage.versions import VersionStore
from streamproc.tags.rules import TagKeys, TagRules
from streamproc.tags.service import TagService


@dataclass
class Storage:
    """Everything kept on disk, loaded into memory."""

    db: Database
    builder: IndexBuilder
    collections: CollectionStore
    users: UserStore
    requests: RequestLog
    tags: TagStore
    processors: ProcessorStore
    projects: ProjectStore
    datasets: DatasetStore
    versions: VersionStore


def open_storage(config: Config, data_dir: Path) -> Storage:
    """Open the database (migrating it), rebuild every index, start the index builder."""
    db = Database(data_dir / "streamproc.db")
    db.open()
    builder = IndexBuilder()
    builder.start()
    s = config.storage
    collections = CollectionStore(db, builder, IndexPolicy(
        flat_max_elements=s.flat_max_elements, nprobe=s.ivf_nprobe,
        search_threads=s.faiss_threads))
    collections.load()
    requests = RequestLog(db, IDEMPOTENCY_WINDOW_S)
    users = UserStore(db, collections, requests)
    users.load()
    return Storage(db, builder, collections, users, requests, TagStore(db), ProcessorStore(db),
                   ProjectStore(db), DatasetStore(db), VersionStore(db))


@dataclass
class Domain:
    """The services the API calls and the rules the ledger applies."""

    searcher: FaceSearcher
    kinds: dict[str, ProcessorKind]
    registry: ProcessorRegistry
    processor_rules: ProcessorRules
    processors: ProcessorService
    collections: CollectionService
    users: UserService
    tags: TagService
    projects: ProjectService
    user_search: UserSearchService
    images: ImageService
    inputs: InputAllowlist
    metrics: ProcessorMetrics


def build_domain(config: Config, engine: FaceEngine, storage: Storage, ledger: Ledger,
                 appliers: Appliers, mailbox: Mailbox, registry: CollectorRegistry) -> Domain:
    """Services over the storage; every rule registered with ``appliers``."""
    searcher = FaceSearcher(storage.collections, lambda: engine.identity, engine.scale,
                            storage.users)
    kinds: dict[str, ProcessorKind] = {FACE_SEARCH: FaceSearchKind(searcher)}
    metrics = ProcessorMetrics.create(registry)
    processors = ProcessorRegistry()
    # One allowlist for every path that opens media (API, sources, stored-video jobs).
    inputs = InputAllowlist(config.inputs, [config.objects.local_root])
    rules = ProcessorRules(processors, storage.processors, storage.tags, kinds, metrics,
                           config, mailbox.changed)
    rules.register(appliers)
    CollectionRules(storage.collections, storage.tags, searcher, config,
                    mailbox.collection_gone).register(appliers)
    UserRules(storage.users, storage.collections, searcher, Idempotency(storage.requests),
              config).register(appliers)
    TagRules(storage.tags).register(appliers)
    dataset_rules = DatasetRules(storage.datasets, storage.projects, storage.tags, config)
    version_rules = VersionRules(storage.versions, storage.projects, storage.tags, config)

    def project_gone(project: Project) -> None:  # its datasets and policies go with it
        dataset_rules.project_gone(project)
        version_rules.project_gone(project)

    ProjectRules(storage.projects, storage.tags, config, versions=version_rules.count,
                 gone=project_gone).register(appliers)
    dataset_rules.register(appliers)
    version_rules.register(appliers)
    arns = Arns(config.server.region, config.server.account_id)
    service = ProcessorService(processors, ledger, storage.tags, metrics, config, kinds, inputs)
    collections = CollectionService(storage.collections, storage.tags, engine, searcher,
                                    config, ledger)
    projects = ProjectService(storage.projects, ledger, arns)

    def project_key(resource_id: str) -> str | None:  # a project's ARN, or one under it
        if "/dataset/" in resource_id:
            return dataset_rules.tag_key_of(resource_id)
        if "/version/" in resource_id:
            return version_rules.tag_key_of(resource_id)
        return projects.tag_key(resource_id)

    tag_keys = TagKeys(arns, {"collection": collections.tag_key,
                              "streamprocessor": service.tag_key, "project": project_key})
    return Domain(
        searcher=searcher, kinds=kinds, registry=processors, processor_rules=rules,
        processors=service, collections=collections,
        users=UserService(storage.users, storage.collections, ledger),
        tags=TagService(storage.tags, ledger, tag_keys), projects=projects,
        user_search=UserSearchService(storage.users, storage.collections, searcher, engine,
                                      config),
        images=ImageService(engine, searcher, config), inputs=inputs, metrics=metrics)


def record_owners(domain: Domain, storage: Storage) -> Callable[[str], bool]:
    """Whether records keyed by a name still have an owner: a processor or a job.

    Built once; the publisher asks it about every name it holds records of.
    """
    processors, jobs = domain.registry, JobStore(storage.db)

    def exists(name: str) -> bool:
        return processors.get(name) is not None or jobs.exists(name)

    return exists


def handler_tables(wires: Iterable[WireJobKind]) -> dict[str, dict[str, Callable[..., Any]]]:
    """Every wire handler table the API serves, by the service build_api binds it to.

    The one list: build_api binds it, and the docs' operations table (tools/docgen) reads
    which operations are served from it, so a new table is served and documented at once.
    """
    return {"images": HANDLERS, "processors": PROCESSOR_HANDLERS, "tags": TAG_HANDLERS,
            "users": USER_HANDLERS, "jobs": job_handlers(wires),
            "moderation": MODERATION_HANDLERS, "projects": PROJECT_HANDLERS,
            "custom_labels": CUSTOM_LABELS_HANDLERS, "labels": LABEL_HANDLERS,
            "celebrities": CELEBRITY_HANDLERS}


def _bind(table: dict[str, Callable[..., Any]], services: Any) -> dict[str, Callable[..., Any]]:
    return {op: functools.partial(fn, services) for op, fn in table.items()}


@dataclass
class Training:
    """What the version operations need of the training side."""

    node: str  # the node whose runner trains the versions created here
    wake: Callable[[], None]  # the runner looks for work now
    backbone: Callable[[], str | None]  # the running backbone's identity
    serving: Serving | None = None  # runs trained versions (None: the pack has no backbone)


def _no_wake() -> None:
    """No runner: versions wait for the next start."""


def _no_backbone() -> str | None:
    return None


@dataclass
class ApiHooks:
    """What the API reports about the daemon itself."""

    health: Callable[[], dict[str, Any]]
    cluster: Callable[[], dict[str, Any]] | None
    metrics: ApiMetrics
    registry: CollectorRegistry
    access: AccessControl | None


def build_api(config: Config, engine: FaceEngine, domain: Domain, storage: Storage,
              ledger: Ledger, jobs: Jobs, objects: ObjectStore, hooks: ApiHooks,
              moderation: Moderation, training: Training | None = None,
              crops: Crops | None = None,
              labels: LabelDetector | None = None) -> ControlApi:
    """The AWS JSON transport over every handler table (``labels``: the label pack, if any)."""
    loader = ImageLoader(config.images, objects)
    training = training or Training(LOCAL_NODE, _no_wake, _no_backbone)
    versions = _version_service(config, domain, storage, ledger, objects, training)
    models = VersionModels(versions, training.backbone)
    serving = training.serving
    jobs.adapters.bind(models, None if serving is None else serving.adapters)
    moderation_api = ModerationApi(
        ModerationService(moderation.engine, None if serving is None else serving.adapters),
        loader, models)
    services = Services(collections=domain.collections, images=domain.images, loader=loader,
                        face_model_version=engine.face_model_version, crops=crops)
    users = UserApi(domain.users, domain.user_search, loader, engine.face_model_version)
    server = config.server
    arns = Arns(server.region, server.account_id)
    bound = {"images": services, "processors": domain.processors, "tags": domain.tags,
             "users": users, "jobs": jobs.service, "moderation": moderation_api,
             "projects": _project_api(config, domain, storage, ledger, objects, versions,
                                      moderation),
             "custom_labels": CustomLabelsApi(models, None if serving is None else serving.custom,
                                              loader),
             "labels": LabelApi(LabelService(labels), loader),
             "celebrities": CelebrityApi(CelebrityService(jobs.gallery, engine), loader)}
    handlers: dict[str, Callable[..., Any]] = {}
    for name, table in handler_tables(jobs.wires).items():
        if name not in bound:
            msg = f"handler table {name!r} has no service bound in build_api"
            raise KeyError(msg)
        if twice := handlers.keys() & table.keys():
            msg = f"operations in two handler tables: {sorted(twice)}"
            raise ValueError(msg)
        handlers.update(_bind(table, bound[name]))
    access = hooks.access
    verifier = (SigV4Verifier(access.secret, config.auth.max_clock_skew_s)
                if access is not None else None)
    limits = ApiLimits(BodyLimits.of(server), server.max_concurrent_requests,
                       server.worker_threads)
    return ControlApi(ServiceSpec(), handlers, hooks.metrics, hooks.registry, limits,
                      hooks.health, arns, verifier, access, hooks.cluster)


def _version_service(config: Config, domain: Domain, storage: Storage, ledger: Ledger,
                     objects: ObjectStore, training: Training) -> VersionService:
    arns = Arns(config.server.region, config.server.account_id)
    return VersionService(storage.versions, domain.projects, objects, ledger, arns,
                          training.node, training.wake, training.backbone,
                          stale_ms=stale_window_ms(config.projects.training_deadline_s))


def _project_api(config: Config, domain: Domain, storage: Storage, ledger: Ledger,
                 objects: ObjectStore, versions: VersionService,
                 moderation: Moderation) -> ProjectApi:
    return ProjectApi(domain.projects, DatasetService(storage.datasets, domain.projects,
                                                      objects, ledger, config),
                      versions)
