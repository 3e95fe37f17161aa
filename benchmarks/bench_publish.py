"""Kafka publish throughput: real match records to the real (embedded) broker.

    .venv/bin/python benchmarks/bench_publish.py [--records 100000] [--seconds 6]

Baseline: a KafkaProducer with its defaults and one send() per record (what a user would
write). Ours: the daemon's publisher (ordered outbox, lz4, linger, 1 MB batches) with the
shipped config: a burst (everything submitted at once: past kafka.memory_records it spills
to the disk spool), and sustained offered rates (records submitted at a fixed pace), where
the figure is the rate Kafka acknowledged and the largest backlog seen.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import sample_record, save, table  # noqa: E402
from streamproc.config import KafkaConfig  # noqa: E402
from streamproc.tools.broker import EmbeddedBroker  # noqa: E402


def baseline(bootstrap: str, records: int, value: bytes) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    started = time.perf_counter()
    for _ in range(records):
        producer.send("baseline", key=b"proc", value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return records / elapsed


class Ours:
    """The daemon's publisher on a private registry and spool."""

    def __init__(self, bootstrap: str, tmp: Path, **cfg: Any) -> None:
        from prometheus_client import CollectorRegistry

        from streamproc.dataplane.output.publish import kafka_publisher
        from streamproc.metrics import ProcessorMetrics, PublisherMetrics
        from streamproc.processors.mailbox import Mailbox, MailboxEvents
        from streamproc.storage.spool import Spool

        self.bootstrap = bootstrap
        self.registry = CollectorRegistry()
        self.spool = Spool(tmp / "spool.db")
        self.spool.open()
        self.publisher = kafka_publisher(KafkaConfig(**cfg), self.spool,
                                         PublisherMetrics.create(self.registry),
                                         lambda n: None, MailboxEvents(Mailbox()))
        self.sensor = ProcessorMetrics.create(self.registry).sensor("bench")
        self.publisher.start()

    def acked(self) -> float:
        return self.registry.get_sample_value("streamproc_processor_records_published_total",
                                              {"processor": "bench"}) or 0.0

    def backlog(self) -> int:
        return sum(self.publisher._outbox(self.bootstrap).sizes())

    def submit(self, topic: str, value: bytes) -> None:
        self.publisher.submit(self.bootstrap, "bench", topic, value, time.monotonic(),
                              self.sensor)

    def close(self) -> None:
        self.publisher.stop(5)
        self.spool.close()


def burst(bootstrap: str, records: int, value: bytes) -> float:
    with TemporaryDirectory() as tmp:
        ours = Ours(bootstrap, Path(tmp))
        started = time.perf_counter()
        for _ in range(records):
            ours.submit("burst", value)
        while ours.acked() < records:
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        ours.close()
    return records / elapsed


def sustained(bootstrap: str, rate: int, seconds: float, value: bytes) -> tuple[float, int]:
    with TemporaryDirectory() as tmp:
        ours = Ours(bootstrap, Path(tmp))
        started, sent, worst = time.perf_counter(), 0, 0
        while (now := time.perf_counter()) - started < seconds:
            due = int((now - started) * rate)
            for _ in range(due - sent):
                ours.submit(f"rate{rate}", value)
            sent = due
            worst = max(worst, ours.backlog())
            time.sleep(0.002)
        deadline = time.perf_counter() + 60
        while ours.acked() < sent and time.perf_counter() < deadline:
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        achieved = ours.acked() / elapsed
        ours.close()
    return achieved, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    value = sample_record()
    broker = EmbeddedBroker()
    broker.start()
    try:
        rows: list[list[Any]] = [
            ["baseline: KafkaProducer defaults, send() per record", "burst",
             baseline(broker.bootstrap, args.records, value), "-"],
            ["streamproc publisher", "burst", burst(broker.bootstrap, args.records, value),
             "-"]]
        for rate in (10_000, 20_000, 30_000):
            achieved, worst = sustained(broker.bootstrap, rate, args.seconds, value)
            rows.append(["streamproc publisher", f"{rate:,}/s offered", achieved, worst])
    finally:
        broker.stop()
    print(f"\n{args.records:,} records of {len(value)} bytes (one matched face) to tansu on "
          "loopback; target >= 20,000 records/s")
    text = table("Kafka publish throughput",
                 ["producer", "load", "acknowledged records/s", "largest backlog"], rows)
    save("publish", {"records": args.records, "record_bytes": len(value), "table": text,
                     "rows": rows})


if __name__ == "__main__":
    main()
