"""The daemon's stored-video jobs: their kinds, runners, rules, API service and loop.

:func:`job_kinds` is where a job kind is registered, both halves: its domain kind (what it
reads, which stage analyses it, what it checks and pages) and its wire half (Start
parameters in, Get response out). The (input, stage) it names needs a runner in
:func:`job_runners`: videos into the face stage (the analyzer) have one. A new analysis
stage is an object with ``add_background`` (``dataplane.stored.stages.StoredStage``) that
the daemon starts and stops, and one line there: a :func:`video_runner` over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from streamproc.api.job_kinds.base import WireJobKind
from streamproc.api.job_kinds.celebrities import CelebrityRecognitionWire
from streamproc.api.job_kinds.faces import FaceDetectionWire, FaceSearchWire
from streamproc.api.job_kinds.labels import LabelDetectionWire
from streamproc.api.job_kinds.media import MediaAnalysisWire
from streamproc.api.job_kinds.moderation import ContentModerationWire
from streamproc.api.job_kinds.persons import PersonTrackingWire
from streamproc.celebrities.catalog import Catalog
from streamproc.celebrities.gallery import Gallery
from streamproc.config import Config
from streamproc.daemon.media import JobAdapters, manifest_runner
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.output.publish import Publisher
from streamproc.dataplane.plane import DataPlane
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.jobrun import JobInput, JobSettings
from streamproc.dataplane.stored.jobrunners import JobRunners, Launched
from streamproc.dataplane.stored.jobworker import JobRunner
from streamproc.dataplane.stored.label_stage import LABELS, LabelStage
from streamproc.dataplane.stored.moderation_stage import ModerationStage
from streamproc.dataplane.stored.person_stage import PERSONS, FaceFinder, PersonStage
from streamproc.dataplane.stored.stages import FACES, MODERATION, A, StoredStage
from streamproc.faces.types import Face
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.kinds.celebrities import CelebrityRecognitionJobKind
from streamproc.jobs.kinds.faces import FaceDetectionJobKind, FaceSearchJobKind
from streamproc.jobs.kinds.labels import LabelDetectionJobKind
from streamproc.jobs.kinds.media import MediaAnalysisJobKind
from streamproc.jobs.kinds.moderation import ContentModerationJobKind
from streamproc.jobs.kinds.persons import PersonTrackingJobKind
from streamproc.jobs.mailbox import JobMailbox
from streamproc.jobs.notices import Notices
from streamproc.jobs.parts import JobHooks, SchedulerParts, SchedulerSettings
from streamproc.jobs.rules import JobRules, JobWrites
from streamproc.jobs.scheduler import JobScheduler
from streamproc.jobs.service import JobService
from streamproc.labels.types import LabelDetector
from streamproc.ledger import Appliers, Ledger
from streamproc.metrics import JobMetrics, NoticeSensor
from streamproc.moderation.types import Moderator
from streamproc.rekognition.constants import FACE_SEARCH, Arns
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.db import Database
from streamproc.storage.jobs import QUEUED, RUNNING, JobStore
from streamproc.storage.objects import ObjectStore
from streamproc.storage.users import UserStore


@dataclass
class Jobs:
    """Stored-video jobs: their API service, the loop that runs them, their wire halves."""

    service: JobService
    scheduler: JobScheduler[Launched]
    mailbox: JobMailbox
    wires: tuple[WireJobKind, ...]
    adapters: JobAdapters  # media-analysis jobs' ProjectVersions (build_api binds it)
    gallery: Gallery  # the celebrities' gallery (celebrity jobs; build_api binds it too)


@dataclass(frozen=True)
class Moderation:
    """The moderation pack (loaded) and the stage that runs job images through it."""

    engine: Moderator  # its model_version is ModerationModelVersion
    stage: ModerationStage  # StoredStage[ModerationAnalysis], started by the data plane


@dataclass(frozen=True)
class Labels:
    """The label pack (None: not installed) and the stage that runs label-job frames."""

    detector: LabelDetector | None  # its model_version is LabelModelVersion
    stage: LabelStage  # StoredStage[LabelAnalysis], started by the data plane


def no_labels(config: Config, plane: DataPlane) -> Labels:
    """No label pack: a stage that is never started.

    The kind refuses every Start and launch without a pack, so the stage sees no frame.
    """
    return Labels(None, LabelStage(None, config.jobs.label_batch, plane))


@dataclass(frozen=True)
class Persons:
    """The label pack person tracking uses (None: not installed) and its stage."""

    detector: LabelDetector | None
    stage: PersonStage  # StoredStage[PersonAnalysis], started by the data plane


class _NoFaces:
    """A face finder for a stage that never sees a frame (no label pack)."""

    def detect_many(self, images: list[np.ndarray], max_faces: int = 0) -> list[list[Face]]:
        return [[] for _ in images]


def no_persons(config: Config, plane: DataPlane, faces: FaceFinder | None = None) -> Persons:
    """No label pack: a person stage that is never started.

    The kind refuses every Start and launch without a pack, so the stage sees no frame.
    """
    return Persons(None, PersonStage(None, faces or _NoFaces(),
                                     config.jobs.person_tracking.batch, plane))


def job_kinds(config: Config, searcher: FaceSearcher, model_version: str,
              moderation: Moderation, adapters: JobAdapters | None = None,
              labels: Labels | None = None, gallery: Gallery | None = None,
              persons: Persons | None = None) -> tuple[JobKinds, tuple[WireJobKind, ...]]:
    """The job kinds this daemon runs, and their wire halves (each has its domain kind).

    ``adapters`` None: media-analysis jobs refuse every ProjectVersion. ``labels`` None (or
    its detector None): label jobs answer LabelPackMissing. ``gallery`` None: celebrity
    jobs search ``celebrities.gallery`` but name each celebrity by its UserId. ``persons``
    None (or its detector None): person-tracking jobs answer LabelPackMissing.
    """
    if gallery is None:
        gallery = Gallery(config.celebrities, searcher, None, Catalog({}))
    content_moderation = ContentModerationJobKind(moderation.engine.model_version)
    label_detection = LabelDetectionJobKind(None if labels is None else labels.detector)
    kinds = JobKinds([FaceDetectionJobKind(),
                      FaceSearchJobKind(searcher, config.jobs.max_matches, model_version),
                      content_moderation,
                      MediaAnalysisJobKind(moderation.engine.model_version, adapters),
                      label_detection, CelebrityRecognitionJobKind(gallery),
                      PersonTrackingJobKind(None if persons is None else persons.detector,
                                            config.jobs.person_tracking)])
    wires = job_wires(content_moderation, label_detection)
    for wire in wires:
        kinds.get(wire.api)
    return kinds, wires


def job_wires(content_moderation: ContentModerationJobKind,
              label_detection: LabelDetectionJobKind | None = None
              ) -> tuple[WireJobKind, ...]:
    """The wire halves of the job kinds (the two kinds give their model versions).

    The one list: the daemon registers it, and the docs' operations table reads it.
    """
    labels = label_detection or LabelDetectionJobKind(None)
    return (FaceDetectionWire(), FaceSearchWire(), ContentModerationWire(content_moderation),
            MediaAnalysisWire(), LabelDetectionWire(labels), CelebrityRecognitionWire(),
            PersonTrackingWire())


def video_runner(stage: StoredStage[A], config: Config, objects: ObjectStore,
                 data_dir: Path) -> JobRunner[A]:
    """Videos whose frames ``stage`` analyses as background work (beside live frames)."""
    cfg = config.jobs
    feed: BackgroundFeed[A] = BackgroundFeed()
    stage.add_background(feed, cfg.batch_frames_beside_live)
    runner = JobRunner(objects, feed, JobSettings(
        sample_fps=cfg.sample_fps, max_video_bytes=cfg.max_video_bytes,
        max_duration_s=cfg.max_duration_s, frame_queue=cfg.frame_queue,
        decode_nice=cfg.decode_nice, embed_interval_s=cfg.embed_interval_s,
        scratch=data_dir / "scratch"))
    runner.clean_scratch()
    return runner


def job_runners(config: Config, plane: DataPlane, objects: ObjectStore, data_dir: Path,
                moderation: Moderation, store: JobStore, adapters: JobAdapters | None = None,
                labels: Labels | None = None, persons: Persons | None = None) -> JobRunners:
    """The runner of each (input, stage) this daemon serves: one line each.

    A manifest runner first deletes the local files of jobs that no longer run (those of
    queued and running jobs are what their next launch resumes from).
    """
    runners = JobRunners()
    runners.add(JobInput.VIDEO, FACES,
                video_runner(plane.stages[FACE_SEARCH], config, objects, data_dir))
    runners.add(JobInput.VIDEO, MODERATION,
                video_runner(moderation.stage, config, objects, data_dir))
    media = manifest_runner(moderation.stage, config, objects, data_dir, adapters)
    media.clean_leftovers(lambda job_id: _runs(store, job_id))
    runners.add(JobInput.IMAGES, MODERATION, media)
    label_stage = (labels or no_labels(config, plane)).stage
    runners.add(JobInput.VIDEO, LABELS, video_runner(label_stage, config, objects, data_dir))
    person_stage = (persons or no_persons(config, plane)).stage
    runners.add(JobInput.VIDEO, PERSONS, video_runner(person_stage, config, objects, data_dir))
    return runners


def _runs(store: JobStore, job_id: str) -> bool:
    """Whether the job is queued or running (its local files are still needed)."""
    job = store.get(job_id)
    return job is not None and job.state in (QUEUED, RUNNING)


def build_jobs(config: Config, model_version: str, db: Database, searcher: FaceSearcher,
               plane: DataPlane, publisher: Publisher, objects: ObjectStore,
               registry: CollectorRegistry, data_dir: Path, ledger: Ledger,
               appliers: Appliers, hooks: JobHooks, moderation: Moderation,
               labels: Labels | None = None, users: UserStore | None = None,
               catalog: Catalog | None = None, persons: Persons | None = None) -> Jobs:
    """Kinds, runners (one per input and stage), rules, the service and the scheduler.

    ``users``: the daemon's user store, where GetCelebrityInfo finds the gallery's users;
    ``catalog``: the celebrities' catalog, read and checked by ``Daemon.start`` before any
    heavy work. ``Daemon.start`` passes both; None (no user found, every celebrity named
    by its UserId) is for callers that build jobs without a daemon (tests/test_command_log).
    ``persons``: the person stage (None: no label pack).
    """
    cfg = config.jobs
    adapters = JobAdapters(Arns(config.server.region, config.server.account_id))
    labels = labels or no_labels(config, plane)
    gallery = Gallery(config.celebrities, searcher, users, catalog or Catalog({}))
    persons = persons or no_persons(config, plane)
    kinds, wires = job_kinds(config, searcher, model_version, moderation, adapters, labels,
                             gallery, persons)
    mailbox, store = JobMailbox(), JobStore(db)
    runners = job_runners(config, plane, objects, data_dir, moderation, store, adapters,
                          labels, persons)
    runners.require(kinds.needs())
    metrics = JobMetrics.create(registry)
    notices = Notices(publisher, config.kafka.bootstrap, dict(cfg.notification_topics),
                      NoticeSensor(metrics), OutputAllowlist.for_config(config))
    JobRules(store, mailbox.changed).register(appliers)
    service = JobService(store, objects, kinds, notices, cfg, ledger, metrics)
    scheduler = JobScheduler(
        SchedulerParts(store, JobWrites(ledger), runners, mailbox, notices, kinds, metrics),
        SchedulerSettings(workers=cfg.workers, max_attempts=cfg.max_attempts,
                          retention_s=cfg.retention_s), hooks)
    return Jobs(service, scheduler, mailbox, wires, adapters, gallery)
