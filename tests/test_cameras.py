"""Cameras as they are, against real servers: RTSP (GStreamer), RTMP, SRT, HLS and TCP.

H.264 and H.265, basic and digest authentication, RTP over TCP and UDP, the camera's own
clock, reconnects, and every way a source can be wrong. Servers come from
``streamproc.tools.mediaservers`` (installed by ``scripts/setup.sh``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
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
    serve_bytes,
    wait_status,
)

from streamproc.daemon import Daemon
from streamproc.tools.camera import transcode
from streamproc.tools.mediaservers import Feed, RtmpServer, SrtServer, SupervisedServer
from streamproc.tools.sharedservers import HlsServer, RtspServer

OPEN_TIMEOUT_S = 4.0


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, broker: Any) -> Iterator[Daemon]:
    """A daemon with quick reconnects, a short give-up, a record per analysed frame."""
    d = Daemon(make_config(tmp_path_factory.mktemp("cams"),
                           **{"kafka.bootstrap": broker.bootstrap,
                              "processors.emit_empty_frames": True,
                              "processors.reconnect_initial_s": 0.2,
                              "processors.reconnect_max_s": 1.0,
                              # Long enough for the reconnect test's outage on a loaded box.
                              "processors.source_give_up_s": 15.0,
                              "processors.open_timeout_s": OPEN_TIMEOUT_S,
                              "processors.read_timeout_s": 3.0}))
    d.start()
    rek = client_for(d.endpoint)
    rek.create_collection(CollectionId="cams")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def h265(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-person clip in H.265 (ffmpeg, libx265)."""
    return transcode(BOTH, tmp_path_factory.mktemp("h265") / "both-h265.mp4")


@pytest.fixture
def processors(plane: Daemon, broker: Any) -> Iterator[Callable[[str, str], Records]]:
    """Create and start a processor on a URL; its records; all removed after the test."""
    rek = client_for(plane.endpoint)
    made: list[tuple[str, Records]] = []

    def start(name: str, url: str) -> Records:
        create(rek, name, url, f"{name}-out", "cams")
        rek.start_stream_processor(Name=name)
        made.append((name, Records(broker.bootstrap, f"{name}-out")))
        return made[-1][1]

    yield start
    for name, records in made:
        records.close()
        remove_processor(rek, name)


def _wait_records(readers: dict[str, Records], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(r.items) >= count for r in readers.values()):
            return
        for records in readers.values():
            records.poll()
        time.sleep(0.05)


def test_rtsp_codecs_authentication_and_transports(plane: Daemon, processors: Any,
                                                   h265: Path) -> None:
    rek = client_for(plane.endpoint)
    servers = [RtspServer(Feed(BOTH), auth="basic"),
               RtspServer(Feed(h265, "h265"), auth="digest"),
               RtspServer(Feed(h265, "h265"), transports="udp"),
               RtspServer(Feed(BOTH), transports="tcp")]
    basic, digest, udp_only, tcp_only = servers
    try:
        for server in servers:
            server.start()
        good = {
            "h264-basic-tcp": basic.login_url("cam", "secret"),
            "h264-basic-udp": basic.login_url("cam", "secret") + "?rtsp_transport=udp",
            "h265-digest-tcp": digest.login_url("cam", "secret"),
            "h265-digest-auto": digest.login_url("cam", "secret") + "?rtsp_transport=auto",
            "h265-udp-only": udp_only.url + "?rtsp_transport=udp",
            "h264-tcp-only-auto": tcp_only.url + "?rtsp_transport=auto",
        }
        readers = {name: processors(name, url) for name, url in good.items()}
        processors("wrong-password", basic.login_url("cam", "hunter2wrong"))
        processors("no-password", digest.url)
        processors("no-such-path", basic.login_url("cam", "secret").replace("/stream", "/nothing"))
        processors("udp-refused", tcp_only.url + "?rtsp_transport=udp")
        processors("tcp-refused", udp_only.url)
        _wait_records(readers, 10, 40)
        for name, records in readers.items():
            assert len(records.items) >= 10, name
            check_record_times(records)
        for name, reason in (("wrong-password", "authentication failed"),
                             ("no-password", "authentication failed"),
                             ("no-such-path", "not found (404"),
                             ("udp-refused", "refused RTP over udp"),
                             ("tcp-refused", "refused RTP over tcp")):
            desc = wait_status(rek, name, {"FAILED"}, 15)
            assert desc["Status"] == "FAILED" and reason in desc["StatusMessage"], desc
        desc = rek.describe_stream_processor(Name="wrong-password")
        assert "hunter2wrong" not in str(desc) and "***" in desc["StatusMessage"]
    finally:
        for server in servers:
            server.stop()


def test_camera_clock_when_the_stream_has_one_arrival_anchor_otherwise(
        plane: Daemon, processors: Any) -> None:
    slow = RtspServer(Feed(BOTH), clock_offset_s=-30.0)  # a camera 30 s behind
    tcp = SupervisedServer(Feed(BOTH))
    try:
        slow.start()
        tcp.start()
        readers = {"slow-camera": processors("slow-camera", slow.url),
                   "no-clock": processors("no-clock", tcp.url)}
        _wait_records(readers, 10, 40)
        # The camera restarts: the reconnection keeps to the camera's clock.
        slow.stop()
        slow = RtspServer(Feed(BOTH), clock_offset_s=-30.0, port=slow.port)
        slow.start()
        _wait_records(readers, 25, 40)
    finally:
        slow.stop()
        tcp.stop()
    for records in readers.values():
        check_record_times(records)
    # RTCP sender reports carry the camera's clock: frames are 30 s old by it.
    behind = [r - frame_time(rec) for rec, r in zip(readers["slow-camera"].items,
                                                     readers["slow-camera"].received, strict=True)]
    assert len(behind) >= 25 and all(29.5 < b < 33 for b in behind), behind
    labels = {"processor": "slow-camera"}
    histogram = "streamproc_processor_ingest_delay_seconds"
    assert plane.registry.get_sample_value(f"{histogram}_bucket", {**labels, "le": "10.0"}) == 0
    # MPEG-TS over TCP has no wall clock: frames are anchored to their earliest arrival, so
    # each is decoded within 2 s of its frame time. The daemon measures that at decoding; the
    # test reads late while it restarts the other camera, so its own view gets more slack.
    tcp_labels = {"processor": "no-clock"}
    analysed = plane.registry.get_sample_value(f"{histogram}_count", tcp_labels)
    assert analysed >= 10 and plane.registry.get_sample_value(
        f"{histogram}_bucket", {**tcp_labels, "le": "2.0"}) == analysed
    near = [r - frame_time(rec) for rec, r in zip(readers["no-clock"].items,
                                                   readers["no-clock"].received, strict=True)]
    assert len(near) >= 10 and all(0 <= n < 5.0 for n in near), near


def _decoded(daemon: Daemon, name: str) -> float:
    return daemon.registry.get_sample_value("streamproc_processor_frames_decoded_total",
                                            {"processor": name}) or 0.0


def test_every_protocol_and_codec_reconnects_when_its_server_returns(
        plane: Daemon, processors: Any, h265: Path, tmp_path: Path) -> None:
    """Server gone -> reconnect attempts; server back -> frames again within 5 s."""
    makers: dict[str, Callable[[int], Any]] = {
        "rtsp-h264": lambda port: RtspServer(Feed(BOTH), port=port),
        "rtsp-h265": lambda port: RtspServer(Feed(h265, "h265"), port=port),
        "rtmp-h264": lambda port: RtmpServer(Feed(BOTH), port=port),
        "srt-h264": lambda port: SrtServer(Feed(BOTH), port=port),
        "srt-h265": lambda port: SrtServer(Feed(h265, "h265"), port=port),
        "tcp-h265": lambda port: SupervisedServer(Feed(h265, "h265"), port=port),
    }
    servers = {name: make(0) for name, make in makers.items()}
    hls = {"hls-h264": HlsServer(Feed(BOTH), tmp_path / "h264"),
           "hls-h265": HlsServer(Feed(h265, "h265"), tmp_path / "h265")}
    try:
        for server in [*servers.values(), *hls.values()]:
            server.start()
        urls = {name: s.url for name, s in {**servers, **hls}.items()}
        readers = {name: processors(name, url) for name, url in urls.items()}
        _wait_records(readers, 5, 40)
        for name, records in readers.items():
            assert len(records.items) >= 5, name
        reconnects = {name: _reconnects(plane, name) for name in urls}
        for server in servers.values():
            server.stop()
        for server in hls.values():
            server.halt_http()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
                _reconnects(plane, n) <= reconnects[n] for n in urls):
            time.sleep(0.1)
        for name in urls:
            assert _reconnects(plane, name) > reconnects[name], name
        servers = {name: makers[name](servers[name].port) for name in servers}
        decoded = {name: _decoded(plane, name) for name in urls}
        back: dict[str, float] = {}  # each server's own return, so the starts do not add up
        returned: dict[str, float] = {}
        lock, looked = threading.Lock(), threading.Event()

        def look() -> None:  # on its own thread: a slow start of the next server adds nothing
            while not looked.wait(0.05):
                with lock:
                    for name, at in back.items():
                        if name not in returned and _decoded(plane, name) > decoded[name]:
                            returned[name] = round(time.monotonic() - at, 2)

        watcher = threading.Thread(target=look, daemon=True)
        watcher.start()
        for name, server in servers.items():
            server.start()
            with lock:
                back[name] = time.monotonic()
        for name, server in hls.items():
            server.serve()
            with lock:
                back[name] = time.monotonic()

        def waiting() -> bool:
            with lock:
                return any(n not in returned and time.monotonic() - back[n] < 5.0
                           for n in urls)

        while waiting():
            time.sleep(0.05)
        looked.set()
        watcher.join(5)
        print("frames again after (s):", returned)
        assert set(returned) == set(urls), f"no frames within 5 s of the return: {returned}"
        assert all(after < 5.0 for after in returned.values()), returned
        _wait_records(readers, 0, 2)
        for name, records in readers.items():
            check_record_times(records)
            desc = client_for(plane.endpoint).describe_stream_processor(Name=name)
            assert desc["Status"] == "RUNNING", (name, desc)
    finally:
        for server in [*servers.values(), *hls.values()]:
            server.stop()


def _reconnects(daemon: Daemon, name: str) -> float:
    return daemon.registry.get_sample_value("streamproc_processor_reconnects_total",
                                            {"processor": name}) or 0.0


def _encode(tmp_path: Path, name: str, args: list[str]) -> bytes:
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args,
                    str(out)], check=True, timeout=60)
    return out.read_bytes()


def test_bad_inputs_end_in_a_clear_failed_reason(plane: Daemon, processors: Any,
                                                 h265: Path, tmp_path: Path) -> None:
    rek = client_for(plane.endpoint)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        create(rek, "gopher", "gopher://127.0.0.1/x", "gopher-out", "cams")
    audio = _encode(tmp_path, "audio.ts", ["-f", "lavfi", "-i", "sine=duration=3", "-c:a",
                                           "mp2", "-f", "mpegts"])
    jxl = _encode(tmp_path, "frames.jxl", ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=5",
                                           "-frames:v", "10", "-c:v", "libjxl", "-f",
                                           "image2pipe"])
    sockets = []
    try:
        audio_server, audio_url = serve_bytes(audio)
        jxl_server, jxl_url = serve_bytes(jxl)
        sockets += [audio_server, jxl_server]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            refused_port = probe.getsockname()[1]  # nothing listens once it is closed
        expected = {
            "audio-only": (audio_url, "has no video stream"),
            "jpegxl": (jxl_url, "codec jpegxl is not supported"),
            "no-dns": ("rtsp://cam.invalid/stream", "Cannot resolve host"),
            "refused": (f"rtsp://127.0.0.1:{refused_port}/stream",
                        "Stream unavailable for"),
            "refused-rtmp": (f"rtmp://127.0.0.1:{refused_port}/live/cam",
                             "connection refused"),
            "unreachable": ("rtsp://192.0.2.1:554/stream", "Stream unavailable for"),
            "bad-transport": ("rtsp://127.0.0.1:9/x?rtsp_transport=quic",
                              "rtsp_transport must be one of"),
        }
        for name, (url, _) in expected.items():
            processors(name, url)
        for name, (_, reason) in expected.items():
            desc = wait_status(rek, name, {"FAILED"}, 45)
            assert desc["Status"] == "FAILED" and reason in desc["StatusMessage"], desc
        # A camera switched from H.264 to H.265 between connections: followed.
        camera = SupervisedServer(Feed(BOTH))
        camera.start()
        records = processors("switched", camera.url)
        _wait_records({"s": records}, 5, 30)
        camera.stop()
        camera = SupervisedServer(Feed(h265, "h265"), port=camera.port)
        camera.start()
        try:
            count = len(records.items)
            _wait_records({"s": records}, count + 10, 30)
        finally:
            camera.stop()
        assert len(records.items) >= count + 10
        assert rek.describe_stream_processor(Name="switched")["Status"] == "RUNNING"
        check_record_times(records)
    finally:
        for sock in sockets:
            sock.close()


class _Silent:
    """Accepts connections (TCP) or datagrams (UDP) and never answers."""

    def __init__(self, udp: bool = False) -> None:
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.contacted = threading.Event()
        self.held: list[socket.socket] = []
        target = self._datagrams if udp else self._accept
        threading.Thread(target=target, daemon=True).start()

    def _accept(self) -> None:
        self.sock.listen(8)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.contacted.set()

    def _datagrams(self) -> None:
        while True:
            try:
                self.sock.recv(2048)
            except OSError:
                return
            self.contacted.set()

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


def _child_ffmpegs() -> list[int]:
    """ffmpeg processes this test process started (SRT relays)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
        if name == "ffmpeg" and int(rest.split()[1]) == os.getpid():
            found.append(int(entry))
    return found


def test_stop_is_prompt_while_each_protocol_blocks(plane: Daemon, processors: Any) -> None:
    rek = client_for(plane.endpoint)
    silent = {"rtsp": _Silent(), "rtmp": _Silent(), "hls": _Silent(), "tcp": _Silent(),
              "srt": _Silent(udp=True)}
    urls = {"rtsp": f"rtsp://127.0.0.1:{silent['rtsp'].port}/stream",
            "rtmp": f"rtmp://127.0.0.1:{silent['rtmp'].port}/live/cam",
            "hls": f"http://127.0.0.1:{silent['hls'].port}/cam.m3u8",
            "tcp": f"tcp://127.0.0.1:{silent['tcp'].port}",
            "srt": f"srt://127.0.0.1:{silent['srt'].port}?mode=caller"}
    try:
        for kind, url in urls.items():
            processors(f"blocked-{kind}", url)
        for kind, server in silent.items():
            assert server.contacted.wait(10), f"the {kind} processor never connected"
        for kind in urls:
            name = f"blocked-{kind}"
            assert rek.describe_stream_processor(Name=name)["Status"] == "STARTING", kind
            started = time.monotonic()
            rek.stop_stream_processor(Name=name)
            assert wait_status(rek, name, {"STOPPED"}, 5)["Status"] == "STOPPED", kind
            assert time.monotonic() - started < 3.5, kind
        # No thread and no relay process outlives its (abandoned) blocking read.
        deadline = time.monotonic() + OPEN_TIMEOUT_S + 3
        while time.monotonic() < deadline and (_source_threads() or _child_ffmpegs()):
            time.sleep(0.1)
        assert not _source_threads() and not _child_ffmpegs()
    finally:
        for server in silent.values():
            server.close()


def _source_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("source-blocked-")]
