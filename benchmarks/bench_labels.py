"""The label half of bench_jobs.py: the label stage in this process, and the naive loop.

``stage_run`` decodes a video as a label job does (:class:`StoredVideo` at 5 fps) and hands
each sampled frame to :meth:`LabelStage.analyse` on this thread, decode and label in turn,
without a job's bookkeeping or result writing; ``naive_labels`` runs every decoded frame
through both models (``PackDetector.detect``, as DetectLabels does).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_e2e import cpu_seconds
from streamproc.dataplane.queues import BoundedQueue, DropPolicy
from streamproc.dataplane.regions import Region
from streamproc.dataplane.stored.label_stage import LabelAnalysis, LabelStage
from streamproc.dataplane.stored.video import StoredFrame, StoredVideo
from streamproc.dataplane.tracking import IouTracker
from streamproc.faces.providers import ExecutionOptions
from streamproc.labels.detector import PackDetector

SAMPLE_FPS = 5.0  # jobs.sample_fps's default


def label_pack() -> Path:
    """The label pack folder: ``$STREAMPROC_LABEL_PACK``, else the per-user cache."""
    folder = Path(os.environ.get("STREAMPROC_LABEL_PACK")
                  or "~/.cache/streamproc/labels-pack").expanduser()
    if not (folder / "manifest.json").is_file():
        raise SystemExit(f"no label pack at {folder}: build it with scripts/labels_pack.sh")
    return folder


def load_detector(folder: Path) -> PackDetector:
    """The pack on CPU, loaded and warmed (as the daemon loads it)."""
    detector = PackDetector(folder, ExecutionOptions(providers="cpu"))
    detector.load()
    return detector


class _Owner:
    """A label launch as the stage sees it, counting what it is handed."""

    def __init__(self) -> None:
        self.name = "bench"
        self.frames: BoundedQueue[StoredFrame] = BoundedQueue(1, DropPolicy.BLOCK)
        self.regions: tuple[Region, ...] = ()
        self.tracker = IouTracker()
        self.embed_interval: float | None = None
        self.labels = 0
        self.failures: list[str] = []

    def finish(self, frame: StoredFrame, analysis: LabelAnalysis) -> None:
        self.labels += analysis.found

    def fail(self, reason: str) -> None:
        self.failures.append(reason)


class _NoLive:
    def live_attached(self) -> bool:
        return False

    def live_waiting(self) -> bool:
        return False


def _timed(work: Any) -> dict[str, Any]:
    load0, cpu0, t0 = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
    extra = work()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_cores": (cpu_seconds() - cpu0) / wall,
            "load": (load0 + os.getloadavg()[0]) / 2, **extra}


def stage_run(detector: PackDetector, path: Path, classifier_interval_s: float
              ) -> dict[str, Any]:
    """The video's 5 fps frames through a label stage with that classifier interval."""
    stage = LabelStage(detector, 8, _NoLive(), classifier_interval_s=classifier_interval_s)
    owner = _Owner()

    def work() -> dict[str, Any]:
        frames = 0
        with StoredVideo(path, path.name, SAMPLE_FPS, 6 * 3600.0) as video:
            for frame in video.frames(threading.Event()):
                stage.analyse([(owner, frame)])
                frames += 1
        assert not owner.failures, owner.failures
        return {"frames": frames, "labels": owner.labels}

    return _timed(work)


def naive_labels(detector: PackDetector, path: Path) -> dict[str, Any]:
    """Every decoded frame through both models, as DetectLabels runs them."""
    import av

    def work() -> dict[str, Any]:
        frames = 0
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                detector.detect(frame.to_ndarray(format="rgb24"), 0.0)
                frames += 1
        return {"frames": frames}

    return _timed(work)
