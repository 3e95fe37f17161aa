"""The daemon's media-analysis runner: manifests of images into the moderation stage.

One line in :func:`streamproc.daemon.jobs.job_runners` registers it for
(``JobInput.IMAGES``, ``stages.MODERATION``). :class:`JobAdapters` is how its jobs reach the
project versions: the kind checks a ``ProjectVersion`` at Start with it, each launch loads
its adapter through it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from streamproc.api.images import MIN_IMAGE_SIDE
from streamproc.api.project_handlers import version_resource
from streamproc.config import Config
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.manifestimages import ImageLimits
from streamproc.dataplane.stored.manifestrun import ManifestSettings
from streamproc.dataplane.stored.manifestrunner import ManifestRunner
from streamproc.dataplane.stored.stages import StoredStage
from streamproc.errors import ResourceNotReadyException
from streamproc.moderation.adapter import AdapterModerator, WithAdapter, no_adapters
from streamproc.moderation.types import ModerationAnalysis
from streamproc.projects.versions_serving import VersionModels
from streamproc.rekognition.constants import Arns
from streamproc.storage.objects import ObjectStore

BIND_POLL_S = 0.1  # how often a launch waiting for the versions to be wired looks again


class JobAdapters:
    """Media-analysis jobs' adapters: a ProjectVersion to a moderator that applies it.

    The jobs are built before the API that owns the project versions, so the versions are
    bound later (:meth:`bind`, by ``build_api``); a launch resumed in between waits for
    them. The rules are DetectModerationLabels' (:mod:`streamproc.api.moderation_handlers`).
    A version is named by its resource id, which the wire resolved from the ARN in the
    client's region (``api.job_kinds.media``); a job stored before it did has only its ARN,
    which Start then checked as the configured :class:`Arns` spell it, so that is where it
    is resolved again.
    """

    def __init__(self, arns: Arns) -> None:
        self._arns = arns
        self._bound = threading.Event()
        self._models: VersionModels | None = None
        self._adapters: AdapterModerator | None = None

    def bind(self, models: VersionModels, adapters: AdapterModerator | None) -> None:
        """The server's versions and what runs them (None: the pack serves no adapters)."""
        self._models, self._adapters = models, adapters
        self._bound.set()

    def check(self, version_id: str | None, arn: str) -> None:
        """What DetectModerationLabels would refuse ``arn`` with (loads the adapter)."""
        self._with_adapter(version_id, arn)

    def moderator(self, version_id: str | None, arn: str, stop: threading.Event
                  ) -> WithAdapter:
        """A moderator applying adapter ``arn``, once the versions are bound (or ``stop``)."""
        while not self._bound.wait(BIND_POLL_S):
            if stop.is_set():
                msg = "the server is stopping"
                raise ResourceNotReadyException(msg)
        return self._with_adapter(version_id, arn)

    def _with_adapter(self, version_id: str | None, arn: str) -> WithAdapter:
        models, adapters = self._models, self._adapters
        if models is None or adapters is None:
            raise no_adapters(arn)
        if version_id is None:  # stored before Start resolved it: see the class
            version_id = version_resource(arn, self._arns)
        return WithAdapter(adapters, models.adapter(version_id, arn))


def manifest_settings(config: Config) -> ManifestSettings:
    """Limits from ``jobs`` and, for each image, DetectModerationLabels' own (``images``)."""
    jobs, images = config.jobs, config.images
    return ManifestSettings(
        max_line_bytes=jobs.media_analysis_max_line_bytes,
        max_lines=jobs.media_analysis_max_lines,
        limits=ImageLimits(max_bytes=images.s3_max_bytes, max_pixels=images.max_pixels,
                           min_side=MIN_IMAGE_SIDE),
        queue=jobs.frame_queue, checkpoint_lines=jobs.media_analysis_checkpoint_lines)


def manifest_runner(stage: StoredStage[ModerationAnalysis], config: Config,
                    objects: ObjectStore, data_dir: Path,
                    adapters: JobAdapters | None = None) -> ManifestRunner:
    """The runner, its feed added to ``stage`` (removes nothing: see clean_leftovers)."""
    feed: BackgroundFeed[ModerationAnalysis] = BackgroundFeed()
    stage.add_background(feed, config.jobs.batch_frames_beside_live)
    return ManifestRunner(objects, feed, manifest_settings(config), data_dir / "media",
                          adapters)
