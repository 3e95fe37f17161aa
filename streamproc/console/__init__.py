"""The web console, served by the daemon beside the API: its page, sessions and call path.

It sits above the API layer and uses it as a client would (``ControlApi.call``), so every
rule, policy and error is the API's own.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute

from streamproc import __version__
from streamproc.api.access import AccessControl
from streamproc.api.exposure import ExposureError, console_allowed
from streamproc.api.transport import ControlApi
from streamproc.config import Config
from streamproc.console.enrol_video import video_enrolment
from streamproc.console.extension import Extension
from streamproc.console.feed import live_feed
from streamproc.console.job_frames import job_frames
from streamproc.console.routes import Console, console_hosts
from streamproc.console.sessions import SessionStore, WhenFull
from streamproc.console.stats import metrics_snapshot
from streamproc.console.throttle import LoginThrottle
from streamproc.dataplane.plane import DataPlane
from streamproc.jobs.service import JobService
from streamproc.storage.crop_objects import PREFIX, SharedCropStore
from streamproc.storage.crops import Crops, CropStore, CropsWhenFull
from streamproc.storage.objects import ObjectStore

logger = logging.getLogger(__name__)
_CROP_TIMEOUT_S = 3.0  # a crop is a few KB: an endpoint slower than this is treated as down


class CropBucketExposed(ExposureError):
    """``console.face_crops_bucket`` is a bucket API requests could read or jobs write."""


def face_crops(config: Config, data_dir: Path, address: str,
               on_drop: Callable[[], None] | None = None) -> Crops | None:
    """The face crop store (loaded, its writer started), or None where no crop is kept.

    With ``console.face_crops_bucket`` set, the crops are objects every node shares
    (:func:`shared_crops`). Otherwise they are on this node's disk, and none is kept when
    ``console.face_crops`` is off, the console itself is off or not served on ``address`` (no
    one could look at them), or in cluster mode (a delete served by another node would leave
    them here); then crops kept on this disk before are removed.
    """
    settings = config.console
    shown = settings.enabled and console_allowed(config, address)
    if settings.face_crops_bucket is not None:
        _forget_crops(data_dir / "crops", "they are kept in console.face_crops_bucket now")
        return shared_crops(config, on_drop, keeps=shown)
    if not (shown and settings.face_crops) or config.cluster.bootstrap:
        if settings.face_crops and config.cluster.bootstrap:
            logger.info("face crops: none kept in cluster mode without "
                        "console.face_crops_bucket")
        _forget_crops(data_dir / "crops", "face crops are off here")
        return None
    store = CropStore(data_dir / "crops", settings.face_crops_max_bytes,
                      settings.face_crops_retention_s, CropsWhenFull(settings.face_crops_when_full),
                      on_drop=on_drop)
    store.load()
    return store


def shared_crops(config: Config, on_drop: Callable[[], None] | None = None,
                 keeps: bool = True) -> SharedCropStore | None:
    """The crops in ``console.face_crops_bucket`` (loaded, started), or None where none is kept.

    Built whether or not this node serves the console: DeleteFaces and DeleteCollection
    served here must remove the crops other nodes show. Only a node that serves the console
    (``keeps``) keeps crops of the faces it indexes; the others only remove them. With
    ``console.face_crops`` off, the crops in the bucket are removed (the operator keeps no
    images) and None is returned. CropBucketExposed when API requests could reach the
    bucket (``objects.buckets``, ``objects.output_buckets``): a request could then read
    faces' crops or a job write over them.
    """
    settings = config.console
    bucket = settings.face_crops_bucket
    if bucket is None:
        return None
    # The crops' own store: the bucket is reached whatever the lists allow requests, and
    # with short timeouts, so a hung endpoint holds the crop writer (and a console read)
    # seconds, not objects.timeout_s per attempt.
    objects = ObjectStore(config.objects.model_copy(update={
        "buckets": [bucket], "output_buckets": [bucket],
        "timeout_s": min(config.objects.timeout_s, _CROP_TIMEOUT_S)}))
    if not objects.available:
        logger.warning("console.face_crops_bucket is set but there is no object store "
                       "(objects.local_root or objects.s3_endpoint): no face crops kept")
        return None
    store = SharedCropStore(objects, bucket, settings.face_crops_max_bytes,
                            settings.face_crops_retention_s,
                            CropsWhenFull(settings.face_crops_when_full),
                            settings.face_crops_sweep_s, on_drop=on_drop, keeps=keeps,
                            max_pending=settings.face_crops_pending)
    if not settings.face_crops:
        if not _kept_from_requests(config, bucket):  # its objects may be API users' own
            logger.warning("face crops are off: nothing removed from %s, which API requests "
                           "may reach (objects.buckets, objects.output_buckets)", bucket)
            return None
        removed = store.clear()
        logger.info("face crops are off: removed the %d crops kept in %s/%s", removed, bucket,
                    PREFIX)
        return None
    check_crop_bucket(config)
    store.start()
    store.load()
    return store


def check_crop_bucket(config: Config) -> None:
    """CropBucketExposed when crops would be kept in a bucket API requests could reach.

    Cheap (the configuration only): the daemon runs it before any heavy work, beside the
    exposure check, so a refused start has loaded no engine and removed no crop.
    """
    settings = config.console
    bucket = settings.face_crops_bucket
    available = config.objects.s3_endpoint is not None or config.objects.local_root is not None
    if bucket is None or not settings.face_crops or not available:
        return  # no crop kept in a bucket (face_crops off only removes them)
    if not _kept_from_requests(config, bucket):
        msg = (f"console.face_crops_bucket {bucket} is one API requests may read or jobs may "
               "write: set objects.buckets and objects.output_buckets to lists without it")
        raise CropBucketExposed(msg)


def _kept_from_requests(config: Config, bucket: str) -> bool:
    """True when no S3Object of a request can name ``bucket``, nor a job write into it."""
    reads, writes = config.objects.buckets, config.objects.output_buckets
    return reads is not None and bucket not in reads and writes is not None \
        and bucket not in writes


def _forget_crops(folder: Path, why: str) -> None:
    """Remove crops an earlier run kept on this disk (none of them would be shown again)."""
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
        logger.info("%s: removed the face crops kept before (%s)", why, folder)


def console_extensions(config: Config, plane: DataPlane,
                       collection_of: Callable[[str], str | None], jobs: JobService,
                       objects: ObjectStore, registry: CollectorRegistry, api: ControlApi
                       ) -> tuple[Extension, ...]:
    """The console's parts with routes of their own (those the configuration turns on).

    ``collection_of``: a stream processor's CollectionId, None for an unknown name. ``api``:
    the video enrolment calls the operations through it. The daemon closes every part
    returned here at stop.
    """
    parts = (live_feed(config, plane, collection_of, registry),
             job_frames(config, jobs, objects, registry),
             metrics_snapshot(registry, collection_of),
             video_enrolment(config, api))
    return tuple(part for part in parts if part is not None)


def console_routes(config: Config, api: ControlApi, access: AccessControl | None,
                   address: str, crops: Crops | None = None,
                   extensions: Callable[[], tuple[Extension, ...]] | None = None
                   ) -> list[BaseRoute]:
    """The console's routes for an API bound to ``address``; none where it must be off.

    ``extensions`` builds the console's parts with routes of their own, only where the
    console is served (nothing registered or cleaned up for a console that is off).

    Fails closed: with auth on, ``access`` must be the API's access control (ValueError).
    """
    if config.auth.enabled and access is None:
        msg = "console_routes: auth is on, so the console needs the API's AccessControl"
        raise ValueError(msg)
    if not config.console.enabled or not console_allowed(config, address):
        return []
    settings = config.console
    store = SessionStore(settings.max_sessions, settings.session_ttl_s,
                         WhenFull(settings.when_full), max_per_key=settings.max_sessions_per_key)
    console = Console(api, access if config.auth.enabled else None, store,
                      secure_cookie=config.server.tls_certfile is not None,
                      version=__version__,
                      hosts=console_hosts(address, config.server.host, settings.allowed_hosts),
                      crops=crops,
                      extensions=extensions() if extensions else (),
                      throttle=LoginThrottle(settings.login_max_failures, settings.login_window_s))
    return console.routes()
