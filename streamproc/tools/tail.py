"""``streamproc tail --kafka BOOTSTRAP TOPIC``: follow a processor's records and print them.

One line per record for a person to read (:func:`describe_record`, also the demo's format),
or the raw JSON with ``--json``; from the live edge, or ``--from-beginning``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from streamproc.lifecycle import SignalStop


def describe_record(record: dict[str, Any]) -> str:
    """One line per record: frame time and who was seen, with Similarity and position."""
    video = record["InputInformation"]["KinesisVideo"]
    at = video["ProducerTimestamp"] + video["FrameOffsetInSeconds"]
    seen = []
    for face in record["FaceSearchResponse"]:
        box = face["DetectedFace"]["BoundingBox"]
        where = f"x={box['Left']:.2f}"
        if face["MatchedFaces"]:
            best = face["MatchedFaces"][0]
            seen.append(f"{best['Face'].get('ExternalImageId', best['Face']['FaceId'])} "
                        f"({best['Similarity']:.1f}) at {where}")
        else:
            seen.append(f"unknown face at {where}")
    stamp = time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"
    return f"{stamp}  " + ("; ".join(seen) or "no faces")


def follow(bootstrap: str, topic: str, stop: threading.Event | SignalStop,
           emit: Callable[[bytes], None], from_beginning: bool = True,
           ready: Callable[[], None] | None = None) -> None:
    """Call ``emit`` with each record's value until ``stop`` is set.

    Partitions are assigned directly (no consumer group: nothing is committed, and no
    group join delays the first record). ``ready`` runs once the start offsets are fixed.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100,
                             enable_auto_commit=False)
    try:
        partitions = None
        while not partitions and not stop.is_set():
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                stop.wait(0.2)
        if not partitions:
            return
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            consumer.seek_to_beginning()
        else:
            consumer.seek_to_end()
        for tp in assigned:
            consumer.position(tp)  # resolve the offsets now: later records are all shown
        if ready is not None:
            ready()
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=200).values():
                for message in batch:
                    emit(message.value)
    finally:
        consumer.close()


def line_for(value: bytes, as_json: bool) -> str:
    """What ``tail`` prints for one record value."""
    text = value.decode("utf-8", errors="replace")
    if as_json:
        return text
    try:
        return describe_record(json.loads(text))
    except (ValueError, KeyError, TypeError):
        return f"(not a face search record) {text[:200]}"


def run_tail(bootstrap: str, topic: str, as_json: bool, from_beginning: bool,
             out: IO[str] = sys.stdout) -> int:
    """Follow ``topic`` until SIGINT/SIGTERM."""
    stop = SignalStop().install()
    edge = "the beginning" if from_beginning else "the live edge"

    def ready() -> None:
        print(f"following {topic} on {bootstrap} from {edge} (Ctrl-C stops)", file=sys.stderr,
              flush=True)

    def emit(value: bytes) -> None:
        print(line_for(value, as_json), file=out, flush=True)

    follow(bootstrap, topic, stop, emit, from_beginning, ready)
    return 0
