"""The runner of media-analysis launches: manifests of images into the moderation stage.

An :class:`~.jobrunners.InputRunner` for (``JobInput.IMAGES``, ``stages.MODERATION``), as
:class:`~.jobworker.JobRunner` is for videos: it starts one :class:`~.manifestrun.ManifestRun`
thread per launch and halts it without waiting (the scheduler checks back). Each job's local
files (``DATA_DIR/media/JOB_ID/``) are used by one launch at a time: a launch waits for the
lock of its job's files while an earlier, abandoned launch of the same job still holds it.
A launch with a ``ProjectVersion`` loads its adapter through ``adapters`` (None: this server
serves none, and such a launch fails ``RESOURCE_NOT_FOUND``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.jobrun import JobEvents, JobPlan, ResultSink
from streamproc.dataplane.stored.manifestimages import ImageReader
from streamproc.dataplane.stored.manifestrun import AdapterSource, ManifestRun, ManifestSettings
from streamproc.metrics import JobSensor
from streamproc.moderation.types import ModerationAnalysis
from streamproc.storage.objects import ObjectStore

logger = logging.getLogger(__name__)
LOCK_POLL_S = 0.1  # how often a launch waiting for its job's files looks again


class ManifestRunner:
    """Starts and halts media-analysis launches; owns the per-job locks of their files."""

    def __init__(self, objects: ObjectStore, feed: BackgroundFeed[ModerationAnalysis],
                 settings: ManifestSettings, folder: Path,
                 adapters: AdapterSource | None = None) -> None:
        self.objects = objects
        self.adapters = adapters
        self.feed = feed
        self.settings = settings
        self.folder = folder  # DATA_DIR/media
        self.reader = ImageReader(objects, settings.limits)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()  # guards _locks

    @contextlib.contextmanager
    def job_lock(self, job_id: str, stop: threading.Event) -> Iterator[bool]:
        """Hold ``job_id``'s files for the block (False: ``stop`` came first)."""
        with self._guard:
            lock = self._locks.setdefault(job_id, threading.Lock())
        while not lock.acquire(timeout=LOCK_POLL_S):
            if stop.is_set():
                yield False
                return
        try:
            yield True
        finally:
            lock.release()

    def clean_leftovers(self, keep: Callable[[str], bool]) -> None:
        """Delete the folders of jobs that no longer run (call before any launch)."""
        if not self.folder.is_dir():
            return
        for child in self.folder.iterdir():
            if child.is_dir() and not keep(child.name):
                logger.info("media analysis: removing the files of ended job %s", child.name)
                shutil.rmtree(child, ignore_errors=True)

    def launch(self, plan: JobPlan, sink: ResultSink, events: JobEvents,
               sensor: JobSensor) -> ManifestRun:
        """Start a launch's thread."""
        run = ManifestRun(plan, self, sink, events, sensor)
        run.start()
        return run

    def begin_halt(self, run: ManifestRun) -> None:
        """Ask a launch to end; returns at once."""
        run.request_stop()

    def halted(self, run: ManifestRun) -> bool:
        """True once the launch's thread has finished."""
        return not run.running

    def abandon(self, run: ManifestRun) -> None:
        """Stop waiting for a launch that did not end in time (its thread dies with us)."""
        logger.warning("job %s: its launch (attempt %d) is still busy; abandoned",
                       run.plan.job_id, run.plan.attempt)
