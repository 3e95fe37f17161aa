"""RTSP redirects: refused by the loopback relay, never followed by FFmpeg.

A fake RTSP server on 127.0.0.1 answers 3xx pointing at a canary on 127.0.0.2 (blocked in
the allowlist); the canary must receive nothing and the source must fail with the refusal.
Model-free except the last test, which runs the shared daemon end to end.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from streams import BOTH, create, wait_status

from streamproc.config import InputsConfig
from streamproc.dataplane.guard.allowlist import InputAllowlist
from streamproc.dataplane.guard.protocols import SourceError
from streamproc.dataplane.live.rtsp_framing import MalformedReply, ServerFraming, c_int
from streamproc.dataplane.live.rtsp_relay import RtspRelay
from streamproc.dataplane.live.source import read_frames
from streamproc.tools.mediaservers import Feed
from streamproc.tools.sharedservers import RtspServer

Reply = Callable[[str, str], bytes]  # (method, CSeq) -> what the server answers


def _cseq(head: str) -> str:
    for line in head.split("\r\n"):
        if line.lower().startswith("cseq:"):
            return line.split(":", 1)[1].strip()
    return "1"


class _Listener:
    """A TCP listener on ``host`` whose thread hands each connection to ``_handle``."""

    def __init__(self, host: str) -> None:
        self._sock = socket.create_server((host, 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


class FakeRtsp(_Listener):
    """An RTSP server on ``host`` answering each request with ``reply(method, cseq)``."""

    def __init__(self, reply: Reply, host: str = "127.0.0.1") -> None:
        self.reply = reply
        self.requests: list[str] = []
        super().__init__(host)

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        buffer = b""
        conn.settimeout(10)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    text = head.decode("latin-1")
                    self.requests.append(text)
                    conn.sendall(self.reply(text.split(" ", 1)[0], _cseq(text)))


class Canary(_Listener):
    """A listener on a blocked address that records every connection it gets."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.hits: list[bytes] = []
        super().__init__(host)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1)
            try:
                self.hits.append(conn.recv(200))
            except OSError:
                self.hits.append(b"")


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


def redirecting(location: str, status: str = "302 Moved Temporarily",
                on: str = "OPTIONS", eol: str = "\r\n") -> Reply:
    """Answer ``on`` with a redirect to ``location``; other methods as a plain camera."""
    def reply(method: str, cseq: str) -> bytes:
        if method != on:
            extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY\r\n" if method == "OPTIONS" else ""
            sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n"
                   "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n")
            if method == "DESCRIBE":
                extra = f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n"
                return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}\r\n{sdp}".encode()
            return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}\r\n".encode()
        head = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", f"Location: {location}", "", ""]
        return eol.join(head).encode()
    return reply


def guard() -> InputAllowlist:
    """The red team's allowlist: loopback allowed, 127.0.0.2 blocked."""
    return InputAllowlist(InputsConfig(networks=["127.0.0.0/8"],
                                       blocked_networks=["127.0.0.2/32"]))


def read(url: str, shown: str = "rtsp://camera/cam") -> SourceError:
    """Open ``url`` as the worker does (checked, then read); the error it ends with."""
    checked = guard().check(url)
    with pytest.raises(SourceError) as caught:
        for _ in read_frames(checked.url, shown, 5, 5, 5, False, options=checked.options,
                             judge=guard().check):
            pass
    return caught.value


# -- the framing: what FFmpeg would read as a status line, it is read as here ----------------

def test_a_3xx_status_line_is_held_back_and_the_location_read() -> None:
    framing = ServerFraming("10.0.0.5")
    out = framing.feed(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\nRTSP/1.0 30")
    assert out == b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n" and framing.redirect is None
    framing.feed(b"2 Found\r\nLocation: rtsp://u:pw@127.0.0.2/x\r\n\r\n")
    assert framing.redirect is not None and framing.redirect.complete
    assert (framing.redirect.status, framing.redirect.location) == (302, "rtsp://u:pw@127.0.0.2/x")


@pytest.mark.parametrize("line", [
    b"RTSP/1.0 302 Found\n",            # LF only
    b"RT\rSP/1.0 3\r02 Found\r\n",      # every CR is dropped, not only the last
    b"  RTSP/1.0\t+302\tFound\r\n",     # leading blanks, tabs, a sign (atoi)
    b"RTSP/1.0 4294967598 Found\r\n",   # (int)strtol: 2**32 + 302 is 302
    b"RTSP/2.0 0000000000302\r\n",      # leading zeros
    b"\r$\x00\x00\x02abRTSP/1.0 399 X\r\n",  # an interleaved frame where the line starts
])
def test_status_lines_ffmpeg_would_read_as_3xx_are_redirects(line: bytes) -> None:
    framing = ServerFraming("10.0.0.5")
    out = framing.feed(line + b"CSeq: 2\r\n\r\n")
    assert framing.redirect is not None and 300 <= framing.redirect.status < 400
    assert b"RTSP" not in out


@pytest.mark.parametrize("data", [
    b"RTSP/1.0 200 OK\r\nContent-Length: 22\r\n\r\nRTSP/1.0 302 Found\r\n\r\n",  # a body
    b"$\x00\x00\x16RTSP/1.0 302 Found\r\n\r\n",   # an RTP frame's payload
    b"\x00RTSP/1.0 302 Found\r\n",                # a NUL first: an empty line to FFmpeg
    b"RTSP/1.0 200 OK\r\nX: RTSP/1.0 302\r\n\r\n",  # a header, not a status line
    b"SET_PARAMETER rtsp://x RTSP/1.0\r\nCSeq: 3\r\n\r\n",  # a request from the server
    b"RTSP/1.0 3020 Found\r\n\r\n",
])
def test_what_ffmpeg_reads_as_no_3xx_goes_through(data: bytes) -> None:
    framing = ServerFraming("10.0.0.5")
    out = framing.feed(data)
    assert framing.redirect is None and out == data


def test_interleaved_frames_pass_unread_between_and_inside_heads() -> None:
    frame = b"$\x01\x00\x05\r\n\r\n$"
    framing = ServerFraming("10.0.0.5")
    data = frame + b"RTSP/1.0 200 OK\r\n" + frame + b"CSeq: 4\r\n\r\n" + frame
    assert framing.feed(data) == data and framing.redirect is None
    # connecting, FFmpeg reads a head on after a frame inside it: so is the status line
    framing.feed(b"RTSP/1.0 200 OK\r\n$\x00\x00\x01xRTSP/1.0 301 Moved\r\n\r\n")
    assert framing.redirect is None  # the second line of a head is a header, not a status


def test_transport_gets_the_checked_address_as_its_source() -> None:
    framing = ServerFraming("10.0.0.5")
    out = framing.feed(b"RTSP/1.0 200 OK\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;"
                       b"server_port=6000-6001;source=169.254.169.254\r\n\r\n")
    assert out.endswith(b"source=169.254.169.254;source=10.0.0.5\r\n\r\n")
    ok = b"RTSP/1.0 200 OK\r\n"
    for malformed in (b"Transport: x,RTP/AVP;source=1.2.3.4\r\n",  # FFmpeg reads "x,RTP"
                      b"Transport: RTP\r\n", b"X" * 5000):
        with pytest.raises(MalformedReply):
            ServerFraming("10.0.0.5").feed(ok + malformed)


def test_c_int_is_glibc_atoi() -> None:
    assert [c_int(t) for t in ("302", " +302x", "-1", "", "x", "4294967598",
                               "99999999999999999999999")] == [302, 302, -1, 0, 0, 302, -1]


# -- the relay: a redirect fails the source; the canary gets nothing -------------------------

@pytest.mark.parametrize("on, status, eol", [
    ("OPTIONS", "302 Moved Temporarily", "\r\n"),
    ("DESCRIBE", "301 Moved Permanently", "\n"),
    ("SETUP", "4294967598 Found", "\r\n"),
])
def test_an_rtsp_redirect_is_refused_and_never_followed(canary: Canary, on: str, status: str,
                                                        eol: str) -> None:
    target = f"rtsp://admin:hunter2@127.0.0.2:{canary.port}/secret"
    server = FakeRtsp(redirecting(target, status, on, eol))
    try:
        error = read(f"rtsp://127.0.0.1:{server.port}/cam")
        time.sleep(0.5)  # time to connect to the canary, had FFmpeg followed
        assert error.fatal, error
        assert str(error).startswith("Cannot open rtsp://camera/cam: redirected (")
        assert (f"to rtsp://***:***@127.0.0.2:{canary.port}/secret; redirects are not "
                "followed") in str(error)
        assert "hunter2" not in str(error)
        assert canary.hits == []
        assert any(r.startswith(on) for r in server.requests)
    finally:
        server.close()


def test_a_redirect_is_refused_over_udp_too(canary: Canary) -> None:
    server = FakeRtsp(redirecting(f"rtsp://127.0.0.2:{canary.port}/secret", on="SETUP"))
    try:
        error = read(f"rtsp://127.0.0.1:{server.port}/cam?rtsp_transport=udp")
        time.sleep(0.5)
        assert error.fatal and "redirected (302 Moved Temporarily)" in str(error)
        assert canary.hits == []
        setup = next(r for r in server.requests if r.startswith("SETUP"))
        assert "RTP/AVP/UDP" in setup or "RTP/AVP;unicast" in setup
    finally:
        server.close()


def test_the_camera_sees_the_request_through_the_relay_with_userinfo_path_and_query() -> None:
    server = FakeRtsp(lambda method, cseq: f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n"
                      .encode())
    try:
        error = read(f"rtsp://u:p@127.0.0.1:{server.port}/cam/1?channel=2")
        assert error.fatal and "not found" in str(error).lower()
        line = server.requests[0].split("\r\n", 1)[0]
        assert line.startswith("OPTIONS rtsp://127.0.0.1:") and "/cam/1?channel=2 " in line
        assert f":{server.port}/" not in line  # FFmpeg talks to the relay, not the camera
    finally:
        server.close()


def test_a_reply_ffmpeg_could_read_otherwise_ends_the_session_as_a_network_error() -> None:
    def reply(method: str, cseq: str) -> bytes:
        if method != "SETUP":
            return redirecting("unused", on="none")(method, cseq)
        return (f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 1\r\nTransport: x,RTP/AVP/TCP;"
                "interleaved=0-1\r\n\r\n").encode()
    server = FakeRtsp(reply)
    try:
        error = read(f"rtsp://127.0.0.1:{server.port}/cam")
        assert not error.fatal and "names several transports" in str(error), error
    finally:
        server.close()


def test_a_refused_connect_is_still_a_retried_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = read(f"rtsp://127.0.0.1:{port}/cam")
    assert not error.fatal and "connection refused" in str(error)


@pytest.mark.parametrize("auth, transport", [("digest", "tcp"), ("basic", "udp"),
                                             ("digest", "auto")])
def test_a_real_camera_streams_through_the_relay(auth: str, transport: str) -> None:
    """GStreamer's server: auth over the relay's URI, SETUP on one connection, RTP/UDP."""
    camera = RtspServer(Feed(BOTH), auth=auth)
    camera.start()
    try:
        url = camera.login_url("cam", "secret") + f"?rtsp_transport={transport}"
        checked = guard().check(url)
        frames = read_frames(checked.url, "shown", 5, 10, 10, False, options=checked.options)
        got = [frame for _, frame in zip(range(5), frames, strict=False)]
        frames.close()
        assert len(got) == 5 and got[0].image.shape[2] == 3
    finally:
        camera.stop()


def test_the_relay_stops_within_its_timeout_and_closes_its_sockets() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    try:
        relay = RtspRelay(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x", "shown", 5, 30)
        relay.start()
        port = int(relay.url("rtsp://h/x").rsplit(":", 1)[1].split("/")[0])
        ffmpeg = socket.create_connection(("127.0.0.1", port), timeout=2)
        ffmpeg.sendall(b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        deadline = time.monotonic() + 2
        while relay._client is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert relay._client is not None
        with pytest.raises(ConnectionRefusedError):  # one connection only
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        started = time.monotonic()
        assert relay.stop(2.0)
        assert time.monotonic() - started < 1.0 and not relay.running
        assert ffmpeg.recv(10) == b""  # FFmpeg's side sees the end
        assert relay._client.fileno() == -1 and relay._upstream is not None
        assert relay._upstream.fileno() == -1
        ffmpeg.close()
    finally:
        silent.close()


# -- end to end: the processor fails, the canary gets nothing --------------------------------

def test_a_processor_fails_on_an_rtsp_redirect(rek: Any, canary: Canary) -> None:
    server = FakeRtsp(redirecting(f"rtsp://127.0.0.2:{canary.port}/secret"))
    rek.create_collection(CollectionId="rtsp-redirect")
    try:
        create(rek, "rtspredir", f"rtsp://127.0.0.1:{server.port}/cam", "rtspredir-out",
               "rtsp-redirect")
        rek.start_stream_processor(Name="rtspredir")
        desc = wait_status(rek, "rtspredir", {"FAILED"}, 30)
        assert desc["StatusMessage"] == (
            f"Cannot open rtsp://127.0.0.1:{server.port}/cam: redirected (302 Moved "
            f"Temporarily) to rtsp://127.0.0.2:{canary.port}/secret; redirects are not "
            "followed, name the final URL")
        time.sleep(0.5)
        assert canary.hits == []
    finally:
        server.close()
        rek.delete_stream_processor(Name="rtspredir")
        rek.delete_collection(CollectionId="rtsp-redirect")
