"""What FFmpeg opens after the first URL: HLS segments, variant playlists, redirects.

Real playlists and segments (ffmpeg, from a shared clip) on disk and on HTTP servers on
127.0.0.1 and 127.0.0.2; the inputs allowlist judges every URL a source makes FFmpeg open.
Model-free: sources are read with ``read_frames`` and stored videos with ``StoredVideo``.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import VIDEO

from streamproc.config import InputsConfig
from streamproc.dataplane.guard.allowlist import InputAllowlist
from streamproc.dataplane.live.source import SourceError, read_frames
from streamproc.dataplane.stored.video import StoredVideo, VideoRejected

CLIP = VIDEO / "head-pose-face-detection-female-and-male.mp4"
HEAD = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n")


def playlist(*entries: str) -> str:
    """A VOD playlist naming ``entries`` as its segments."""
    return HEAD + "".join(f"#EXTINF:1.0,\n{e}\n" for e in entries) + "#EXT-X-ENDLIST\n"


def make_hls(folder: Path, seconds: int = 3) -> Path:
    """``folder``/cam.m3u8 and its 1 s segments cam0.ts, cam1.ts, ... (ffmpeg, from CLIP)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-t", str(seconds), "-i", str(CLIP), "-an", "-c:v", "libx264",
                    "-preset", "ultrafast", "-vf", "scale=320:-2",
                    "-force_key_frames", "expr:gte(t,n_forced*1)", "-f", "hls",
                    "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "vod",
                    str(folder / "cam.m3u8")], check=True, timeout=60)
    assert len(list(folder.glob("cam*.ts"))) >= 2
    return folder / "cam.m3u8"


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with cam.m3u8 and its segments."""
    return make_hls(tmp_path_factory.mktemp("hls")).parent


@pytest.fixture
def media(tmp_path: Path, segments: Path) -> Path:
    """A media root holding a copy of the playlist and segments; ``../outside`` beside it."""
    root = tmp_path / "media"
    shutil.copytree(segments, root)
    (tmp_path / "outside").mkdir()
    shutil.copy(segments / "cam0.ts", tmp_path / "outside" / "secret.ts")
    return root


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; records (Host, path); answers ``redirects`` paths with a 302."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server: Any = self.server
        server.hits.append((self.headers.get("Host", ""), self.path))
        if self.path in server.redirects:
            self.send_response(302)
            self.send_header("Location", server.redirects[self.path])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[..., Any]]:
    """Start HTTP servers of a folder: serve(folder, address="127.0.0.1", redirects={})."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path, address: str = "127.0.0.1",
              redirects: dict[str, str] | None = None) -> Any:
        def handler(*args: Any) -> _Files:
            return _Files(*args, directory=str(folder))

        server: Any = http.server.ThreadingHTTPServer((address, 0), handler)
        server.hits, server.redirects = [], redirects or {}
        server.url = f"http://{address}:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def frames(url: str, guard: InputAllowlist) -> int:
    """How many frames a source gives, its URL judged and every further open too."""
    checked = guard.check(url)
    return sum(1 for _ in read_frames(checked.url, url, 5, 5, 5, False,
                                      options=checked.options, judge=guard.check))


def refusal(url: str, guard: InputAllowlist) -> str:
    """The fatal SourceError a source ends with."""
    with pytest.raises(SourceError) as err:
        frames(url, guard)
    assert err.value.fatal, str(err.value)
    return str(err.value)


def roots(*folders: Path, **settings: Any) -> InputAllowlist:
    """The inputs allowlist with ``folders`` as media roots."""
    return InputAllowlist(InputsConfig(media_roots=list(folders), **settings))


# ---- local playlists -------------------------------------------------------------------------


def test_a_local_playlist_plays_its_own_segments(media: Path) -> None:
    opened: list[str] = []
    guard = roots(media)
    judge = guard.check

    def recording(url: str) -> Any:
        opened.append(url)
        return judge(url)

    guard.check = recording  # type: ignore[method-assign]
    assert frames(str(media / "cam.m3u8"), guard) > 5
    segments = sorted(p.name for p in media.glob("cam*.ts"))
    assert [Path(u).name for u in opened] == ["cam.m3u8", *segments]  # each one judged


@pytest.mark.parametrize("entry", ["../outside/secret.ts", "{outside}/secret.ts",
                                   "file://{outside}/secret.ts", "link.ts"])
def test_a_local_playlist_cannot_name_a_file_outside_the_media_roots(media: Path,
                                                                     entry: str) -> None:
    outside = media.parent / "outside"
    (media / "link.ts").symlink_to(outside / "secret.ts")
    (media / "evil.m3u8").write_text(playlist("cam0.ts", entry.format(outside=outside)))
    message = refusal(str(media / "evil.m3u8"), roots(media))
    assert message.startswith(f"Input refused by inputs.media_roots: {media}/evil.m3u8 names ")
    assert message.endswith("is not under a configured media root")
    if entry == "link.ts":  # refused, without saying where the link leads
        assert message.endswith(f"names {media}/link.ts: {media}/link.ts is not under a "
                                "configured media root")
        assert str(outside) not in message
    else:
        assert "secret.ts is not under" in message


def test_a_local_playlist_cannot_make_ffmpeg_fetch_urls(media: Path, serve: Any) -> None:
    server = serve(media)
    (media / "evil.m3u8").write_text(playlist(f"{server.url}/cam0.ts"))
    message = refusal(str(media / "evil.m3u8"), roots(media))
    assert message.endswith(f"names {server.url}/cam0.ts: a local source may open local "
                            "files only")
    assert server.hits == []


def test_without_a_judge_a_source_opens_its_own_url_only(media: Path) -> None:
    with pytest.raises(SourceError, match="may open nothing but its own URL"):
        sum(1 for _ in read_frames(str(media / "cam.m3u8"), "cam", 5, 5, 5, False))


# ---- network playlists -----------------------------------------------------------------------


def test_an_http_playlist_plays_each_segment_from_the_checked_host(media: Path,
                                                                   serve: Any) -> None:
    server = serve(media)
    port = server.server_address[1]
    guard = InputAllowlist(InputsConfig(hosts=["camera.test"]),
                           resolver=lambda host: ["127.0.0.1"])
    assert frames(f"http://camera.test:{port}/cam.m3u8", guard) > 5
    paths = [path for _, path in server.hits]
    assert paths[0] == "/cam.m3u8" and {"/cam0.ts", "/cam1.ts"} <= set(paths)
    assert {host for host, _ in server.hits} == {f"camera.test:{port}"}


def test_segments_on_a_blocked_network_are_refused_not_fetched(media: Path,
                                                               serve: Any) -> None:
    blocked = serve(media, "127.0.0.2")
    server = serve(media)
    (media / "evil.m3u8").write_text(playlist("cam0.ts", f"{blocked.url}/cam1.ts"))
    guard = roots(blocked_networks=["127.0.0.2/32"])
    message = refusal(f"{server.url}/evil.m3u8", guard)
    assert message == (f"Input refused by inputs.blocked_networks: {server.url}/evil.m3u8 "
                       f"names {blocked.url}/cam1.ts: 127.0.0.2 is in blocked network "
                       "127.0.0.2/32")
    assert blocked.hits == []


def test_a_variant_playlist_on_a_host_not_allowed_is_refused(media: Path, serve: Any) -> None:
    other = serve(media)
    server = serve(media)
    port = server.server_address[1]
    (media / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\n"
        f"http://elsewhere.test:{other.server_address[1]}/cam.m3u8\n")
    guard = InputAllowlist(InputsConfig(hosts=["camera.test"]),
                           resolver=lambda host: ["127.0.0.1"])
    message = refusal(f"http://camera.test:{port}/master.m3u8", guard)
    assert message.startswith("Input refused by inputs.hosts: ")
    assert message.endswith("host elsewhere.test matches no allowed host pattern")
    assert other.hits == []


def test_a_redirected_segment_is_refused_not_followed(media: Path, serve: Any) -> None:
    target = serve(media, "127.0.0.2")
    server = serve(media, redirects={"/cam1.ts": f"{target.url}/cam1.ts"})
    message = refusal(f"{server.url}/cam.m3u8", roots())
    assert message == (f"Cannot open {server.url}/cam.m3u8: {server.url}/cam1.ts: redirected "
                       "(302 Found); redirects are not followed, name the final URL")
    assert target.hits == []


def test_a_network_playlist_cannot_name_local_files(media: Path, serve: Any) -> None:
    server = serve(media)
    (media / "evil.m3u8").write_text(playlist(f"file://{media}/cam0.ts"))
    message = refusal(f"{server.url}/evil.m3u8", roots(media))
    assert message.endswith(f"names file://{media}/cam0.ts: an HTTP source may open "
                            "HTTP(S) URLs only")


def test_a_tcp_stream_that_probes_as_a_playlist_opens_nothing_else(media: Path,
                                                                   serve: Any) -> None:
    server = serve(media)
    text = playlist(f"{server.url}/cam0.ts").encode()
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(text)
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(SourceError):
            frames(f"tcp://127.0.0.1:{listener.getsockname()[1]}/x.m3u8", roots())
    finally:
        listener.close()
    assert server.hits == []  # protocol_whitelist: a tcp source opens tcp only


# ---- stored videos ---------------------------------------------------------------------------


def test_a_stored_playlist_reads_only_the_objects_beside_it(media: Path) -> None:
    with StoredVideo(media / "cam.m3u8", "vids/cam.m3u8", 5, 60) as video:
        assert sum(1 for _ in video.frames(threading.Event())) > 5
    for entry in ("../outside/secret.ts", f"{media.parent}/outside/secret.ts"):
        (media / "evil.m3u8").write_text(playlist("cam0.ts", entry))
        with pytest.raises(VideoRejected) as err:
            with StoredVideo(media / "evil.m3u8", "vids/evil.m3u8", 5, 60) as video:
                sum(1 for _ in video.frames(threading.Event()))
        assert str(err.value) == (
            "Unsupported codec/format: vids/evil.m3u8 names a file outside its own folder, "
            "or a URL (a playlist may name only the objects beside it)")
        assert str(media.parent) not in str(err.value)  # no server paths shown


# ---- how HTTP sources are fetched ------------------------------------------------------------


class _Ranges(http.server.BaseHTTPRequestHandler):
    """Serves ``server.body`` with Accept-Ranges, answering ``Range: bytes=N-`` with a 206."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server: Any = self.server
        body, wanted = server.body, self.headers.get("Range", "")
        server.hits.append(wanted)
        start = int(wanted[len("bytes="):].rstrip("-")) if wanted else 0
        self.send_response(206 if wanted else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args: Any) -> None:
        pass


def test_an_mp4_with_its_index_at_the_end_plays_over_http_by_ranges(tmp_path: Path) -> None:
    clip = tmp_path / "tail.mp4"  # without +faststart the moov box comes last
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-t", "2",
                    "-i", str(CLIP), "-an", "-c:v", "libx264", "-preset", "ultrafast",
                    str(clip)], check=True, timeout=60)
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    server.body, server.hits = clip.read_bytes(), []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert frames(f"http://127.0.0.1:{server.server_address[1]}/tail.mp4", roots()) > 5
    finally:
        server.shutdown()
        server.server_close()
    assert any(hit.startswith("bytes=") and hit != "bytes=0-" for hit in server.hits)  # a seek


def test_https_sources_send_the_checked_name_as_sni(media: Path, tmp_path: Path) -> None:
    import ssl

    import trustme

    cert = trustme.CA().issue_cert("camera.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment]

    def handler(*args: Any) -> _Files:
        return _Files(*args, directory=str(media))

    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.hits, server.redirects = [], {}
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    guard = InputAllowlist(InputsConfig(hosts=["camera.test"]),
                           resolver=lambda host: ["127.0.0.1"])
    try:
        assert frames(f"https://camera.test:{port}/cam.m3u8", guard) > 5
    finally:
        server.shutdown()
        server.server_close()
    assert names and set(names) == {"camera.test"}  # connected by address, named by SNI
    assert {host for host, _ in server.hits} == {f"camera.test:{port}"}


def test_credentials_in_an_http_url_are_sent_to_the_checked_host(media: Path,
                                                                 serve: Any) -> None:
    import base64

    class _Locked(_Files):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(
                    b"cam:s3cret").decode():
                self.send_response(401)
                self.end_headers()
                return
            super().do_GET()

    server: Any = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *args: _Locked(*args, directory=str(media)))
    server.hits, server.redirects = [], {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert frames(f"http://cam:s3cret@127.0.0.1:{port}/cam.m3u8", roots()) > 5
        message = refusal(f"http://cam:wrong@127.0.0.1:{port}/cam.m3u8", roots())
    finally:
        server.shutdown()
        server.server_close()
    assert message == (f"Cannot open http://cam:wrong@127.0.0.1:{port}/cam.m3u8: "
                       "authentication failed (401 Unauthorized)")


def test_a_missing_file_under_a_root_fails_at_once(media: Path) -> None:
    assert refusal(str(media / "gone.mp4"), roots(media)) == (
        f"Cannot open {media}/gone.mp4: No such file or directory")
