"""N synthetic 1080p30 cameras through decode, batched inference, search and records.

Used by ``bench_gpu.py``. What runs, per stream and for the whole process:

* a camera: an H.264 1080p30 file (the shared clips upscaled, encoded once with PyAV's
  libx264) decoded by PyAV in real time (paced at 30 frames/s, looping), every 6th frame
  (5 analysed frames/s) converted to BGR and put on a 2-frame queue that drops the oldest
  frame when full, as the data plane's are. Without PyAV the frames come from memory and
  decoding is left out (said in the results).
* one analyzer thread, as the data plane has: up to ``batch_frames`` frames round-robin
  from the queues, ``FaceEngine.detect_many`` (one detector call per batch where batching
  is on), ``FaceEngine.embed_many`` (every face, no tracking shortcuts), a top-1 search of
  each face in a 1,000-face gallery (numpy, the cost of FAISS flat at this size) and one
  JSON record per frame.

Latency is from the moment a frame is decoded to its record being serialised (Kafka's
acknowledgement is not included: benchmarks/bench_publish.py measures that part).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.common import percentiles
from streamproc.faces.engine import FaceEngine

FPS = 30
SAMPLE_EVERY = 6  # 30 fps camera, 5 analysed frames/s


def hd_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The clip frames upscaled to 1920x1080."""
    return [cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_LINEAR) for f in frames]


def encode_stream(frames: list[np.ndarray], path: Path) -> Path | None:
    """Encode ``frames`` as a 1080p30 H.264 file (libx264, 1 s GOP); None without PyAV."""
    try:
        import av
    except ImportError:
        return None
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "veryfast", "tune": "zerolatency", "g": str(FPS)}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@dataclass
class Camera:
    """One live 1080p30 stream: decode in real time, sample, queue (drop oldest)."""

    source: Path | list[np.ndarray]
    offset: int
    stop: threading.Event
    frames: queue.Queue[tuple[float, np.ndarray]] = field(
        default_factory=lambda: queue.Queue(maxsize=2))
    dropped: int = 0
    offered: int = 0
    late_s: float = 0.0
    cpu_s: float = 0.0

    def run(self) -> None:
        """Thread body."""
        started, count = time.perf_counter(), self.offset
        cpu0 = time.thread_time()
        while not self.stop.is_set():
            for image in self._decoded():
                if self.stop.is_set():
                    break
                count += 1
                due = started + (count - self.offset) / FPS
                wait = due - time.perf_counter()
                if wait > 0:
                    self.stop.wait(wait)
                else:
                    self.late_s = max(self.late_s, -wait)
                if count % SAMPLE_EVERY == 0:
                    self._offer(time.perf_counter(), image())
        self.cpu_s = time.thread_time() - cpu0

    def _decoded(self) -> Any:
        """Yields a callable per decoded frame that converts it to BGR (only when sampled)."""
        if isinstance(self.source, list):
            for image in self.source:
                yield lambda image=image: image
            return
        import av

        with av.open(str(self.source)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"  # live: no frame-threading delay
            for frame in container.decode(stream):
                yield lambda frame=frame: frame.to_ndarray(format="bgr24")

    def _offer(self, when: float, image: np.ndarray) -> None:
        self.offered += 1
        while True:
            try:
                self.frames.put_nowait((when, image))
                return
            except queue.Full:
                try:
                    self.frames.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass


@dataclass
class StageClock:
    """Seconds the analyzer spent in each stage."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now


def analyse(engine: FaceEngine, cameras: list[Camera], gallery: np.ndarray, batch: int,
            stop: threading.Event, latencies: list[float], clock: StageClock) -> None:
    """The analyzer thread: batches across cameras, detect, embed, search, record."""
    while not stop.is_set():
        t = time.perf_counter()
        taken: list[tuple[float, np.ndarray]] = []
        progress = True
        while progress and len(taken) < batch:
            progress = False
            for camera in cameras:
                try:
                    taken.append(camera.frames.get_nowait())
                    progress = True
                except queue.Empty:
                    continue
                if len(taken) >= batch:
                    break
        if not taken:
            stop.wait(0.002)
            clock.add("idle", t)
            continue
        t = clock.add("collect", t)
        images = [image for _, image in taken]
        faces = engine.detect_many(images)
        t = clock.add("detect", t)
        engine.embed_many(list(zip(images, faces, strict=True)))
        t = clock.add("embed", t)
        for (decoded_at, _), found in zip(taken, faces, strict=True):
            vectors = np.stack([f.embedding for f in found]) if found else None
            best = (gallery @ vectors.T).max(axis=0).tolist() if vectors is not None else []
            json.dumps({"faces": [{"box": f.box.tolist(), "score": f.score, "match": m}
                                  for f, m in zip(found, best, strict=True)]})
            latencies.append(time.perf_counter() - decoded_at)
        clock.add("search+record", t)


def run_streams(engine: FaceEngine, source: Path | list[np.ndarray], streams: int,
                seconds: float, batch: int, gallery: np.ndarray,
                warmup_s: float = 3.0) -> dict[str, Any]:
    """Run ``streams`` cameras for ``warmup_s`` + ``seconds``; figures of the measured part."""
    stop = threading.Event()
    cameras = [Camera(source, offset=i * 7, stop=stop) for i in range(streams)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in cameras]
    latencies: list[float] = []
    clock = StageClock()
    analyzer = threading.Thread(target=analyse, args=(engine, cameras, gallery, batch, stop,
                                                      latencies, clock), daemon=True)
    for thread in [*threads, analyzer]:
        thread.start()
    stop.wait(warmup_s)
    del latencies[:]
    clock.seconds.clear()
    offered0, dropped0 = sum(c.offered for c in cameras), sum(c.dropped for c in cameras)
    for camera in cameras:
        camera.late_s = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    analysed = len(latencies)
    offered = sum(c.offered for c in cameras) - offered0
    dropped = sum(c.dropped for c in cameras) - dropped0
    stop.set()
    for thread in [*threads, analyzer]:
        thread.join(10)
    p50, p95, p99 = (v * 1000 for v in percentiles(latencies))
    busy = {k: v / wall for k, v in clock.seconds.items() if k != "idle"}
    return {"streams": streams, "offered_fps": offered / wall, "analysed_fps": analysed / wall,
            "dropped_pct": 100.0 * dropped / max(offered, 1), "p50_ms": p50, "p95_ms": p95,
            "p99_ms": p99, "cpu_cores": cpu / wall,
            "decode_cores": sum(c.cpu_s for c in cameras) / (wall + warmup_s),
            "camera_late_ms": 1000 * max((c.late_s for c in cameras), default=0.0),
            "analyzer_busy": busy, "limit": limiting_stage(busy, cameras)}


def limiting_stage(busy: dict[str, float], cameras: list[Camera]) -> str:
    """The stage that caps throughput: the analyzer's largest part when it is saturated."""
    if sum(busy.values()) >= 0.9 and busy:
        stage = max(busy, key=lambda k: busy[k])
        return f"analyzer ({stage} {100 * busy[stage]:.0f}% of its time)"
    if max((c.late_s for c in cameras), default=0.0) > 1.0 / FPS:
        return "decode (cameras fall behind real time)"
    return "none (keeping up)"
