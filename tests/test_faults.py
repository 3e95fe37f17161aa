"""Injected faults: broker outage, flapping sources, kill -9, hostile video."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import SHARED, client_for, fixture_photo, make_config
from streams import (
    BOTH,
    MAN,
    Records,
    create,
    enrol,
    matched_names,
    serve_bytes,
    wait_status,
)

from streamproc.daemon import Daemon
from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.livestream import LoopingStream

OUTAGE_S = 60.0


def sample(daemon: Daemon, name: str, labels: dict[str, str]) -> float:
    return daemon.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.slow
def test_broker_frozen_for_a_minute_loses_nothing(tmp_path: Path,
                                                   own_broker: EmbeddedBroker) -> None:
    """60 s of SIGSTOP: records are held (memory, then disk), delivered in order, once."""
    cluster = own_broker.bootstrap
    stream = LoopingStream(BOTH)
    stream.start()
    d = Daemon(make_config(tmp_path, **{"kafka.bootstrap": cluster,
                                        "kafka.memory_records": 10}))
    d.start()
    try:
        rek = client_for(d.endpoint)
        rek.create_collection(CollectionId="c")
        enrol(rek, "c", MAN, "man-M", every=12)
        create(rek, "outage", stream.url, "outage-out", "c")
        rek.start_stream_processor(Name="outage")
        assert wait_status(rek, "outage", {"RUNNING"})["Status"] == "RUNNING"
        labels = {"processor": "outage"}
        deadline = time.monotonic() + 30
        while sample(d, "streamproc_processor_records_published_total", labels) < 5:
            assert time.monotonic() < deadline, "no records before the outage"
            time.sleep(0.2)

        assert own_broker.process is not None
        os.kill(own_broker.process.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        deadline = time.monotonic() + 40
        while f"Kafka cluster {cluster} unreachable" not in rek.describe_stream_processor(
                Name="outage")["StatusMessage"]:
            assert time.monotonic() < deadline, "the outage was never shown"
            time.sleep(0.2)
        assert rek.describe_stream_processor(Name="outage")["Status"] == "RUNNING"
        assert sample(d, "streamproc_kafka_cluster_up", {"cluster": cluster}) == 0
        # At least a minute, and until more than 100 records are held beyond the 10 kept
        # in memory (however fast this machine analyses frames).
        deadline = frozen_at + OUTAGE_S + 120
        while time.monotonic() - frozen_at < OUTAGE_S or sample(
                d, "streamproc_kafka_outbox_records",
                {"cluster": cluster, "location": "disk"}) <= 100:
            assert time.monotonic() < deadline, "records were not held on disk"
            time.sleep(0.5)
        assert sample(d, "streamproc_kafka_outbox_records",
                      {"cluster": cluster, "location": "memory"}) <= 10
        os.kill(own_broker.process.pid, signal.SIGCONT)

        deadline = time.monotonic() + 60
        while sample(d, "streamproc_kafka_cluster_up", {"cluster": cluster}) != 1 or \
                rek.describe_stream_processor(Name="outage")["StatusMessage"]:
            assert time.monotonic() < deadline, "no recovery after the outage"
            time.sleep(0.2)
        rek.stop_stream_processor(Name="outage")
        emitted = sample(d, "streamproc_processor_records_emitted_total", labels)
        deadline = time.monotonic() + 60
        while sample(d, "streamproc_processor_records_published_total", labels) < emitted:
            assert time.monotonic() < deadline, "spooled records were not all delivered"
            time.sleep(0.2)
    finally:
        d.stop()
        stream.stop()
    records = Records(cluster, "outage-out")
    try:
        got = records.wait_for(lambda rs: len(rs) >= emitted, 30)
    finally:
        records.close()
    frames = [(r["InputInformation"]["KinesisVideo"]["ProducerTimestamp"]
               + r["InputInformation"]["KinesisVideo"]["FrameOffsetInSeconds"]) for r in got]
    assert len(set(frames)) == emitted  # every record arrived ...
    assert len(got) == emitted  # ... exactly once (idempotent producer, no failed sends)
    assert frames == sorted(frames)  # ... in order
    assert emitted > 100


def test_flapping_source_reconnects_then_fails(tmp_path: Path, broker: Any) -> None:
    d = Daemon(make_config(tmp_path, **{"kafka.bootstrap": broker.bootstrap,
                                        "processors.reconnect_initial_s": 0.2,
                                        "processors.reconnect_max_s": 1.0,
                                        "processors.source_give_up_s": 5.0}))
    d.start()
    stream = LoopingStream(BOTH)
    stream.start()
    try:
        rek = client_for(d.endpoint)
        rek.create_collection(CollectionId="c")
        create(rek, "flap", stream.url, "flap-out", "c")
        rek.start_stream_processor(Name="flap")
        labels = {"processor": "flap"}
        for cycle in range(3):
            decoded = sample(d, "streamproc_processor_frames_decoded_total", labels)
            deadline = time.monotonic() + 30
            while sample(d, "streamproc_processor_frames_decoded_total", labels) < decoded + 5:
                assert time.monotonic() < deadline, f"no frames in cycle {cycle}"
                time.sleep(0.1)
            reconnects = sample(d, "streamproc_processor_reconnects_total", labels)
            stream.stop()
            deadline = time.monotonic() + 30
            while sample(d, "streamproc_processor_reconnects_total", labels) <= reconnects:
                assert time.monotonic() < deadline, f"the drop went unnoticed in cycle {cycle}"
                time.sleep(0.1)
            stream = LoopingStream(BOTH, port=stream.port)
            stream.start()
        assert sample(d, "streamproc_processor_reconnects_total", labels) >= 3
        assert rek.describe_stream_processor(Name="flap")["Status"] == "RUNNING"
        stream.stop()
        started = time.monotonic()
        desc = wait_status(rek, "flap", {"FAILED"}, 30)
        assert desc["Status"] == "FAILED"
        assert desc["StatusMessage"].startswith("Stream unavailable for")
        assert time.monotonic() - started < 20
    finally:
        stream.stop()
        d.stop()


def _face_video(path: Path, sizes: list[tuple[int, int]], seconds: float = 2.0) -> None:
    """An MPEG-TS file whose resolution changes mid-stream (one part per size)."""
    import cv2

    face = cv2.imdecode(np.frombuffer(fixture_photo("person_a_1"), np.uint8), cv2.IMREAD_COLOR)
    with path.open("wb") as out:
        for width, height in sizes:
            part = path.with_suffix(f".{width}.ts")
            with av.open(str(part), "w", format="mpegts") as container:
                stream = container.add_stream("libx264", rate=10)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                canvas = np.full((height, width, 3), 90, np.uint8)
                fh = min(height - 10, 200)  # same pixels, a different share of the frame
                fw = int(face.shape[1] * fh / face.shape[0])
                canvas[5:5 + fh, 5:5 + fw] = cv2.resize(face, (fw, fh))
                for _ in range(int(seconds * 10)):
                    frame = av.VideoFrame.from_ndarray(canvas, format="bgr24")
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
            out.write(part.read_bytes())


def test_hostile_video_is_handled_honestly(tmp_path: Path, broker: Any) -> None:
    d = Daemon(make_config(tmp_path / "d", **{"kafka.bootstrap": broker.bootstrap,
                                              "processors.source_give_up_s": 8.0,
                                              "inputs.media_roots": [str(tmp_path)]}))
    d.start()
    servers = []
    try:
        rek = client_for(d.endpoint)
        rek.create_collection(CollectionId="c")
        rek.index_faces(CollectionId="c", Image={"Bytes": fixture_photo("person_a_1")},
                        ExternalImageId="a")
        garbage, garbage_url = serve_bytes(random.Random(7).randbytes(200_000))
        servers.append(garbage)
        audio = tmp_path / "audio.ts"
        with av.open(str(audio), "w", format="mpegts") as container:
            stream = container.add_stream("mp2", rate=44100)
            for i in range(20):
                frame = av.AudioFrame.from_ndarray(
                    np.zeros((1, 1152), np.int16), format="s16", layout="mono")
                frame.sample_rate, frame.pts = 44100, i * 1152
                for packet in stream.encode(frame):
                    container.mux(packet)
        switching = tmp_path / "switch.ts"
        _face_video(switching, [(320, 240), (640, 480)])
        create(rek, "garbage", garbage_url, "garbage-out", "c")
        create(rek, "audio", str(audio), "audio-out", "c")
        create(rek, "switch", str(switching), "switch-out", "c")
        for name in ("garbage", "audio", "switch"):
            rek.start_stream_processor(Name=name)
        desc = wait_status(rek, "audio", {"FAILED"})
        assert desc["StatusMessage"].endswith("has no video stream")
        desc = wait_status(rek, "garbage", {"FAILED"}, 30)
        assert desc["Status"] == "FAILED" and desc["StatusMessage"]
        records = Records(broker.bootstrap, "switch-out")
        try:
            got = records.wait_for(lambda rs: len(rs) >= 30, 40)
        finally:
            records.close()
        assert rek.describe_stream_processor(Name="switch")["Status"] == "RUNNING"
        widths = {round(r["FaceSearchResponse"][0]["DetectedFace"]["BoundingBox"]["Width"], 1)
                  for r in got if r["FaceSearchResponse"]}
        assert len(widths) >= 2  # the face's size relative to the frame changed with it
        assert any(n == "a" for r in got for _, n in matched_names(r))
    finally:
        for server in servers:
            server.close()
        d.stop()


def _spawn(data_dir: Path, bootstrap: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
         str(data_dir), "--model-root", str(SHARED), "--model-pack", "test_mfn",
         "--kafka", bootstrap, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith("streamproc ready on "), line
    return proc, line.split()[-1]


def test_kill_9_loses_no_acknowledged_face(tmp_path: Path, broker: Any) -> None:
    stream = LoopingStream(BOTH)
    stream.start()
    proc, endpoint = _spawn(tmp_path, broker.bootstrap)
    acknowledged: list[str] = []
    try:
        rek = client_for(endpoint)
        rek.create_collection(CollectionId="k9")
        create(rek, "k9", stream.url, "k9-out", "k9")
        rek.start_stream_processor(Name="k9")
        assert wait_status(rek, "k9", {"RUNNING"})["Status"] == "RUNNING"
        photos = [fixture_photo(n) for n in ("person_a_1", "person_a_2", "person_b_1",
                                             "person_b_2", "impostor_1", "impostor_2")]
        stop = threading.Event()

        def index_forever(worker: int) -> None:
            client = client_for(endpoint)
            i = 0
            while not stop.is_set():
                try:
                    out = client.index_faces(CollectionId="k9", ExternalImageId=f"w{worker}-{i}",
                                             Image={"Bytes": photos[i % len(photos)]})
                except Exception:
                    return  # the daemon died under us: this one was never acknowledged
                acknowledged.extend(r["Face"]["FaceId"] for r in out["FaceRecords"])
                i += 1

        workers = [threading.Thread(target=index_forever, args=(w,)) for w in range(3)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 5:  # a few acknowledged while the others are in flight
            assert time.monotonic() < deadline, "no face was acknowledged"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for w in workers:
            w.join(30)
        assert len(acknowledged) >= 5
    finally:
        proc.kill()
    proc, endpoint = _spawn(tmp_path, broker.bootstrap)
    try:
        rek = client_for(endpoint)
        listed = [f["FaceId"] for page in rek.get_paginator("list_faces").paginate(
            CollectionId="k9") for f in page["Faces"]]
        assert set(acknowledged) <= set(listed)
        assert rek.describe_collection(CollectionId="k9")["FaceCount"] == len(listed)
        # Index and metadata agree: every listed face is found by a search with itself.
        for face_id in acknowledged[:10]:
            found = rek.search_faces(CollectionId="k9", FaceId=face_id, FaceMatchThreshold=0,
                                     MaxFaces=4096)
            assert found["SearchedFaceId"] == face_id and found["FaceMatches"]
        assert wait_status(rek, "k9", {"RUNNING"})["Status"] == "RUNNING"
        rek.stop_stream_processor(Name="k9")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        stream.stop()
