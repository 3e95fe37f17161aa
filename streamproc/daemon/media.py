"""The daemon's media-analysis runner: manifests of images into the moderation stage.

One line in :func:`streamproc.daemon.jobs.job_runners` registers it for
(``JobInput.IMAGES``, ``stages.MODERATION``).
"""

from __future__ import annotations

from pathlib import Path

from streamproc.api.images import MIN_IMAGE_SIDE
from streamproc.config import Config
from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.manifestimages import ImageLimits
from streamproc.dataplane.stored.manifestrun import ManifestSettings
from streamproc.dataplane.stored.manifestrunner import ManifestRunner
from streamproc.dataplane.stored.stages import StoredStage
from streamproc.moderation.types import ModerationAnalysis
from streamproc.storage.objects import ObjectStore


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
                    objects: ObjectStore, data_dir: Path) -> ManifestRunner:
    """The runner, its feed added to ``stage`` (removes nothing: see clean_leftovers)."""
    feed: BackgroundFeed[ModerationAnalysis] = BackgroundFeed()
    stage.add_background(feed, config.jobs.batch_frames_beside_live)
    return ManifestRunner(objects, feed, manifest_settings(config), data_dir / "media")
