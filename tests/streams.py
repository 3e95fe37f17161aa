"""Helpers for stream processor tests: records from Kafka, status polling, clips."""

from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import VIDEO

from streamproc.tools.demo import clip_frames

ROLE = "arn:aws:iam::123456789012:role/streamproc"
BOTH = VIDEO / "head-pose-face-detection-female-and-male.mp4"
WOMAN = VIDEO / "head-pose-face-detection-female.mp4"
MAN = VIDEO / "head-pose-face-detection-male.mp4"
CLASSROOM = VIDEO / "classroom.mp4"
WALKING = VIDEO / "face-demographics-walking.mp4"


def output_arn(topic: str) -> str:
    """A Kinesis-data-style ARN naming ``topic`` on the daemon's cluster."""
    return f"arn:aws:kinesis:us-east-1:123456789012:stream/{topic}"


def create(rek: Any, name: str, url: str, topic: str, collection: str, **extra: Any) -> str:
    """CreateStreamProcessor with the usual shapes (``extra`` may replace any of them)."""
    args = {"Name": name, "RoleArn": ROLE, "Input": {"KinesisVideoStream": {"Arn": url}},
            "Output": {"KinesisDataStream": {"Arn": output_arn(topic)}},
            "Settings": {"FaceSearch": {"CollectionId": collection, "FaceMatchThreshold": 80}}}
    return rek.create_stream_processor(**{**args, **extra})["StreamProcessorArn"]


def wait_status(rek: Any, name: str, wanted: set[str], timeout: float = 30.0
                ) -> dict[str, Any]:
    """Poll DescribeStreamProcessor until its Status is in ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        desc = rek.describe_stream_processor(Name=name)
        if desc["Status"] in wanted or time.monotonic() > deadline:
            return desc
        time.sleep(0.1)


def enrol(rek: Any, collection: str, clip: Path, person: str, every: int = 6) -> int:
    """Index one face from every ``every``-th frame of ``clip`` as ``person``."""
    count = 0
    for jpeg in clip_frames(clip, every):
        out = rek.index_faces(CollectionId=collection, Image={"Bytes": jpeg},
                              ExternalImageId=person, MaxFaces=1)
        count += len(out["FaceRecords"])
    return count


class Records:
    """Reads a topic from the beginning (assign + seek: no slow group join)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer

        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
        self.items: list[dict[str, Any]] = []
        self.keys: list[bytes] = []
        self.received: list[float] = []  # wall time each record was read here
        self._assigned = False

    def _assign(self) -> bool:
        from kafka import TopicPartition

        parts = self.consumer.partitions_for_topic(self.topic)
        if not parts:
            return False
        self.consumer.assign([TopicPartition(self.topic, p) for p in parts])
        self.consumer.seek_to_beginning()
        self._assigned = True
        return True

    def poll(self) -> None:
        """Fetch whatever is there now."""
        if not self._assigned and not self._assign():
            return
        for batch in self.consumer.poll(timeout_ms=200).values():
            now = time.time()
            for message in batch:
                self.items.append(json.loads(message.value))
                self.keys.append(message.key)
                self.received.append(now)

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float
                 ) -> list[dict[str, Any]]:
        """Poll until ``done(records)`` or the timeout; returns the records read."""
        deadline = time.monotonic() + timeout
        while not done(self.items) and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.05)
        return self.items

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


def matched_names(record: dict[str, Any]) -> list[tuple[float, str | None]]:
    """(face centre x, ExternalImageId of the best match or None) per detected face."""
    out = []
    for face in record["FaceSearchResponse"]:
        box = face["DetectedFace"]["BoundingBox"]
        centre = box["Left"] + box["Width"] / 2
        best = face["MatchedFaces"][0]["Face"].get("ExternalImageId") if face[
            "MatchedFaces"] else None
        out.append((centre, best))
    return out


def jpeg_b64(data: bytes) -> str:
    """Base64 text of bytes."""
    return base64.b64encode(data).decode()


def frame_time(record: dict[str, Any]) -> float:
    """ProducerTimestamp + FrameOffsetInSeconds: when the frame was captured."""
    video = record["InputInformation"]["KinesisVideo"]
    return video["ProducerTimestamp"] + video["FrameOffsetInSeconds"]


def check_record_times(records: Records) -> list[float]:
    """Assert what consumers rely on in every record read; returns the frame times.

    ProducerTimestamp <= ServerTimestamp; the frame time is not later than the record's
    arrival here (so not later than its decoding); frame times increase; fragment numbers
    never go back and are ProducerTimestamp in milliseconds.
    """
    times, fragments = [], []
    for record, received in zip(records.items, records.received, strict=True):
        video = record["InputInformation"]["KinesisVideo"]
        assert video["ProducerTimestamp"] <= video["ServerTimestamp"], video
        assert video["FrameOffsetInSeconds"] >= 0, video
        assert frame_time(record) <= received + 1e-6, (video, received)
        assert video["ServerTimestamp"] <= received + 1e-6, (video, received)
        assert int(video["FragmentNumber"]) == round(video["ProducerTimestamp"] * 1000)
        times.append(frame_time(record))
        fragments.append(int(video["FragmentNumber"]))
    assert all(b > a for a, b in itertools.pairwise(times)), "frame times must increase"
    assert fragments == sorted(fragments)
    return times


def remove_processor(rek: Any, name: str) -> None:
    """Stop (if running) and delete a processor; quiet if it is already gone."""
    try:
        rek.stop_stream_processor(Name=name)
    except (rek.exceptions.ResourceInUseException, rek.exceptions.ResourceNotFoundException):
        pass
    try:
        wait_status(rek, name, {"STOPPED", "FAILED"}, 10)
        rek.delete_stream_processor(Name=name)
    except rek.exceptions.ResourceNotFoundException:
        pass


def serve_bytes(data: bytes) -> tuple[socket.socket, str]:
    """A TCP server that sends ``data`` to each client and hangs up; (socket, tcp:// URL)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                conn.sendall(data)
            except OSError:
                pass
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return server, f"tcp://127.0.0.1:{server.getsockname()[1]}"
