"""The ``streamproc serve`` command: starts, answers, and exits cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import SHARED, client_for


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
         str(tmp_path), "--model-root", str(SHARED), "--model-pack", "test_mfn",
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("streamproc ready on http://127.0.0.1:"), line
        endpoint = line.split()[-1]
        rek = client_for(endpoint)
        rek.create_collection(CollectionId="cli")
        assert rek.list_collections()["CollectionIds"] == ["cli"]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        proc.kill()
        proc.wait()


def test_serve_reports_missing_pack(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
         str(tmp_path), "--model-root", str(tmp_path), "--model-pack", "test_mfn"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "model pack 'test_mfn' not found" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_config_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("server:\n  prot: 1\n")
    out = subprocess.run([sys.executable, "-m", "streamproc", "serve", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "prot" in out.stderr


def _broker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "streamproc.cli", "broker", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ready(proc: subprocess.Popen[str]) -> str:
    """The bootstrap a broker printed (it prints nothing else first), within 30 s."""
    assert proc.stdout is not None
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    assert found and found[0].startswith("Kafka broker ready on 127.0.0.1:"), found
    return found[0].split()[4]


def _port_open(bootstrap: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(bootstrap.rsplit(":", 1)[1]))) == 0


def _closes(bootstrap: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while _port_open(bootstrap):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_broker_serves_kafka_and_refuses_a_taken_port() -> None:
    from kafka import KafkaConsumer, KafkaProducer

    first = _broker("--port", "0")
    try:
        bootstrap = _ready(first)
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send("docs", b"hello").get(timeout=30)
        producer.close()
        consumer = KafkaConsumer("docs", bootstrap_servers=bootstrap, consumer_timeout_ms=20000,
                                 auto_offset_reset="earliest")
        assert next(iter(consumer)).value == b"hello"  # the first record, not a 20 s wait
        consumer.close()
        taken = _broker("--port", bootstrap.rsplit(":", 1)[1])
        _, err = taken.communicate(timeout=60)
        assert taken.returncode == 2 and "port in use" in err, err
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=15)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_broker_stops_with_its_tansu_on_a_signal(sig: signal.Signals) -> None:
    broker = _broker("--port", "0")
    try:
        bootstrap = _ready(broker)
        broker.send_signal(sig)
        assert broker.wait(timeout=15) == 0
        assert _closes(bootstrap), "tansu outlived streamproc broker"
    finally:
        broker.kill()


def test_a_killed_broker_command_takes_its_tansu_with_it() -> None:
    broker = _broker("--port", "0")
    bootstrap = _ready(broker)
    broker.kill()  # SIGKILL: no handler runs; the kernel's parent-death signal must
    broker.wait(timeout=15)
    assert _closes(bootstrap), "tansu outlived a killed streamproc broker"
