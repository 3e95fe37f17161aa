"""``streamproc demo``: the whole product on one machine, printing matches as they arrive.

1. an embedded Kafka broker (tansu), 2. the daemon, 3. a collection enrolled from two
sample clips (a woman, "W", and a man, "M"), 4. a third clip with both of them served as a
looping live stream by ffmpeg, 5. a stream processor on it, 6. records read from the topic.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

import av
import cv2

from streamproc.config import load_config
from streamproc.daemon import Daemon
from streamproc.lifecycle import SignalStop
from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.livestream import LoopingStream
from streamproc.tools.tail import describe_record, follow

logger = logging.getLogger(__name__)
CLIPS = Path("data/video/intel_sample_videos")
ENROL = {"woman-W": "head-pose-face-detection-female.mp4",
         "man-M": "head-pose-face-detection-male.mp4"}
LIVE = "head-pose-face-detection-female-and-male.mp4"
TOPIC = "AmazonRekognition-demo"


def call(endpoint: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """One AWS JSON 1.1 call (what boto3 sends), without needing boto3."""
    request = urllib.request.Request(
        endpoint + "/", data=json.dumps(body).encode(), method="POST",
        headers={"X-Amz-Target": f"RekognitionService.{operation}",
                 "Content-Type": "application/x-amz-json-1.1"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def clip_frames(path: Path, every: int) -> list[bytes]:
    """Every ``every``-th frame of a clip as JPEG bytes."""
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                ok, jpeg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"))
                if ok:
                    frames.append(jpeg.tobytes())
    return frames


def enrol(endpoint: str, shared: Path, collection: str, every: int = 2) -> dict[str, int]:
    """Index W and M from every ``every``-th frame of their own clips; faces per person.

    Many frames, so each person is enrolled at the poses their clip shows (W turns her
    head from near-profile to three-quarter); IndexFaces' AUTO filter drops the frames
    turned too far, and says so in UnindexedFaces.
    """
    import base64

    call(endpoint, "CreateCollection", {"CollectionId": collection})
    counts = {}
    for person, clip in ENROL.items():
        frames = clip_frames(shared / CLIPS / clip, every)
        indexed = 0
        for jpeg in frames:
            out = call(endpoint, "IndexFaces", {
                "CollectionId": collection, "ExternalImageId": person, "MaxFaces": 1,
                "Image": {"Bytes": base64.b64encode(jpeg).decode()}})
            indexed += len(out["FaceRecords"])
        counts[person] = indexed
        print(f"enrolled {person}: {indexed} faces from {len(frames)} frames of {clip}",
              flush=True)
    return counts


def print_records(bootstrap: str, stop: threading.Event | SignalStop) -> None:
    """Read the output topic from the beginning and print each record."""
    follow(bootstrap, TOPIC, stop,
           lambda value: print(describe_record(json.loads(value)), flush=True))


def run_demo(shared: Path, port: int, duration: float | None, data_dir: Path | None) -> int:
    """Run everything until Ctrl-C/SIGTERM (or ``duration`` seconds)."""
    stop = SignalStop().install()
    broker = EmbeddedBroker()
    broker.start()
    stream = LoopingStream(shared / CLIPS / LIVE)
    workdir = data_dir or Path(tempfile.mkdtemp(prefix="streamproc-demo-"))
    daemon = Daemon(load_config(None, {
        "server.port": port, "storage.data_dir": str(workdir), "models.root": str(shared),
        "models.pack": "test_mfn", "kafka.bootstrap": broker.bootstrap,
        "log_level": "WARNING"}))
    reader = threading.Thread(target=print_records, args=(broker.bootstrap, stop), daemon=True)
    try:
        stream.start()
        daemon.start()
        endpoint = daemon.endpoint
        print(f"streamproc API on {endpoint}; Kafka on {broker.bootstrap}; "
              f"live stream {stream.url}", flush=True)
        enrol(endpoint, shared, "demo")
        call(endpoint, "CreateStreamProcessor", {
            "Name": "demo", "RoleArn": "arn:aws:iam::000000000000:role/demo",
            "Input": {"KinesisVideoStream": {"Arn": stream.url}},
            "Output": {"KinesisDataStream": {
                "Arn": f"arn:aws:kinesis:us-east-1:000000000000:stream/{TOPIC}"}},
            "Settings": {"FaceSearch": {"CollectionId": "demo", "FaceMatchThreshold": 80}}})
        call(endpoint, "StartStreamProcessor", {"Name": "demo"})
        print(f"processor 'demo' started; records from topic {TOPIC} (Ctrl-C to stop):",
              flush=True)
        reader.start()
        stop.wait(duration)
        status = call(endpoint, "DescribeStreamProcessor", {"Name": "demo"})
        print(f"processor status: {status['Status']} {status.get('StatusMessage', '')}".strip())
    finally:
        stop.set()
        daemon.stop()
        stream.stop()
        broker.stop()
        if reader.is_alive():
            reader.join(5)
    return 0


def default_shared() -> Path:
    """$STREAMPROC_SHARED, else ../shared relative to the current directory."""
    return Path(os.environ.get("STREAMPROC_SHARED", "../shared")).resolve()
