"""Stored-video jobs: video seconds analysed per wall second, against a naive loop, same run.

    .venv/bin/python benchmarks/bench_jobs.py [--minutes 1] [--live 2] [--window 15]

The stored videos are the 480x270 sample clips looped (``ffmpeg -stream_loop``, no
re-encode) to about ``--minutes`` each, read from the daemon's local object root.

* streamproc: StartFaceDetection and StartFaceSearch (collection: W and M enrolled from
  their clips) timed from Start to SUCCEEDED, sampling 5 frames per second of video
  (``jobs.sample_fps``, the default); and once more analysing every frame, to separate
  what sampling buys from what the pipeline does.
* naive baseline: a loop over every decoded frame with insightface ``FaceAnalysis.get()``
  (det_size 640x640, as insightface documents) and ``IndexFlatIP.search`` per face.
* beside live processors: ``--live`` stream processors on looping camera clips (ffmpeg
  servers, real time); their frame-to-Kafka latency and analysed frame rate are measured
  over ``--window`` seconds without a job, then over exactly the run of a face-search job
  on a ``--live-minutes`` video.

With ``--kinds labels`` (issue 26; ``--kinds faces,labels`` runs both) the same clips go
through the label pack (``models.label_pack``, else ``$STREAMPROC_LABEL_PACK``):

* streamproc: StartLabelDetection timed from Start to SUCCEEDED at 5 fps sampling;
* the label stage in this process over the job's own sampled frames (``StoredVideo``, no
  job bookkeeping), with ``jobs.label_classifier_interval_s`` 0 (both models on every sampled
  frame) and 1.0 (the classifier once per second of video), to show what that setting buys;
* naive baseline: every decoded frame through ``PackDetector.detect`` (both models);
* beside live processors: as for faces, over exactly the run of a label job.

Person jobs get their own entry in ``KINDS`` (their helper adds it).

Rows give video seconds per wall second ("x real time"), CPU cores used by this process, and
the load average of the machine around each run (other users share it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_e2e import cpu_seconds, histogram_percentiles  # noqa: E402
from benchmarks.common import SHARED, VIDEO, save, table  # noqa: E402
from streamproc.config import load_config  # noqa: E402
from streamproc.daemon import Daemon  # noqa: E402
from streamproc.tools.broker import EmbeddedBroker  # noqa: E402
from streamproc.tools.demo import call, enrol  # noqa: E402
from streamproc.tools.livestream import LoopingStream  # noqa: E402

warnings.filterwarnings("ignore", message="`estimate` is deprecated")
CLIPS = ("head-pose-face-detection-female-and-male.mp4", "classroom.mp4")
LIVE_CLIP = "classroom.mp4"


def loop_clip(clip: Path, minutes: float, dst: Path) -> float:
    """``clip`` repeated to about ``minutes`` (stream copy); returns the seconds of video."""
    import av

    with av.open(str(clip)) as container:
        seconds = container.duration / av.time_base
    loops = max(int(minutes * 60 / seconds), 1)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop",
                    str(loops - 1), "-i", str(clip), "-an", "-c", "copy", str(dst)], check=True)
    with av.open(str(dst)) as container:
        return container.duration / av.time_base


def daemon(data: Path, objects: Path, bootstrap: str, **extra: Any) -> Daemon:
    d = Daemon(load_config(None, {
        "server.port": 0, "storage.data_dir": str(data), "models.root": str(SHARED),
        "models.pack": "test_mfn", "kafka.bootstrap": bootstrap, "log_level": "ERROR",
        "objects.local_root": str(objects), **extra}))
    d.start()
    return d


def run_job(d: Daemon, op: str, name: str, **params: Any) -> dict[str, Any]:
    """Start a job, wait for it; wall seconds, CPU cores and load around it."""
    load0, cpu0, t0 = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
    job_id = call(d.endpoint, f"Start{op}",
                  {"Video": {"S3Object": {"Bucket": "vids", "Name": name}}, **params})["JobId"]
    while True:
        out = call(d.endpoint, f"Get{op}", {"JobId": job_id, "MaxResults": 1})
        if out["JobStatus"] != "IN_PROGRESS":
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    assert out["JobStatus"] == "SUCCEEDED", out
    return {"wall_s": wall, "cpu_cores": (cpu_seconds() - cpu0) / wall,
            "load": (load0 + os.getloadavg()[0]) / 2, "job_id": job_id}


def naive(path: Path, vectors: np.ndarray) -> dict[str, Any]:
    """insightface FaceAnalysis.get() on every frame, a flat search per face."""
    import av
    import faiss
    from insightface.app import FaceAnalysis

    app = FaceAnalysis(name="test_mfn", root=str(SHARED), providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=-1, det_size=(640, 640))
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    load0, cpu0, t0 = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
    faces = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            for face in app.get(frame.to_ndarray(format="bgr24")):
                index.search(face.normed_embedding[None, :].astype(np.float32), 1)
                faces += 1
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_cores": (cpu_seconds() - cpu0) / wall,
            "load": (load0 + os.getloadavg()[0]) / 2, "faces": faces}


def collection_vectors(d: Daemon) -> np.ndarray:
    assert d.storage is not None and d.engine is not None
    rows = d.storage.db.query("SELECT embedding FROM faces WHERE collection = 'people'")
    return np.frombuffer(b"".join(r[0] for r in rows), np.float32).reshape(-1, d.engine.dim)


def live_window(d: Daemon, names: list[str], wait: Callable[[], Any]) -> dict[str, Any]:
    """Analysed fps and frame-to-Kafka latency of the live processors while ``wait()`` runs."""
    reg = d.registry
    labels = [{"processor": n} for n in names]

    def analysed() -> float:
        return sum(reg.get_sample_value("streamproc_processor_frames_analysed_total",
                                        lab) or 0.0 for lab in labels)

    _, before = histogram_percentiles(reg, "streamproc_processor_frame_to_publish_seconds",
                                      labels, {})
    frames0, t0 = analysed(), time.perf_counter()
    result = wait()
    elapsed = time.perf_counter() - t0
    latency, _ = histogram_percentiles(reg, "streamproc_processor_frame_to_publish_seconds",
                                       labels, before)
    return {"fps": (analysed() - frames0) / elapsed, "latency_ms": latency, "wall_s": elapsed,
            "result": result, "load": os.getloadavg()[0]}


def beside_live(d: Daemon, args: argparse.Namespace, name: str, seconds: float,
                op: str = "FaceSearch", what: str = "face search", **params: Any
                ) -> list[list[Any]]:
    """Live processors alone, then over exactly the run of one ``op`` job on ``name``."""
    streams = [LoopingStream(VIDEO / LIVE_CLIP) for _ in range(args.live)]
    names = [f"live-{i}-{time.time_ns()}" for i in range(args.live)]
    for stream in streams:
        stream.start()
    try:
        for proc, stream in zip(names, streams, strict=True):
            call(d.endpoint, "CreateStreamProcessor", {
                "Name": proc, "RoleArn": "arn:aws:iam::000000000000:role/x",
                "Input": {"KinesisVideoStream": {"Arn": stream.url}},
                "Output": {"KinesisDataStream": {"Arn": f"kafka://{d.config.kafka.bootstrap}/"
                                                        f"{proc}"}},
                "Settings": {"FaceSearch": {"CollectionId": "people"}}})
            call(d.endpoint, "StartStreamProcessor", {"Name": proc})
        time.sleep(6)  # warm-up
        alone = live_window(d, names, lambda: time.sleep(args.window))
        # Measured over exactly the job's run, start to SUCCEEDED.
        during = live_window(d, names, lambda: run_job(d, op, name, **params))
        job = during["result"]
    finally:
        for stream in streams:
            stream.stop()
    offered = args.live * 5.0
    return [[f"{args.live} live processors alone", alone["wall_s"], offered, alone["fps"],
             *alone["latency_ms"], "-", alone["load"]],
            [f"{args.live} live processors + {what} job", during["wall_s"], offered,
             during["fps"], *during["latency_ms"], seconds / job["wall_s"], job["load"]]]


def run_faces(args: argparse.Namespace, broker: EmbeddedBroker, tmp: Path,
              lengths: dict[str, float]) -> dict[str, Any]:
    """Face detection and search jobs, the insightface loop, and a face job beside live."""
    rows: list[list[Any]] = []
    beside = {} if args.beside_live is None else {
        "jobs.batch_frames_beside_live": args.beside_live}
    sampled = daemon(tmp / "data", tmp / "objects", broker.bootstrap, **beside)
    every = None
    try:
        enrol(sampled.endpoint, SHARED, "people")
        vectors = collection_vectors(sampled)
        every = daemon(tmp / "data-every", tmp / "objects", broker.bootstrap,
                       **{"jobs.sample_fps": 1000.0})
        enrol(every.endpoint, SHARED, "people")
        for clip, seconds in ([] if args.live_only else lengths.items()):
            path = tmp / "objects" / "vids" / clip
            runs = [("streamproc FaceDetection, 5 fps", run_job(sampled, "FaceDetection", clip)),
                    ("streamproc FaceSearch, 5 fps",
                     run_job(sampled, "FaceSearch", clip, CollectionId="people")),
                    ("streamproc FaceSearch, every frame",
                     run_job(every, "FaceSearch", clip, CollectionId="people")),
                    ("naive FaceAnalysis.get(), every frame", naive(path, vectors))]
            rows += compared(clip, seconds, runs)
        every.stop()
        every = None
        long_name = f"long-{CLIPS[0]}"
        long_s = loop_clip(VIDEO / CLIPS[0], args.live_minutes,
                           tmp / "objects" / "vids" / long_name)
        live_rows = beside_live(sampled, args, long_name, long_s, CollectionId="people")
    finally:
        if every is not None:
            every.stop()
        sampled.stop()
    table(f"Stored-video jobs, 480x270 clips looped to {args.minutes:g} min",
          ["clip", "system", "video s", "wall s", "x real time", "x naive", "CPU cores",
           "load avg"], rows)
    table(f"Beside live processors ({LIVE_CLIP} served live at 15 fps, sampled at 5 fps); "
          f"the job: face search on {CLIPS[0]} looped to {args.live_minutes:g} min",
          ["run", "window s", "offered fps", "analysed fps", "p50 ms", "p95 ms", "p99 ms",
           "job x real time", "load avg"], live_rows)
    return {"rows": rows, "live": live_rows}


def compared(clip: str, seconds: float, runs: list[tuple[str, dict[str, Any]]]
             ) -> list[list[Any]]:
    """Table rows for one clip's runs; the last run is the naive baseline ("x naive")."""
    base = runs[-1][1]["wall_s"]
    rows = []
    for label, r in runs:
        rows.append([clip, label, seconds, r["wall_s"], seconds / r["wall_s"],
                     base / r["wall_s"], r["cpu_cores"], r["load"]])
        print(rows[-1], flush=True)
    return rows


def run_labels(args: argparse.Namespace, broker: EmbeddedBroker, tmp: Path,
               lengths: dict[str, float]) -> dict[str, Any]:
    """Label jobs, the label stage in-process at two classifier intervals, the naive loop."""
    from benchmarks.bench_labels import label_pack, load_detector, naive_labels, stage_run

    pack = label_pack()
    detector = load_detector(pack)
    d = daemon(tmp / "data-labels", tmp / "objects", broker.bootstrap,
               **{"models.label_pack": str(pack)})
    rows: list[list[Any]] = []
    try:
        enrol(d.endpoint, SHARED, "people")  # the live processors search it
        for clip, seconds in ([] if args.live_only else lengths.items()):
            path = tmp / "objects" / "vids" / clip
            runs = [("streamproc LabelDetection job, 5 fps", run_job(d, "LabelDetection", clip)),
                    ("label stage in-process, 5 fps, classifier every frame",
                     stage_run(detector, path, 0.0)),
                    ("label stage in-process, 5 fps, classifier every 1 s",
                     stage_run(detector, path, 1.0)),
                    ("naive PackDetector.detect(), every frame", naive_labels(detector, path))]
            rows += compared(clip, seconds, runs)
        long_name = f"long-labels-{CLIPS[1]}"
        long_s = loop_clip(VIDEO / CLIPS[1], args.live_minutes,
                           tmp / "objects" / "vids" / long_name)
        live_rows = beside_live(d, args, long_name, long_s, "LabelDetection", "label")
    finally:
        d.stop()
    table(f"Label jobs, 480x270 clips looped to {args.minutes:g} min",
          ["clip", "system", "video s", "wall s", "x real time", "x naive", "CPU cores",
           "load avg"], rows)
    table(f"Beside live processors ({LIVE_CLIP} served live at 15 fps, sampled at 5 fps); "
          f"the job: labels on {CLIPS[1]} looped to {args.live_minutes:g} min",
          ["run", "window s", "offered fps", "analysed fps", "p50 ms", "p95 ms", "p99 ms",
           "job x real time", "load avg"], live_rows)
    return {"label_rows": rows, "label_live": live_rows}


Kind = Callable[[argparse.Namespace, EmbeddedBroker, Path, dict[str, float]], dict[str, Any]]
# Each kind returns its result keys; person jobs (tracking) go here as "persons" with
# "person_rows" / "person_live", rendered by report._jobs beside the others.
KINDS: dict[str, Kind] = {"faces": run_faces, "labels": run_labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--live", type=int, default=2)
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--live-minutes", type=float, default=5.0,
                        help="length of the stored video analysed beside the live processors")
    parser.add_argument("--beside-live", type=int, default=None,
                        help="jobs.batch_frames_beside_live (default: the config default)")
    parser.add_argument("--live-only", action="store_true",
                        help="only the run beside live processors")
    parser.add_argument("--kinds", default="faces",
                        help=f"comma-separated job kinds to run, of {', '.join(KINDS)}")
    parser.add_argument("--out", default="jobs")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := [k for k in kinds if k not in KINDS]:
        parser.error(f"unknown --kinds {unknown}; known: {list(KINDS)}")
    broker = EmbeddedBroker()
    broker.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    (tmp / "objects" / "vids").mkdir(parents=True)
    lengths = {clip: loop_clip(VIDEO / clip, args.minutes, tmp / "objects" / "vids" / clip)
               for clip in CLIPS}
    results: dict[str, Any] = {"args": vars(args), "video_seconds": lengths}
    try:
        for kind in kinds:
            results.update(KINDS[kind](args, broker, tmp, lengths))
    finally:
        broker.stop()
    save(args.out, results)
    os._exit(0)


if __name__ == "__main__":
    main()
