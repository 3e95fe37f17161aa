"""The inputs allowlist: every spelling trick is judged on the address really connected to."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from streamproc.config import InputsConfig
from streamproc.dataplane.allowlist import (
    CheckedInput,
    InputAllowlist,
    InputRefused,
    InputUnresolved,
)

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
