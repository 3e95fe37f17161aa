"""A dead kafka:// output end to end: shown in /health, its deleted processor's records
dropped after the grace, the daemon's stop bounded (real models, a live stream, no broker).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import client_for, make_config
from streams import BOTH, ROLE, remove_processor, wait_status

from streamproc.daemon import Daemon
from streamproc.storage.spool import Spool
from streamproc.tools.clusterkit import poll

DEAD = "127.0.0.1:9"  # nothing listens on the discard port


def _processor(rek: Any, name: str, url: str) -> None:
    rek.create_stream_processor(
        Name=name, RoleArn=ROLE, Input={"KinesisVideoStream": {"Arn": url}},
        Output={"KinesisDataStream": {"Arn": f"kafka://{DEAD}/{name}-records"}},
        Settings={"FaceSearch": {"CollectionId": "c"}})
    rek.start_stream_processor(Name=name)


def test_a_dead_output_shows_drops_deleted_records_and_does_not_hold_up_the_stop(
        tmp_path: Path, live: Any) -> None:
    streams = [live(BOTH), live(BOTH)]  # one input per processor
    d = Daemon(make_config(tmp_path, **{
        "kafka.max_block_ms": 1000, "kafka.stall_s": 1.0, "kafka.deleted_grace_s": 2.0,
        "processors.emit_empty_frames": True, "outputs.clusters": [DEAD]}))
    d.start()
    stopped = False
    try:
        rek = client_for(d.endpoint)
        rek.create_collection(CollectionId="c")
        _processor(rek, "gone", streams[0].url)
        _processor(rek, "kept", streams[1].url)

        def held() -> dict[str, Any] | None:
            entry = d.health()["destinations"].get(DEAD)
            ok = entry is not None and entry["state"] == "unreachable" and \
                entry["records_held"] >= 10
            return entry if ok else None

        entry = poll(held, 40)
        assert entry is not None, d.health()["destinations"]
        assert entry["since"] and entry["error"]
        # The gauge is set on the sender's next turn: it may still read 0 at this instant.
        assert poll(lambda: (d.registry.get_sample_value(
            "streamproc_kafka_cluster_down_seconds", {"cluster": DEAD}) or 0) > 0, 10)
        remove_processor(rek, "gone")
        removed = time.monotonic()

        def dropped() -> float:
            return d.registry.get_sample_value("streamproc_records_dropped_total", {
                "cluster": DEAD, "reason": "processor_deleted"}) or 0.0

        assert poll(lambda: dropped() > 0, 30), "the deleted processor's records stayed"
        assert time.monotonic() - removed >= 2.0  # not before the grace ran out
        rek.stop_stream_processor(Name="kept")
        assert wait_status(rek, "kept", {"STOPPED"}, 10)["Status"] == "STOPPED"
        assert DEAD in d.health()["destinations"]  # kept's records still wait for it
        started = time.monotonic()
        d.stop()
        stopped = True
        # The API, the readers and the stages stop first; the dead output adds no wait.
        assert time.monotonic() - started < 5.0
    finally:
        if not stopped:
            d.stop()
    spool = Spool(tmp_path / "spool.db")
    spool.open()
    owners = spool.owners(DEAD)
    spool.close()
    assert set(owners) == {"kept"} and owners["kept"] > 0  # parked for the cluster's return
