"""The console's live match feed and current frame over real HTTP from a real daemon.

A daemon with auth on, a real broker, a processor on a live ffmpeg stream of two people
with one of them enrolled: ``/console/feed/<name>`` (Server-Sent Events) says hello, then
brings the published records with their faces' crops; ``/console/frame/<name>`` gives the
current frame. Refusals (no session, a key that may not describe the processor, too many
feeds), the end of a feed when its session ends or the node stops, and a daemon stopping
with a feed open.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from console_browser import keyed_client, keyed_daemon
from streams import WOMAN, create, enrol, remove_processor, wait_status

from streamproc.console import feed as feed_module
from streamproc.daemon import Daemon
from streamproc.tools.livestream import LoopingStream

pytestmark = pytest.mark.e2e

ADMIN_ID, ADMIN_SECRET = "AKIDFEEDADMIN0000001", "admin/feed+SECRET-1"
READER_ID, READER_SECRET = "AKIDFEEDREADER000001", "reader/feed+SECRET-2"
# May describe the processors but not read the collection their records name.
DESCRIBER_ID, DESCRIBER_SECRET = "AKIDFEEDDESCRIBER001", "describer/feed+SECRET-3"
WATCHER_ID, WATCHER_SECRET = "AKIDFEEDWATCHER00001", "watcher/feed+SECRET-4"
POLICIES: dict[str, object] = {
    READER_ID: {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rekognition:List*"], "Resource": "*"}]},
    DESCRIBER_ID: {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rekognition:DescribeStreamProcessor"], "Resource": "*"}]},
    WATCHER_ID: {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rekognition:DescribeStreamProcessor",
                                       "rekognition:ListFaces"], "Resource": "*"}]}}
MAX_FEEDS = 3
PROCESSOR = "feedcam"
IDLE = "feedidle"  # created, never started
READ_S = 30.0  # a socket read that waits longer than this fails the test, never hangs it


class Events:
    """The events of one open feed, read off the socket as they come."""

    def __init__(self, http: requests.Session, url: str) -> None:
        self.response = http.get(url, stream=True, timeout=(5, READ_S))
        self._lines: Iterator[str] = (
            str(line, "utf-8") if isinstance(line, bytes) else line
            for line in self.response.iter_lines(decode_unicode=True))
        self.comments: list[str] = []

    def next(self) -> tuple[str, Any]:
        """The next event's name and data (comments are kept aside); StopIteration at end."""
        name, data = "message", ""
        for line in self._lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = line[len("data: "):]
            elif line == "" and data:
                return name, json.loads(data)
        raise StopIteration

    def next_line(self) -> str:
        """The next non-blank line as it came on the wire (comments included)."""
        for line in self._lines:
            if line:
                return line
        raise StopIteration

    def until(self, wanted: str, timeout: float) -> tuple[str, Any]:
        """Read events up to the first ``wanted`` (or ``end``) one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            name, data = self.next()
            if name in (wanted, "end"):
                return name, data
        pytest.fail(f"no {wanted} event within {timeout} s")

    def close(self) -> None:
        self.response.close()


def sign_in(daemon: Daemon, key: str | None = None, secret: str | None = None
            ) -> tuple[requests.Session, str]:
    """A console session (cookie held by the requests session) and its CSRF token."""
    http = requests.Session()
    body = {} if key is None else {"AccessKeyId": key, "SecretAccessKey": secret}
    answer = http.post(f"{daemon.endpoint}/console/session", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return http, answer.json()["csrf"]


def jpeg_side(data: bytes) -> tuple[int, int]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image.shape[0], image.shape[1]


def wait_for(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, broker: Any) -> Iterator[Daemon]:
    """A keyed daemon running PROCESSOR on a live stream of two people, the woman enrolled."""
    home = tmp_path_factory.mktemp("feed")
    d = keyed_daemon(home, {ADMIN_ID: ADMIN_SECRET, READER_ID: READER_SECRET,
                            DESCRIBER_ID: DESCRIBER_SECRET, WATCHER_ID: WATCHER_SECRET},
                     POLICIES, **{"kafka.bootstrap": broker.bootstrap,
                                  "console.max_feeds": MAX_FEEDS,
                                  "console.max_feeds_per_key": MAX_FEEDS - 1})
    d.start()
    stream = LoopingStream(WOMAN)
    stream.start()
    rek = keyed_client(d, ADMIN_ID, ADMIN_SECRET)
    try:
        rek.create_collection(CollectionId="feed-people")
        assert enrol(rek, "feed-people", WOMAN, "woman-W") >= 2
        create(rek, PROCESSOR, stream.url, "feed-out", "feed-people")
        create(rek, IDLE, "rtsp://127.0.0.1:9/idle", "feed-idle-out", "feed-people")
        rek.start_stream_processor(Name=PROCESSOR)
        assert wait_status(rek, PROCESSOR, {"RUNNING"})["Status"] == "RUNNING"
        yield d
    finally:
        remove_processor(rek, PROCESSOR)
        remove_processor(rek, IDLE)
        stream.stop()
        d.stop()


def test_refusals_without_a_session_or_permission(watched: Daemon) -> None:
    base = watched.endpoint
    for path in (f"/console/feed/{PROCESSOR}", f"/console/frame/{PROCESSOR}"):
        answer = requests.get(base + path, timeout=10)
        assert answer.status_code == 403
        assert answer.json()["__type"] == "AccessDeniedException"
        assert "sign in" in answer.json()["Message"]
    reader, _ = sign_in(watched, READER_ID, READER_SECRET)
    for path in (f"/console/feed/{PROCESSOR}", f"/console/frame/{PROCESSOR}"):
        answer = reader.get(base + path, timeout=10)
        assert answer.status_code == 403, answer.text
        assert answer.json()["__type"] == "AccessDeniedException"
        assert "DescribeStreamProcessor" in answer.json()["Message"]
    # Describe alone is not enough: the records name the collection's faces.
    describer, _ = sign_in(watched, DESCRIBER_ID, DESCRIBER_SECRET)
    for path in (f"/console/feed/{PROCESSOR}", f"/console/frame/{PROCESSOR}"):
        answer = describer.get(base + path, timeout=10)
        assert answer.status_code == 403, answer.text
        assert "ListFaces on collection feed-people" in answer.json()["Message"]
    admin, _ = sign_in(watched, ADMIN_ID, ADMIN_SECRET)
    answer = admin.get(base + "/console/feed/" + "x" * 200, timeout=10)
    assert answer.status_code == 400 and answer.json()["__type"] == "InvalidParameterException"
    assert ADMIN_SECRET not in answer.text
    refused = watched.registry.get_sample_value("streamproc_console_refused_total",
                                                {"reason": "not_allowed"})
    assert refused == 4
    # HEAD would subscribe (or wait for a frame) with no body to send: refused.
    for path in (f"/console/feed/{PROCESSOR}", f"/console/frame/{PROCESSOR}"):
        assert admin.head(base + path, timeout=10).status_code == 405
    assert watched.registry.get_sample_value("streamproc_console_feeds") == 0


def test_hello_then_matches_with_their_crops(watched: Daemon) -> None:
    admin, _ = sign_in(watched, ADMIN_ID, ADMIN_SECRET)
    events = Events(admin, f"{watched.endpoint}/console/feed/{PROCESSOR}")
    try:
        assert events.response.headers["content-type"].startswith("text/event-stream")
        assert events.next() == ("hello", {"processor": PROCESSOR, "here": True})
        matched = None
        deadline = time.monotonic() + 40
        while matched is None and time.monotonic() < deadline:
            name, data = events.until("match", 40)
            assert name == "match", data
            faces = data["record"]["FaceSearchResponse"]
            assert len(data["crops"]) == len(faces)
            assert data["dropped"] >= 0 and abs(data["at"] - time.time() * 1000) < 30_000
            for crop in data["crops"]:
                assert crop is not None and crop.startswith("data:image/jpeg;base64,")
                assert max(jpeg_side(base64.b64decode(crop.split(",", 1)[1]))) <= 160
            if any(m["Face"].get("ExternalImageId") == "woman-W"
                   for f in faces for m in f["MatchedFaces"]):
                matched = data
        assert matched is not None, "the enrolled woman was never matched in the feed"
        assert watched.registry.get_sample_value("streamproc_console_feeds") == 1
    finally:
        events.close()
    # The client went: its subscription ends with it.
    assert wait_for(lambda: watched.registry.get_sample_value("streamproc_console_feeds") == 0,
                    10)


def test_a_processor_not_running_here_is_not_here_and_keepalives_flow(
        watched: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "KEEPALIVE_S", 0.5)
    admin, _ = sign_in(watched, ADMIN_ID, ADMIN_SECRET)
    events = Events(admin, f"{watched.endpoint}/console/feed/{IDLE}")
    try:
        assert events.next() == ("hello", {"processor": IDLE, "here": False})
        assert events.next_line() == ": keepalive"
    finally:
        events.close()
    assert admin.get(f"{watched.endpoint}/console/frame/{IDLE}", timeout=10).status_code == 404


def test_an_unknown_processor_is_not_found_once_the_key_may_describe_it(
        watched: Daemon) -> None:
    admin, _ = sign_in(watched, ADMIN_ID, ADMIN_SECRET)
    for path in ("/console/feed/no-such-processor", "/console/frame/no-such-processor"):
        answer = admin.get(watched.endpoint + path, timeout=10)
        assert answer.status_code == 400
        assert answer.json()["__type"] == "ResourceNotFoundException"
    reader, _ = sign_in(watched, READER_ID, READER_SECRET)  # may not describe: not told
    answer = reader.get(f"{watched.endpoint}/console/feed/no-such-processor", timeout=10)
    assert answer.json()["__type"] == "AccessDeniedException"


def test_current_frame_is_a_jpeg_of_at_most_960(watched: Daemon) -> None:
    admin, _ = sign_in(watched, ADMIN_ID, ADMIN_SECRET)
    started = time.monotonic()
    answer = admin.get(f"{watched.endpoint}/console/frame/{PROCESSOR}", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert time.monotonic() - started < 3.5
    height, width = jpeg_side(answer.content)
    assert max(height, width) <= 960 and min(height, width) > 100


def test_signing_out_ends_the_feed(watched: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "RECHECK_S", 0.5)
    admin, csrf = sign_in(watched, ADMIN_ID, ADMIN_SECRET)
    events = Events(admin, f"{watched.endpoint}/console/feed/{PROCESSOR}")
    try:
        assert events.next()[0] == "hello"
        out = admin.delete(f"{watched.endpoint}/console/session",
                           headers={"X-CSRF-Token": csrf}, timeout=10)
        assert out.status_code == 200
        started = time.monotonic()
        assert events.until("end", 10) == ("end", {"reason": "session"})
        assert time.monotonic() - started < 5
        with pytest.raises(StopIteration):  # and the stream is closed
            events.next()
    finally:
        events.close()


def test_at_most_max_feeds_are_open_and_max_feeds_per_key_of_one_key(watched: Daemon) -> None:
    admin, _ = sign_in(watched, ADMIN_ID, ADMIN_SECRET)
    watcher, _ = sign_in(watched, WATCHER_ID, WATCHER_SECRET)
    url = f"{watched.endpoint}/console/feed/{PROCESSOR}"
    feeds = [Events(admin, url) for _ in range(MAX_FEEDS - 1)]
    try:
        for events in feeds:
            assert events.next()[0] == "hello"
        started = time.monotonic()
        refused = admin.get(url, timeout=10)
        assert time.monotonic() - started < 2  # an answer, not a hang
        assert (refused.status_code, refused.json()["__type"]) == (400, "LimitExceededException")
        assert "console.max_feeds_per_key" in refused.json()["Message"]
        feeds.append(Events(watcher, url))  # another key still gets one
        assert feeds[-1].next()[0] == "hello"
        assert watched.registry.get_sample_value("streamproc_console_feeds") == MAX_FEEDS
        refused = watcher.get(url, timeout=10)
        assert refused.json()["__type"] == "LimitExceededException"
        assert "(console.max_feeds)" in refused.json()["Message"]
    finally:
        for events in feeds:
            events.close()
    assert wait_for(lambda: watched.registry.get_sample_value("streamproc_console_feeds") == 0,
                    10)
    assert watched.registry.get_sample_value("streamproc_console_feed_dropped_total") == 0


@pytest.fixture
def idle(tmp_path: Path, broker: Any) -> Iterator[Daemon]:
    """A daemon of its own (auth off) with a processor created, not started."""
    from conftest import client_for, make_config

    d = Daemon(make_config(tmp_path / "data", **{"server.shutdown_timeout_s": 2.0,
                                                  "kafka.bootstrap": broker.bootstrap}))
    d.start()
    try:
        rek: Any = client_for(d.endpoint)
        rek.create_collection(CollectionId="idle-people")
        create(rek, IDLE, "rtsp://127.0.0.1:9/none", "idle-out", "idle-people")
        yield d
    finally:
        d.stop()


def test_closing_the_tap_ends_open_feeds_at_once(idle: Daemon) -> None:
    """What the daemon's stop does first (the plane's close_tap): every feed ends, now."""
    http, _ = sign_in(idle)
    events = Events(http, f"{idle.endpoint}/console/feed/{IDLE}")
    try:
        assert events.next()[0] == "hello"
        started = time.monotonic()
        idle.plane.close_tap()
        assert events.until("end", 5) == ("end", {"reason": "shutdown"})
        assert time.monotonic() - started < 2
    finally:
        events.close()
    late = Events(http, f"{idle.endpoint}/console/feed/{IDLE}")
    try:
        assert late.next()[0] == "hello"
        assert late.next() == ("end", {"reason": "shutdown"})
    finally:
        late.close()


def test_a_daemon_with_an_open_feed_stops_within_its_bound(idle: Daemon) -> None:
    http, _ = sign_in(idle)  # auth off, loopback: a session for {}
    events = Events(http, f"{idle.endpoint}/console/feed/{IDLE}")
    assert events.next() == ("hello", {"processor": IDLE, "here": False})
    ended: list[Any] = []

    def read_to_the_end() -> None:
        try:
            while True:
                ended.append(events.next())
        except (StopIteration, requests.RequestException):
            ended.append("closed")

    reader = threading.Thread(target=read_to_the_end, daemon=True)
    reader.start()
    started = time.monotonic()
    idle.stop()
    took = time.monotonic() - started
    reader.join(5)
    events.close()
    # The daemon ends open feeds before it stops the API server, so the feed does not hold
    # the server's graceful shutdown (2 s here): the page is told, then the stream closes.
    assert took < 1.5, took
    assert ended == [("end", {"reason": "shutdown"}), "closed"], ended
