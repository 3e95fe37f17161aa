"""A media-analysis launch's memory against its manifest's length: streamed, never held whole.

    .venv/bin/python benchmarks/bench_manifest_memory.py [--lines 10000 100000] [--every 100]

For each length, one launch on a local object root through the real runner, moderation stage
and engine (pack open_nsfw): every ``--every``-th line names one of the shared photos, the
others are bad lines of every kind (not JSON, no source-ref, a missing object, a bad
reference), so the summary's error list is as long as the manifest. The process's resident
set is sampled every 10 ms; the table gives its peak above the level before the launch
(engine loaded, warm), the launch's wall time and the sizes of the files it wrote.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, save, table  # noqa: E402

BAD = ('not json', '{"no-ref": 1}', '{"source-ref": "s3://inbox/missing.jpg"}',
       '{"source-ref": "https://example.com/x.jpg"}')


def rss_mb() -> float:
    """This process's resident set now (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """The peak resident set while it runs (a 10 ms poll)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> Sampler:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(1)


class Recorder:
    def __init__(self) -> None:
        self.ended = threading.Event()
        self.error: str | None = None

    def set_metadata(self, job_id: str, attempt: int, metadata: dict[str, Any]) -> None:
        pass

    def add_results(self, job_id: str, attempt: int, rows: list[Any]) -> bool:
        return True

    def job_ended(self, job_id: str, attempt: int, error: str | None) -> None:
        self.error = error
        self.ended.set()


def write_manifest(root: Path, lines: int, every: int, images: list[str]) -> Path:
    path = root / "inbox" / f"m{lines}.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for i in range(lines):
            if i % every == 0:
                out.write(json.dumps({"source-ref": images[(i // every) % len(images)]}) + "\n")
            else:
                out.write(BAD[i % len(BAD)] + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from prometheus_client import CollectorRegistry

    from streamproc.config import ObjectsConfig, load_config
    from streamproc.daemon.media import manifest_settings
    from streamproc.dataplane.stored.background import BackgroundFeed
    from streamproc.dataplane.stored.jobrun import JobInput, JobPlan
    from streamproc.dataplane.stored.manifest import ManifestTask
    from streamproc.dataplane.stored.manifestrunner import ManifestRunner
    from streamproc.dataplane.stored.moderation_stage import ModerationStage
    from streamproc.dataplane.stored.stages import MODERATION
    from streamproc.metrics import JobMetrics, JobSensor
    from streamproc.moderation.engine import ModerationEngine
    from streamproc.storage.objects import ObjectRef, ObjectStore

    class NoLive:
        def live_attached(self) -> bool:
            return False

        def live_waiting(self) -> bool:
            return False

    root = Path(tempfile.mkdtemp(prefix="bench-manifest-"))
    for bucket in ("inbox", "outbox"):
        (root / bucket).mkdir()
    photos = sorted((SHARED / "data" / "images").rglob("*.jpg"))
    images = []
    for i, photo in enumerate(photos):
        shutil.copy(photo, root / "inbox" / f"{i}.jpg")
        images.append(f"s3://inbox/{i}.jpg")
    config = load_config(None, {"objects.local_root": str(root)})
    engine = ModerationEngine(config.moderation, config.models)
    engine.load()
    stage = ModerationStage(engine, config.jobs.moderation_batch, NoLive())
    feed: Any = BackgroundFeed()
    stage.add_background(feed, 1)
    runner = ManifestRunner(ObjectStore(ObjectsConfig(local_root=root)), feed,
                            manifest_settings(config), root / "data" / "media")
    metrics = JobMetrics.create(CollectorRegistry())
    stage.start()
    rows, results = [], {}
    try:
        for lines in args.lines:
            manifest = write_manifest(root, lines, args.every, images)
            job = f"job-{lines}"
            plan = JobPlan(job, 1, "MediaAnalysis", ObjectRef("inbox", manifest.name),
                           ManifestTask(50.0, "outbox", "", engine.model_version),
                           JobInput.IMAGES, MODERATION)
            recorder = Recorder()
            before = rss_mb()
            started = time.perf_counter()
            with Sampler() as sampler:
                runner.launch(plan, recorder, recorder, JobSensor(metrics, "MediaAnalysis", job))
                recorder.ended.wait(3600)
            wall = time.perf_counter() - started
            assert recorder.error is None, recorder.error
            out = root / "outbox" / job
            sizes = {p.name: p.stat().st_size for p in out.iterdir()}
            results[lines] = {"rss_before_mb": before, "rss_peak_mb": sampler.peak,
                              "growth_mb": sampler.peak - before, "wall_s": wall,
                              "manifest_bytes": manifest.stat().st_size, "outputs": sizes}
            rows.append([lines, manifest.stat().st_size / 1e6, before, sampler.peak,
                         sampler.peak - before, wall,
                         sizes["manifest-summary.json"] / 1e6])
    finally:
        stage.stop(5.0)
    table(f"media-analysis launch memory (1 image line in {args.every}, open_nsfw)",
          ["lines", "manifest MB", "RSS before MiB", "RSS peak MiB", "growth MiB", "wall s",
           "summary MB"], rows)
    if args.out:
        save(args.out, {"args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
