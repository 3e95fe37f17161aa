"""Record times consumers can trust, over real servers: a start-up burst, a stall, a reconnect.

Every record read from Kafka must satisfy ProducerTimestamp <= ServerTimestamp and
ProducerTimestamp + FrameOffsetInSeconds <= when the record arrived here; frame times must
increase within the processor run; the ingest-delay histogram must show the stall.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, make_config
from streams import (
    BOTH,
    Records,
    check_record_times,
    create,
    frame_time,
    remove_processor,
    wait_status,
)

from streamproc.daemon import Daemon
from streamproc.tools.camera import Script
from streamproc.tools.mediaservers import Feed, SupervisedServer
from streamproc.tools.sharedservers import RtspServer

BURST = Script(burst_s=2.0)  # the first two seconds at once
STALL = Script(stall_at_s=4.0, stall_s=2.0)  # nothing for two seconds, then the backlog


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, broker: Any) -> Iterator[Daemon]:
    """A daemon that writes a record for every analysed frame, faces or not."""
    d = Daemon(make_config(tmp_path_factory.mktemp("times"),
                           **{"kafka.bootstrap": broker.bootstrap,
                              "processors.emit_empty_frames": True,
                              "processors.reconnect_initial_s": 0.2,
                              "processors.reconnect_max_s": 1.0}))
    d.start()
    yield d
    d.stop()


def _delays(daemon: Daemon, name: str) -> tuple[float, float]:
    """(observations, observations above 1 s) of the processor's ingest-delay histogram."""
    labels = {"processor": name}
    metric = "streamproc_processor_ingest_delay_seconds"
    count = daemon.registry.get_sample_value(f"{metric}_count", labels) or 0.0
    within = daemon.registry.get_sample_value(f"{metric}_bucket", {**labels, "le": "1.0"}) or 0.0
    return count, count - within


def test_burst_stall_loop_and_reconnect_keep_record_times_honest(plane: Daemon, broker: Any,
                                                                 tmp_path: Path) -> None:
    rek = client_for(plane.endpoint)
    rek.create_collection(CollectionId="times")
    servers: list[Any] = []
    readers: dict[str, Records] = {}
    try:
        tcp_burst = SupervisedServer(Feed(BOTH, script=BURST))
        tcp_stall = SupervisedServer(Feed(BOTH, script=STALL))
        for server in (tcp_burst, tcp_stall):
            server.start()
            servers.append(server)
        rtsp_burst = RtspServer(Feed(BOTH, script=BURST))
        rtsp_stall = RtspServer(Feed(BOTH, script=STALL))
        for server in (rtsp_burst, rtsp_stall):
            server.start()
            servers.append(server)
        sources = {"tcp-burst": tcp_burst.url, "tcp-stall": tcp_stall.url,
                   "rtsp-burst": rtsp_burst.url, "rtsp-stall": rtsp_stall.url,
                   "file": str(BOTH)}
        for name, url in sources.items():
            create(rek, name, url, f"{name}-out", "times")
            rek.start_stream_processor(Name=name)
            readers[name] = Records(broker.bootstrap, f"{name}-out")
        for name in sources:
            assert wait_status(rek, name, {"RUNNING"}, 30)["Status"] == "RUNNING", name
        # The stall happens 4 s into each stalled stream; after it has shown, drop the TCP
        # client once (the server restarts, the processor reconnects) and keep reading.
        # Waits are on counts, not times: a loaded machine analyses fewer frames a second.
        _read_until(readers, lambda: all(_delays(plane, n)[1] >= 1
                                         for n in ("tcp-stall", "rtsp-stall")), 60)
        before = _reconnects(plane, "tcp-stall")
        tcp_stall.stop()
        tcp_stall = SupervisedServer(Feed(BOTH), port=tcp_stall.port)
        tcp_stall.start()
        servers.append(tcp_stall)
        _read_until(readers, lambda: _reconnects(plane, "tcp-stall") > before and all(
            len(r.items) >= 20 for r in readers.values()) and frame_time(
            readers["file"].items[-1]) - frame_time(readers["file"].items[0]) > 9, 60)
        assert _reconnects(plane, "tcp-stall") > before
        for name, records in readers.items():
            times = check_record_times(records)
            assert len(times) >= 20, (name, len(times))
        # The file loops every 4.5 s: its timeline restarted at least twice, times still rose.
        assert frame_time(readers["file"].items[-1]) - frame_time(readers["file"].items[0]) > 9
        for name in ("tcp-stall", "rtsp-stall"):
            count, late = _delays(plane, name)
            assert count >= 20 and late >= 1, (name, count, late)  # the stall shows
        for name in ("tcp-burst", "rtsp-burst", "file"):
            count, late = _delays(plane, name)
            assert count >= 20 and late == 0, (name, count, late)  # a burst never looks late
        # Each analysed frame is one observation; stopped, the two counts must agree exactly.
        rek.stop_stream_processor(Name="file")
        assert wait_status(rek, "file", {"STOPPED"}, 30)["Status"] == "STOPPED"
        analysed = plane.registry.get_sample_value(
            "streamproc_processor_frames_analysed_total", {"processor": "file"})
        assert _delays(plane, "file")[0] == analysed
    finally:
        for records in readers.values():
            records.close()
        for server in servers:
            server.stop()
        for name in ("tcp-burst", "tcp-stall", "rtsp-burst", "rtsp-stall", "file"):
            remove_processor(rek, name)


def _reconnects(daemon: Daemon, name: str) -> float:
    return daemon.registry.get_sample_value("streamproc_processor_reconnects_total",
                                            {"processor": name}) or 0.0


def _read_until(readers: dict[str, Records], done: Callable[[], bool], timeout: float) -> None:
    """Keep reading every topic until ``done()`` or the timeout (the asserts then say which)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for records in readers.values():
            records.poll()
        if all(r.items for r in readers.values()) and done():
            return
