"""The inputs allowlist: every spelling trick is judged on the address really connected to."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from streamproc.config import (
    DEFAULT_MEDIA_SCHEMES,
    MEDIA_SCHEMES,
    InputsConfig,
    load_config,
)
from streamproc.dataplane.guard.allowlist import (
    CheckedInput,
    InputAllowlist,
    InputRefused,
    InputUnresolved,
)
from streamproc.dataplane.output.outputs import OutputAllowlist, OutputRefused
from streamproc.processors.urls import is_media_url
from streamproc.tools.broker import free_port

METADATA = "169.254.169.254"


def allowlist(resolver: Any = None, **settings: Any) -> InputAllowlist:
    config = InputsConfig(**settings)
    return InputAllowlist(config, resolver=resolver) if resolver else InputAllowlist(config)


def refused(checker: InputAllowlist, url: str) -> InputRefused:
    with pytest.raises(InputRefused) as err:
        checker.check(url)
    return err.value


@pytest.mark.parametrize("url", [
    f"http://{METADATA}/latest/meta-data/",
    "http://2852039166/",                     # decimal
    "http://0251.0376.0251.0376/",            # octal
    "http://0xa9fea9fe/",                     # hex
    "http://0xa9.0xfe.0xa9.0xfe/",            # dotted hex
    "http://169.254.43518/",                  # a.b.c with a 16-bit tail
    f"http://[::ffff:{METADATA}]/",           # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",           # NAT64
    "http://[fd00:ec2::254]/",                # EC2 IPv6 metadata
    "http://[fe80::1]/",                      # IPv6 link-local
    f"http://camera.example@{METADATA}/",     # userinfo that looks like a host
    f"http://camera.example:80@{METADATA}:80/",
    f"rtsp://a@b@{METADATA}:554/x",           # the last @ ends the userinfo (FFmpeg too)
    f"HTTP://{METADATA}/",
])
def test_metadata_and_link_local_spellings_are_refused(url: str) -> None:
    # Real getaddrinfo: numeric spellings resolve locally, exactly as FFmpeg's open does.
    assert refused(allowlist(), url).rule == "blocked_networks"


def test_names_resolve_to_every_address_and_each_is_checked() -> None:
    answers = {"cam.example": ["10.0.0.5"], "mixed.example": ["10.0.0.6", METADATA],
               "v6.example": ["2001:db8::7"]}
    checker = allowlist(lambda host: answers[host])
    checked = checker.check("rtsp://user:pw@cam.example:8554/live?x=1")
    assert checked == CheckedInput("rtsp://user:pw@10.0.0.5:8554/live?x=1", {}, ("10.0.0.5",))
    err = refused(checker, "rtsp://mixed.example/live")
    assert err.rule == "blocked_networks" and "mixed.example (169.254.169.254)" in err.message
    assert checker.check("http://v6.example/a").url == "http://[2001:db8::7]/a"
    http = checker.check("http://cam.example:8080/mjpeg")
    assert http.url == "http://10.0.0.5:8080/mjpeg"
    assert http.options == {"max_redirects": "0", "headers": "Host: cam.example:8080\r\n"}


def test_explicit_listing_allows_a_blocked_address_and_networks_restrict() -> None:
    checker = allowlist(networks=["10.0.0.0/8", "169.254.10.0/24"])
    assert checker.check("rtsp://169.254.10.9/s").addresses == ("169.254.10.9",)
    assert refused(checker, f"rtsp://{METADATA}/s").rule == "networks"
    assert refused(checker, "rtsp://192.168.1.2/s").rule == "networks"
    wide = allowlist(networks=["0.0.0.0/0", "169.254.0.0/16"])
    assert wide.check(f"http://{METADATA}/").addresses == (METADATA,)


def test_hosts_schemes_and_listening_urls() -> None:
    checker = allowlist(lambda host: ["10.1.2.3"], hosts=["*.cams.example", "door?.local"],
                        schemes=["rtsp", "tcp"])
    assert checker.check("rtsp://a.cams.example/s").url == "rtsp://10.1.2.3/s"
    assert checker.check("rtsp://DOOR1.local/s").url == "rtsp://10.1.2.3/s"
    assert refused(checker, "rtsp://door12.local/s").rule == "hosts"
    assert refused(checker, "rtsp://cams.example.evil/s").rule == "hosts"
    assert refused(checker, "http://a.cams.example/s").rule == "schemes"
    assert refused(checker, "gopher://a.cams.example/").rule == "schemes"
    assert refused(checker, "tcp://10.1.2.3:9000?listen=1").rule == "schemes"
    assert refused(allowlist(), "srt://10.1.2.3:9000?mode=listener").rule == "schemes"
    assert refused(checker, "rtsp:///nohost").rule == "hosts"
    assert refused(checker, "rtsp://10.1.2.3:99999/s").rule == "schemes"  # bad port


def test_unresolvable_names_are_reported_not_allowed() -> None:
    with pytest.raises(InputUnresolved):
        allowlist().check("rtsp://does-not-exist.invalid/s")


def test_file_paths_only_under_media_roots(tmp_path: Path) -> None:
    media, outside = tmp_path / "media", tmp_path / "private"
    media.mkdir()
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    (media / "escape.mp4").symlink_to(outside / "secret.mp4")
    (media / "ok.mp4").write_bytes(b"x")
    checker = allowlist(media_roots=[media])
    assert checker.check(str(media / "ok.mp4")).url == str(media / "ok.mp4")
    assert checker.check(f"file://{media}/ok.mp4").url == str(media / "ok.mp4")
    for bad in (str(media / ".." / "private" / "secret.mp4"), str(media / "escape.mp4"),
                "/etc/passwd", "file:///etc/passwd", f"file://otherhost{media}/ok.mp4",
                f"{media}x/a.mp4"):
        assert refused(checker, bad).rule == "media_roots", bad
    assert refused(allowlist(), str(media / "ok.mp4")).rule == "media_roots"  # no roots
    # The refusal names the path as given, never where a link leads (/proc/self/cwd ...).
    assert refused(checker, str(media / "escape.mp4")).message == \
        f"{media}/escape.mp4 is not under a configured media root"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records each GET's Host; redirects to ``location`` when the server has one."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.headers.get("Host", ""))  # type: ignore[attr-defined]
        location = self.server.location  # type: ignore[attr-defined]
        self.send_response(302 if location else 404)
        if location:
            self.send_header("Location", location)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def recording_server(location: str | None = None) -> Any:
    """An HTTP server on 127.0.0.1 that records Host headers and redirects to ``location``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.hits, server.location = [], location  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def http_server() -> Iterator[Any]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(location: str | None = None) -> Any:
        servers.append(recording_server(location))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_redirect_from_an_allowed_source_is_not_followed(http_server: Any) -> None:
    """FFmpeg, given what the allowlist hands it, refuses a redirect instead of following it.

    ``forbidden`` stands for the address the redirect points at (a metadata service, say):
    with the checked URL and options nothing ever reaches it; without the options, FFmpeg
    follows the redirect there, which is what the options prevent.
    """
    forbidden = http_server()
    allowed = http_server(f"http://127.0.0.1:{forbidden.server_address[1]}/latest/meta-data/")
    port = allowed.server_address[1]
    checked = allowlist(lambda host: ["127.0.0.1"]).check(f"http://camera.test:{port}/v.ts")
    assert checked.url == f"http://127.0.0.1:{port}/v.ts"
    with pytest.raises(av.error.OSError):
        av.open(checked.url, options=checked.options, timeout=(3, 3))
    assert allowed.hits == [f"camera.test:{port}"]  # the Host header names the camera
    assert forbidden.hits == []
    with pytest.raises(av.error.HTTPNotFoundError):
        av.open(checked.url, timeout=(3, 3))
    assert len(forbidden.hits) == 1


# ---- URLs judged as FFmpeg reads them ---------------------------------------------------------

def _ffmpeg_listens(url: str, port: int) -> bool:
    """Whether FFmpeg, opening ``url``, accepts a TCP connection on 127.0.0.1:``port``."""
    opened = threading.Thread(target=_open_quietly, args=(url,), daemon=True)
    opened.start()
    deadline = time.monotonic() + 3
    listening = False
    while time.monotonic() < deadline and not listening:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            listening = True
        except OSError:
            time.sleep(0.05)
    opened.join(5)
    return listening


def _open_quietly(url: str) -> None:
    try:
        av.open(url, timeout=(2, 2)).close()
    except (av.error.FFmpegError, OSError):
        pass


@pytest.mark.parametrize("suffix", ["#?listen=1", "#x?listen=1", "?%6cisten=1",
                                    "?listen%00x=1", "?a=1&listen=1"])
def test_urls_that_make_ffmpeg_listen_are_refused(suffix: str) -> None:
    """The premise on the FFmpeg PyAV links: each URL makes it listen. The allowlist refuses it."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}{suffix}"
    assert _ffmpeg_listens(url, port), "FFmpeg did not listen: the premise changed"
    assert refused(allowlist(), url).rule == "schemes"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _udp_port_held(port: int, within_s: float) -> bool:
    """Whether something binds UDP ``port`` on every interface within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("suffix", ["?latency=20#&mode=listener", "#?mode=listener"])
def test_srt_urls_that_make_ffmpeg_listen_are_refused(suffix: str) -> None:
    """The premise on the system ffmpeg that reads SRT (``dataplane.live.relay``): it listens."""
    port = _free_udp_port()
    url = f"srt://127.0.0.1:{port}{suffix}"
    relay = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "quiet", "-nostdin",
                              "-i", url, "-f", "null", "-"])
    try:
        assert _udp_port_held(port, 5), "ffmpeg did not listen: the premise changed"
    finally:
        relay.kill()
        relay.wait()
    assert refused(allowlist(), url).rule == "schemes"


def test_fragments_are_refused() -> None:
    """FFmpeg's protocols read options after the first '?' anywhere, a fragment included."""
    checker = allowlist(lambda host: ["10.1.2.3"])
    for url in ("tcp://10.1.2.3:9000#?listen=1", "tcp://0.0.0.0:9000#?listen=1",
                "srt://10.1.2.3:9000?latency=20#&mode=listener",
                "http://cam.example/live.m3u8#t=10", "https://cam.example/a.ts#",
                "rtsp://cam.example/s#frag", "rtmp://cam.example/app/s#x"):
        err = refused(checker, url)
        assert err.rule == "schemes" and "fragment" in err.message, url


@pytest.mark.parametrize("url", [
    "tcp://10.1.2.3:9000?listen=1",
    "tcp://10.1.2.3:9000?a=1&listen=1",          # every key counts, not the first one
    "tcp://10.1.2.3:9000?listen=0",              # whatever the value (2: several clients)
    "tcp://10.1.2.3:9000/path?listen",
    "tcp://10.1.2.3:9000?%6cisten=1",            # FFmpeg percent-decodes option names ...
    "tcp://10.1.2.3:9000?%6C%69sten=1",
    "tcp://10.1.2.3:9000?listen%00x=1",          # ... and a C string ends at the NUL
    "tcp://10.1.2.3:9000?LISTEN=1",              # FFmpeg's names are lower case; refused too
    "tcp://10.1.2.3:9000?listen_timeout=1000",
    "tcp://10.1.2.3:9000?local_addr=0.0.0.0",
    "tcp://10.1.2.3:9000?local_port=80",
    "srt://10.1.2.3:9000?mode=listener",
    "srt://10.1.2.3:9000?mode=rendezvous",
    "srt://10.1.2.3:9000?latency=20&mode=Listener",
    "srt://10.1.2.3:9000?mode=%6cistener",
    "srt://10.1.2.3:9000?mode=listener%00",
    "rtmp://10.1.2.3/app/s?listen=1",
    "rtmp://10.1.2.3/app/s?rtmp_listen=1",
    "rtmps://10.1.2.3/app/s?rtmp_listen=1",
    "http://10.1.2.3/?listen=1",
    "https://10.1.2.3/?listen=1",
    "rtsp://10.1.2.3/s?listen",
])
def test_options_that_make_ffmpeg_listen_or_bind_are_refused(url: str) -> None:
    err = refused(allowlist(), url)
    assert err.rule == "schemes" and "would make the daemon" in err.message


@pytest.mark.parametrize("url", [
    "srt://10.1.2.3:9000?mode=caller&latency=20",
    "http://10.1.2.3/cgi-bin/video.cgi?mode=listener",  # HTTP reads no mode: the camera's
    "rtsp://10.1.2.3/s?rtsp_transport=udp",
    "tcp://10.1.2.3:9000?timeout=5000000",
    "rtmp://10.1.2.3/app/s?token=abc",
])
def test_client_options_pass(url: str) -> None:
    assert allowlist().check(url).url == url


def test_media_schemes_have_one_owner_and_the_default_leaves_out_udp_and_file(
        tmp_path: Path) -> None:
    """The API's form check and the default inputs.schemes read the same list."""
    assert set(MEDIA_SCHEMES) - set(DEFAULT_MEDIA_SCHEMES) == {"udp", "file"}
    assert InputsConfig().schemes == [s for s in MEDIA_SCHEMES if s not in ("udp", "file")]
    for scheme in MEDIA_SCHEMES:
        assert is_media_url(f"{scheme.upper()}://cam.example/s"), scheme
    assert not is_media_url("gopher://cam.example/s") and is_media_url("/videos/a.mp4")
    # file: is judged by media_roots, never by scheme, so it needs no place in the default.
    video = tmp_path / "a.mp4"
    video.write_bytes(b"")
    assert allowlist(media_roots=[tmp_path]).check(f"file:{video}").url == str(video)


def test_udp_inputs_listen_so_only_a_listed_scheme_allows_them() -> None:
    """A udp:// input binds its port on every interface and takes datagrams from anyone."""
    port = _free_udp_port()
    opened = threading.Thread(target=_open_quietly, args=(f"udp://127.0.0.1:{port}",),
                              daemon=True)
    opened.start()
    assert _udp_port_held(port, 2)  # the premise: FFmpeg holds 0.0.0.0:port
    opened.join(5)
    err = refused(allowlist(), "udp://0.0.0.0:5000")
    assert err.rule == "schemes" and "listens" in err.message
    udp = allowlist(schemes=["udp"])
    assert udp.check("udp://239.1.1.1:5000").url == "udp://239.1.1.1:5000"
    for url in ("udp://239.1.1.1:5000?localport=6000", "udp://239.1.1.1:5000?local_port=6000",
                "udp://239.1.1.1:5000?localaddr=10.0.0.1"):
        assert refused(udp, url).rule == "schemes", url


def test_a_connect_to_the_unspecified_address_reaches_loopback() -> None:
    """The premise of judging 0.0.0.0 as 127.0.0.1: the kernel connects it to the local host."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        socket.create_connection(("0.0.0.0", server.getsockname()[1]), timeout=2).close()
    finally:
        server.close()


@pytest.mark.parametrize("url", [
    "tcp://0.0.0.0:9000", "tcp://0:9000", "tcp://0.1.2.3:9000", "http://0x0/",
    "http://[::]:8080/", "rtsp://[0:0:0:0:0:0:0:0]/s", "http://[::ffff:0.0.0.0]/",
    "http://[::ffff:0:0]/",
])
def test_unspecified_addresses_are_judged_as_loopback(url: str) -> None:
    loopback_blocked = allowlist(blocked_networks=["127.0.0.0/8", "::1/128"])
    err = refused(loopback_blocked, url)
    assert err.rule == "blocked_networks" and "reaches" in err.message
    assert refused(allowlist(networks=["10.0.0.0/8", "2001:db8::/32"]), url).rule == "networks"
    assert allowlist().check(url).addresses  # loopback is not blocked by default


# ---- outputs ----------------------------------------------------------------------------------

def test_output_topics_match_patterns_and_internal_ones_never_do() -> None:
    """``check_topic`` is what a job's notice (on a cluster the config chose) is judged by."""
    outputs = OutputAllowlist.for_config(load_config(None, {
        "kafka.bootstrap": "k:9092",
        "outputs.topics": ["faces-*", "door?", "__*", "_*", "*.state"]}))
    outputs.check("k:9092", "faces-lobby")
    outputs.check_topic("door1")
    outputs.check_topic("edge.state")  # another cluster id's name is an ordinary topic
    for topic in ("other", "door12", "Faces-lobby"):
        with pytest.raises(OutputRefused, match="matches no allowed topic pattern") as err:
            outputs.check_topic(topic)
        assert err.value.rule == "topics"
    for topic in ("__consumer_offsets", "__transaction_state", "_schemas",
                  "_confluent-metrics", "streamproc.state", "streamproc.placement"):
        with pytest.raises(OutputRefused, match=f"^topic {topic} is internal"):
            outputs.check_topic(topic)
    with pytest.raises(OutputRefused, match="^cluster k:9093 is not configured") as err:
        outputs.check("k:9093", "faces-lobby")
    assert err.value.rule == "clusters"
