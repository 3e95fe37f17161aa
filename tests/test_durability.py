"""SIGTERM with the broker frozen: undelivered records are spooled and sent after a restart.

A real ``streamproc serve`` process, a real tansu broker frozen with SIGSTOP, a live ffmpeg
stream. The guarantee of docs/stream-processors.md, checked in the topic and in
DATA_DIR/spool.db: every record the processor emitted arrives once, in order, and the
spool ends empty.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED, client_for, require_shared
from streams import BOTH, MAN, Records, create, enrol, wait_status

from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.livestream import LoopingStream

pytestmark = pytest.mark.slow


def _serve(data_dir: Path, config: Path, bootstrap: str) -> tuple[subprocess.Popen, str]:
    require_shared()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "serve", "--config", str(config), "--port", "0",
         "--data-dir", str(data_dir), "--model-root", str(SHARED), "--model-pack", "test_mfn",
         "--kafka", bootstrap, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith("streamproc ready on "), line
    return proc, line.split()[-1]


def _metric(endpoint: str, name: str, labels: dict[str, str]) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (scraped /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"{endpoint}/metrics", timeout=10).read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _spooled(data_dir: Path) -> list[bytes]:
    with sqlite3.connect(data_dir / "spool.db") as db:
        return [row[0] for row in db.execute("SELECT value FROM spool ORDER BY pos")]


def _frame_of(record: dict[str, Any]) -> tuple[float, float]:
    video = record["InputInformation"]["KinesisVideo"]
    return video["ProducerTimestamp"], video["FrameOffsetInSeconds"]


def test_sigterm_with_the_broker_frozen_spools_and_redelivers_once_in_order(
        tmp_path: Path, own_broker: EmbeddedBroker) -> None:
    config = tmp_path / "streamproc.yaml"
    config.write_text("kafka:\n  memory_records: 10\n  flush_timeout_s: 1.0\n")
    data_dir = tmp_path / "data"
    cluster = own_broker.bootstrap
    assert own_broker.process is not None
    broker_pid = own_broker.process.pid
    stream = LoopingStream(BOTH)
    stream.start()
    proc, endpoint = _serve(data_dir, config, cluster)
    try:
        rek = client_for(endpoint)
        rek.create_collection(CollectionId="c")
        enrol(rek, "c", MAN, "man-M", every=12)
        create(rek, "durable", stream.url, "durable-out", "c")
        rek.start_stream_processor(Name="durable")
        labels = {"processor": "durable"}
        _until(lambda: _metric(endpoint, "streamproc_processor_records_published_total",
                               labels) >= 5, 60, "no records before the freeze")

        os.kill(broker_pid, signal.SIGSTOP)
        held = {"cluster": cluster}
        _until(lambda: _metric(endpoint, "streamproc_kafka_outbox_records",
                               {**held, "location": "disk"}) >= 10, 60,
               "records were not held on disk while the broker was frozen")
        rek.stop_stream_processor(Name="durable")
        assert wait_status(rek, "durable", {"STOPPED"}, 10)["Status"] == "STOPPED"
        emitted = _metric(endpoint, "streamproc_processor_records_emitted_total", labels)
        published = _metric(endpoint, "streamproc_processor_records_published_total", labels)
        assert emitted - published >= 20  # held: in memory, on disk and in flight

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        stream.stop()
    spooled = [json.loads(value) for value in _spooled(data_dir)]
    # Nothing acknowledged is on disk, nothing unacknowledged is missing from it.
    assert published + len(spooled) == emitted

    os.kill(broker_pid, signal.SIGCONT)
    proc, endpoint = _serve(data_dir, config, cluster)
    try:
        _until(lambda: not _spooled(data_dir), 60, "the spool was not delivered")
        rek = client_for(endpoint)
        assert rek.describe_stream_processor(Name="durable")["Status"] == "STOPPED"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert _spooled(data_dir) == []
    records = Records(cluster, "durable-out")
    try:
        records.wait_for(lambda rs: len(rs) >= emitted, 30)
        # Both daemons are gone: the topic is complete. Read on until fetches come back
        # empty, so a duplicate behind the expected count is seen too.
        empty = 0
        while empty < 3:
            before = len(records.items)
            records.poll()
            empty = empty + 1 if len(records.items) == before else 0
        topic = records.items
    finally:
        records.close()
    # After the records delivered before the freeze: the send that was in flight when
    # the broker froze (the broker still had it in its socket buffer and wrote it when it
    # woke up), then the whole spool, in order. A record that was in flight is delivered
    # twice: across a restart delivery is at-least-once (a new producer session, so the
    # idempotent producer cannot recognise it). Nothing is lost, nothing is reordered.
    redelivered = topic[int(published):len(topic) - len(spooled)]
    assert topic[len(topic) - len(spooled):] == spooled
    assert redelivered == spooled[:len(redelivered)] and len(redelivered) <= 5
    frames = [_frame_of(r) for r in topic]
    assert len(set(frames)) == emitted  # every record arrived ...
    assert frames == sorted(frames)  # ... in order
