"""End to end: N live streams through the daemon vs a naive per-stream loop, same run.

    .venv/bin/python benchmarks/bench_e2e.py [--streams 1 2 4 8] [--seconds 20] [--speed 2]

Each stream is a real ffmpeg server looping a clip over TCP (``--speed 2``: a 15 fps clip
served as a 30 fps camera). Both systems get the same streams, the same real broker, the
same test models and the same collection, and try to analyse every frame.

* streamproc: the daemon in this process (sample_fps above the camera rate, so every frame
  is offered; the 2-frame queue drops what cannot be analysed in time, DROP_OLDEST).
* naive baseline: per stream, a thread looping over decoded frames with insightface
  ``FaceAnalysis.get()`` (det_size 640x640, as insightface documents), ``IndexFlatIP.search``
  per face and one ``KafkaProducer.send()`` per record.

Figures are taken over ``--seconds`` after a warm-up: analysed frames/s, faces/s, decode to
Kafka-acknowledgement latency p50/p95/p99 and CPU (this process, in cores; the ffmpeg
servers are outside it and the same for both). The isolated stage costs are measured in the
same run, and "CPU allows" is the frame rate one core would reach running them back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import (  # noqa: E402
    SHARED,
    VIDEO,
    percentiles,
    sample_record,
    save,
    stop_and_delete,
    table,
)
from streamproc.config import load_config  # noqa: E402
from streamproc.daemon import Daemon  # noqa: E402
from streamproc.storage.collections import NewFace  # noqa: E402
from streamproc.tools.broker import EmbeddedBroker  # noqa: E402
from streamproc.tools.demo import call as demo_call  # noqa: E402
from streamproc.tools.demo import enrol  # noqa: E402
from streamproc.tools.livestream import LoopingStream  # noqa: E402

warnings.filterwarnings("ignore", message="`estimate` is deprecated")
WARMUP_S = 6.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fill_collection(daemon: Daemon, collection: str, size: int) -> np.ndarray:
    """Enrol W and M from their clips, then pad with synthetic faces to ``size``."""
    enrol(daemon.endpoint, SHARED, collection)
    assert daemon.storage is not None and daemon.engine is not None
    store = daemon.storage.collections
    have = store.face_count(collection)
    rng = np.random.default_rng(0)
    dim = daemon.engine.dim
    filler = rng.standard_normal((max(size - have, 0), dim)).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    for start in range(0, len(filler), 5000):
        chunk = filler[start:start + 5000]
        store.add_faces(collection, [NewFace(
            f"00000000-0000-5000-8000-{start + i:012d}", "00000000-0000-5000-8000-000000000000",
            f"synthetic-{start + i}", {"Width": 0.1, "Height": 0.1, "Left": 0.1, "Top": 0.1},
            90.0, vec) for i, vec in enumerate(chunk)])
    rows = daemon.storage.db.query("SELECT embedding FROM faces WHERE collection = ?",
                                   (collection,))
    return np.frombuffer(b"".join(r[0] for r in rows), np.float32).reshape(-1, dim)


def histogram_percentiles(registry: Any, name: str, labels_list: list[dict[str, str]],
                          before: dict[float, float]) -> tuple[list[float], dict[float, float]]:
    """p50/p95/p99 from the change of a Prometheus histogram (linear within buckets)."""
    counts: dict[float, float] = {}
    for metric in registry.collect():
        if metric.name != name:
            continue
        for sample in metric.samples:
            if sample.name.endswith("_bucket") and any(
                    sample.labels.get("processor") == lab["processor"] for lab in labels_list):
                le = float(sample.labels["le"])
                counts[le] = counts.get(le, 0.0) + sample.value
    delta = sorted((le, counts[le] - before.get(le, 0.0)) for le in counts)
    total = delta[-1][1] if delta else 0.0
    out = []
    for p in (50, 95, 99):
        target, prev_le, prev_c = total * p / 100, 0.0, 0.0
        value = float("nan")
        for le, c in delta:
            if c >= target and total > 0:
                if le == float("inf"):
                    value = prev_le
                else:
                    frac = (target - prev_c) / max(c - prev_c, 1e-9)
                    value = prev_le + (le - prev_le) * frac
                break
            prev_le, prev_c = le, c
        out.append(value * 1000)
    return out, counts


def run_streamproc(daemon: Daemon, streams: list[LoopingStream], collection: str,
                   seconds: float) -> dict[str, Any]:
    def call(op: str, body: dict[str, Any]) -> dict[str, Any]:
        return demo_call(daemon.endpoint, op, body)

    names = [f"bench-{i}" for i in range(len(streams))]
    for name, stream in zip(names, streams, strict=True):
        call("CreateStreamProcessor", {
            "Name": name, "RoleArn": "arn:aws:iam::000000000000:role/x",
            "Input": {"KinesisVideoStream": {"Arn": stream.url}},
            "Output": {"KinesisDataStream": {"Arn": f"kafka://{daemon.config.kafka.bootstrap}/"
                                                    f"{name}-{time.time_ns()}"}},
            "Settings": {"FaceSearch": {"CollectionId": collection}}})
        call("StartStreamProcessor", {"Name": name})
    time.sleep(WARMUP_S)
    reg = daemon.registry

    def total(metric: str) -> float:
        return sum(reg.get_sample_value(f"streamproc_processor_{metric}_total",
                                        {"processor": n}) or 0.0 for n in names)

    labels = [{"processor": n} for n in names]
    _, hist0 = histogram_percentiles(reg, "streamproc_processor_frame_to_publish_seconds",
                                     labels, {})
    frames0, faces0, cpu0, t0 = total("frames_analysed"), total("faces_detected"), \
        cpu_seconds(), time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - t0
    frames, faces = total("frames_analysed") - frames0, total("faces_detected") - faces0
    cpu = (cpu_seconds() - cpu0) / elapsed
    lat, _ = histogram_percentiles(reg, "streamproc_processor_frame_to_publish_seconds",
                                   labels, hist0)
    decoded = total("frames_decoded")
    stop_and_delete(call, names)
    return {"fps": frames / elapsed, "faces_s": faces / elapsed, "latency_ms": lat,
            "cpu_cores": cpu, "decoded": decoded}


def run_naive(streams: list[LoopingStream], vectors: np.ndarray, bootstrap: str,
              seconds: float) -> dict[str, Any]:
    import av
    import faiss
    from insightface.app import FaceAnalysis
    from kafka import KafkaProducer

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    stop = threading.Event()
    measuring = threading.Event()
    lock = threading.Lock()
    stats = {"frames": 0, "faces": 0}
    latencies: list[float] = []

    def loop(url: str, topic: str) -> None:
        app = FaceAnalysis(name="test_mfn", root=str(SHARED),
                           providers=["CPUExecutionProvider"])
        app.prepare(ctx_id=-1, det_size=(640, 640))
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for _ in range(50):  # the stream server may not be listening yet
            try:
                container = av.open(url, timeout=(5, 5))
                break
            except av.error.ConnectionRefusedError:
                time.sleep(0.2)
        with container:
            for frame in container.decode(video=0):
                if stop.is_set():
                    break
                decoded = time.monotonic()
                image = frame.to_ndarray(format="bgr24")
                faces = app.get(image)
                results = []
                for face in faces:
                    scores, ids = index.search(face.normed_embedding[None, :].astype(np.float32), 1)
                    results.append({"bbox": face.bbox.tolist(), "score": float(scores[0, 0]),
                                    "id": int(ids[0, 0])})
                future = producer.send(topic, json.dumps(results).encode())
                if measuring.is_set():
                    future.add_callback(lambda _m, d=decoded: latencies.append(
                        (time.monotonic() - d) * 1000))
                    with lock:
                        stats["frames"] += 1
                        stats["faces"] += len(faces)
        producer.close(timeout=2)

    threads = [threading.Thread(target=loop, args=(s.url, f"naive-{i}-{time.time_ns()}"),
                                daemon=True) for i, s in enumerate(streams)]
    for t in threads:
        t.start()
    time.sleep(WARMUP_S + 3)  # FaceAnalysis loads per thread
    measuring.set()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    time.sleep(seconds)
    measuring.clear()
    elapsed = time.perf_counter() - t0
    cpu = (cpu_seconds() - cpu0) / elapsed
    frames, faces = stats["frames"], stats["faces"]
    stop.set()
    for t in threads:
        t.join(10)
    return {"fps": frames / elapsed, "faces_s": faces / elapsed,
            "latency_ms": percentiles(latencies), "cpu_cores": cpu}


def stage_costs(daemon: Daemon, clip: Path, vectors: np.ndarray, bootstrap: str
                ) -> dict[str, float]:
    """Per-frame CPU cost of each stage alone (CPU ms, this process), on the clip's frames.

    CPU time, not wall time: onnxruntime runs a call on several threads, and the end-to-end
    figure it is compared with is CPU time too.
    """
    clock = cpu_seconds
    import av

    from streamproc.dataplane.tracking import IouTracker

    engine = daemon.engine
    assert engine is not None and daemon.storage is not None
    started = clock()
    images = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            images.append(frame.to_ndarray(format="bgr24"))
    decode = (clock() - started) / len(images) * 1000
    started = clock()
    detected = [engine.detect(img) for img in images]
    detect = (clock() - started) / len(images) * 1000
    faces = sum(len(d) for d in detected) / len(images)
    crops = [engine.embedder.align(img, f.landmarks)
             for img, fs in zip(images, detected, strict=True) for f in fs]
    started = clock()
    engine.embedder.embed(crops)
    embed = (clock() - started) / max(len(crops), 1) * 1000
    tracker, embedded = IouTracker(), 0
    for i, fs in enumerate(detected):  # how many faces a frame re-embeds at this rate
        for track in tracker.update([f.box for f in fs]):
            if track.needs_embedding(i / 30.0, daemon.config.processors.embed_interval_s):
                track.observe(np.zeros(2, np.float32), i / 30.0)
                embedded += 1
    per_frame_embeds = embedded / len(images)
    query = vectors[:1]
    store = daemon.storage.collections
    index = store._loaded(next(iter(store.list_ids())))
    started = clock()
    for _ in range(200):
        index.index.search(query, 10)
    search = (clock() - started) / 200 * 1000
    from benchmarks.bench_publish import Ours
    with tempfile.TemporaryDirectory() as tmp:
        ours = Ours(bootstrap, Path(tmp))
        value = sample_record(faces=max(1, round(faces)))
        started = clock()
        for _ in range(5000):
            ours.submit("stage-cost", value)
        while ours.acked() < 5000:
            time.sleep(0.001)
        publish = (clock() - started) / 5000 * 1000
        ours.close()
    return {"decode_ms": decode, "detect_ms": detect, "faces_per_frame": faces,
            "embed_ms_per_face": embed, "embeds_per_frame": per_frame_embeds,
            "search_ms_per_face": search, "publish_ms_per_record": publish}


def scaling(daemon: Daemon, args: argparse.Namespace) -> list[list[Any]]:
    """streamproc alone at 2 streams: vary faces per frame, then collection size."""
    rows: list[list[Any]] = []
    cases = [("head-pose-face-detection-male.mp4", "bench", "faces per frame"),
             ("classroom.mp4", "bench", "faces per frame")]
    fill_collection(daemon, "big", 100_000)
    cases.append(("classroom.mp4", "big", "collection size"))
    for clip, collection, varied in cases:
        streams = [LoopingStream(VIDEO / clip, speed=args.speed) for _ in range(2)]
        for stream in streams:
            stream.start()
        try:
            r = run_streamproc(daemon, streams, collection, args.seconds)
        finally:
            for stream in streams:
                stream.stop()
        assert daemon.storage is not None
        store = daemon.storage.collections
        rows.append([varied, clip, store.face_count(collection),
                     store.index_kind(collection), r["fps"], r["faces_s"] / r["fps"],
                     r["cpu_cores"] * 1000 / r["fps"], *r["latency_ms"]])
        print(rows[-1], flush=True)
    table("Scaling (streamproc, 2 streams)", ["varied", "clip", "collection faces", "index",
                                             "analysed fps", "faces/frame", "CPU ms/frame",
                                             "p50 ms", "p95 ms", "p99 ms"], rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--speed", type=float, default=2.0)
    parser.add_argument("--clip", default="classroom.mp4")
    parser.add_argument("--collection-size", type=int, default=1000)
    parser.add_argument("--out", default="e2e", help="results file name")
    parser.add_argument("--scaling", action="store_true",
                        help="also vary faces per frame and collection size at 2 streams")
    args = parser.parse_args()
    clip = VIDEO / args.clip
    broker = EmbeddedBroker()
    broker.start()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    daemon = Daemon(load_config(None, {
        "server.port": 0, "storage.data_dir": str(data_dir), "models.root": str(SHARED),
        "models.pack": "test_mfn", "kafka.bootstrap": broker.bootstrap, "log_level": "ERROR",
        "processors.sample_fps": 1000.0, "processors.max_processors": 64}))
    daemon.start()
    results: dict[str, Any] = {"args": vars(args)}
    rows = []
    try:
        vectors = fill_collection(daemon, "bench", args.collection_size)
        costs = stage_costs(daemon, clip, vectors, broker.bootstrap)
        serial = (costs["decode_ms"] + costs["detect_ms"]
                  + costs["embeds_per_frame"] * costs["embed_ms_per_face"]
                  + costs["faces_per_frame"] * costs["search_ms_per_face"]
                  + costs["publish_ms_per_record"])
        results["stage_costs"] = {**costs, "serial_cpu_ms_per_frame": serial,
                                  "cpu_allows_fps_per_core": 1000 / serial}
        print(json.dumps(results["stage_costs"], indent=1), flush=True)
        for n in args.streams:
            streams = [LoopingStream(clip, speed=args.speed) for _ in range(n)]
            for s in streams:
                s.start()
            try:
                ours = run_streamproc(daemon, streams, "bench", args.seconds)
                for s in streams:  # fresh servers: each accepts one client
                    s.stop()
                streams = [LoopingStream(clip, speed=args.speed) for _ in range(n)]
                for s in streams:
                    s.start()
                naive = run_naive(streams, vectors, broker.bootstrap, args.seconds)
            finally:
                for s in streams:
                    s.stop()
            offered = n * 15.0 * args.speed
            ratio = ours["fps"] / naive["fps"] if naive["fps"] else float("inf")
            # The frame rate the CPU time it used would give if spent only on the stages.
            allows = ours["cpu_cores"] * 1000 / serial
            results[f"n={n}"] = {"streamproc": ours, "naive": naive, "ratio": ratio,
                                 "offered_fps": offered, "cpu_allows_fps": allows}
            for name, r in (("streamproc", ours), ("naive", naive)):
                cpu_ms = r["cpu_cores"] * 1000 / r["fps"] if r["fps"] else float("nan")
                rows.append([n, name, offered, r["fps"], r["faces_s"], *r["latency_ms"],
                             r["cpu_cores"], cpu_ms, ratio if name == "streamproc" else "-",
                             f"{ours['fps'] / allows:.0%}" if name == "streamproc" else "-"])
            print(rows[-2], rows[-1], flush=True)
        if args.scaling:
            results["scaling"] = scaling(daemon, args)
    finally:
        daemon.stop()
        broker.stop()
    text = table(f"End to end, {args.clip} served live at {args.speed}x "
                 f"({15 * args.speed:.0f} fps per stream), collection of "
                 f"{args.collection_size} faces, {args.seconds:.0f} s per run",
                 ["streams", "system", "offered fps", "analysed fps", "faces/s", "p50 ms",
                  "p95 ms", "p99 ms", "CPU cores", "CPU ms/frame", "x naive",
                  "of what CPU allows"], rows)
    results["table"] = text
    save(args.out, results)
    os._exit(0)  # naive loops may hold sockets in daemon threads


if __name__ == "__main__":
    main()
