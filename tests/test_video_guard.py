"""Hostile uploads and stored videos (issue 27 review): nesting, decode bombs, sampling.

The console's ``POST /console/enrol/<collection>`` is driven straight through its endpoint
with a fake API (answers by operation); :class:`StoredVideo` and the guard are used as the
jobs use them. Every file is made here (no media file in the repo but the shared clips).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import anyio
import av
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from streams import WOMAN

from streamproc.api.transport import ControlApi
from streamproc.config import InputsConfig
from streamproc.console.enrol_video import VideoEnrolment
from streamproc.console.enrolment import MAX_PIXELS, NOT_A_CONTAINER, MediaError, video_frames
from streamproc.console.routes import Refusals
from streamproc.console.scratch import process_scratch
from streamproc.console.sessions import Session
from streamproc.dataplane.guard.allowlist import CheckedInput, InputAllowlist
from streamproc.dataplane.guard.nested import GuardedOpener, OpenRefused
from streamproc.dataplane.stored.video import StoredVideo, VideoRejected
from streamproc.errors import ImageTooLargeException
from streamproc.metrics import ApiMetrics

SESSION = Session(key_id="AKIDGUARD", csrf="token-1", expires_at=1e12)
SELF_CONCAT = b"ffconcat version 1.0\nfile upload\nfile upload\n"
PASSWD_CONCAT = b"ffconcat version 1.0\nfile /etc/passwd\n"


class FakeAccess:
    def __init__(self) -> None:
        self.refusals = Refusals(ApiMetrics.create(CollectorRegistry()))
        self.signed_in = True

    def session_of(self, request: Request) -> Session | None:
        return SESSION if self.signed_in else None

    def allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        return True


class FakeApi:
    """Answers each operation with ``answers[operation](params)`` -> (status, body)."""

    def __init__(self, answers: dict[str, Callable[[dict[str, Any]], tuple[int, Any]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def read_body(self, request: Request, max_bytes: int) -> bytes:
        body = await request.body()
        if len(body) > max_bytes:
            raise ImageTooLargeException("too big")
        return body

    async def call(self, request: Request, operation: str, key_id: str | None) -> Response:
        self.calls.append(operation)
        status, out = self.answers[operation](json.loads(await request.body()))
        return JSONResponse(out, status_code=status)


def no_faces() -> dict[str, Callable[[dict[str, Any]], tuple[int, Any]]]:
    return {"ListFaces": lambda p: (200, {"Faces": []}),
            "DetectFaces": lambda p: (200, {"FaceDetails": []})}


def post(route: VideoEnrolment, access: FakeAccess, body: bytes, person: str = "jane",
         gone: bool = False) -> tuple[int, Any]:
    """The page's request; ``gone``: the client disconnects once the body is sent."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            if not gone:
                await anyio.sleep_forever()  # connected: nothing more comes
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/console/enrol/staff",
             "query_string": f"id={person}&file=jane.mkv".encode(),
             "path_params": {"collection": "staff"},
             "headers": [(b"x-csrf-token", b"token-1"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000)}
    [extra] = route.routes(access)
    response = anyio.run(extra.endpoint, Request(scope, receive))
    raw = bytes(response.body)
    return response.status_code, json.loads(raw) if raw else None


def enrolment(tmp_path: Path, api: FakeApi) -> VideoEnrolment:
    return VideoEnrolment(cast(ControlApi, api), tmp_path / "scratch", 10_000_000)


def leftovers(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "scratch").rglob("*")] if (tmp_path / "scratch").exists() \
        else []


def write_mkv(path: Path, frames: int, size: tuple[int, int] = (64, 48),
              codec: str = "mpeg4") -> Path:
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream(codec, rate=Fraction(24))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
        for i in range(frames):
            image = np.full((size[1], size[0], 3), i % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("body", [SELF_CONCAT, PASSWD_CONCAT], ids=["itself", "passwd"])
def test_a_concat_upload_is_not_a_video_and_leaves_no_scratch(tmp_path: Path,
                                                              body: bytes) -> None:
    api = FakeApi(no_faces())
    before = fds()
    status, report = post(enrolment(tmp_path, api), FakeAccess(), body)
    assert status == 200 and report["Problem"] == NOT_A_CONTAINER
    assert report["Indexed"] == [] and "DetectFaces" not in api.calls
    assert leftovers(tmp_path) == [p for p in leftovers(tmp_path) if p.is_dir()]
    assert not [p for p in leftovers(tmp_path) if p.is_file()]
    assert fds() <= before + 2  # no nested opens left behind


def test_a_self_naming_stored_video_is_rejected_at_once(tmp_path: Path) -> None:
    loop = tmp_path / "loop.mp4"
    loop.write_bytes(b"ffconcat version 1.0\nfile loop.mp4\n")
    before = fds()
    # Refused as no container it reads (before: "Too many open files", 20k nested opens).
    with pytest.raises(VideoRejected, match=r"^Unsupported codec/format: b/loop.mp4 cannot "
                       r"be read \(Invalid argument\)$"):
        with StoredVideo(loop, "b/loop.mp4", 1.0, 3600):
            pass
    assert fds() <= before + 2


def test_the_opener_refuses_its_own_file_again_and_caps_its_opens(tmp_path: Path) -> None:
    for name in ("main", "a", "b"):
        (tmp_path / name).write_bytes(b"x")
    main = str(tmp_path / "main")
    beside = InputAllowlist(InputsConfig(media_roots=[tmp_path])).check

    def opener(**kw: Any) -> GuardedOpener:
        return GuardedOpener(CheckedInput(main), beside, "main", 1.0, 1.0, **kw)

    once = opener(reopen_main=False)
    once(main, 0, {}).close()
    with pytest.raises(OpenRefused, match="names itself"):
        once(f"file:{tmp_path}/./main", 0, {})
    capped = opener(max_opens=2)
    capped(main, 0, {}).close()
    capped(str(tmp_path / "a"), 0, {}).close()
    with pytest.raises(OpenRefused, match="more than 2 files"):
        capped(str(tmp_path / "b"), 0, {})
    live = opener()  # a live source keeps reloading its own playlist
    for _ in range(3):
        live(main, 0, {}).close()


def test_a_headerless_count_still_samples_at_most_the_candidates(tmp_path: Path) -> None:
    clip = write_mkv(tmp_path / "upload", 600)  # MKV: the header gives no frame count
    with av.open(str(clip)) as probe:
        assert probe.streams.video[0].frames == 0
    frames = list(video_frames(clip, 24, confined=True))
    assert len(frames) == 24


def test_a_huge_frame_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    side = 4160  # > 4096: one frame over MAX_PIXELS
    assert side * side > MAX_PIXELS
    clip = write_mkv(tmp_path / "upload", 1, (side, side), codec="mjpeg")
    # Either its size (read from the header) or none (FFmpeg's probe gave up on it).
    with pytest.raises(MediaError, match=f"its frames (are {side}x{side}|have no readable)"):
        list(video_frames(clip, 24, confined=True))
    with pytest.raises(VideoRejected, match=f"has ({side}x{side} frames|frames of no read)"):
        with StoredVideo(clip, "b/huge.mkv", 1.0, 3600):
            pass


def test_a_bad_external_id_is_refused_before_the_body_is_read(tmp_path: Path) -> None:
    api = FakeApi(no_faces())
    status, out = post(enrolment(tmp_path, api), FakeAccess(), SELF_CONCAT, person="no%20spaces")
    assert status == 400 and out["__type"] == "InvalidParameterException"
    assert "ExternalImageId" in out["Message"] and api.calls == []
    assert not (tmp_path / "scratch").exists()


def test_a_missing_collection_ends_the_upload_before_any_decode(tmp_path: Path) -> None:
    gone = "The collection id: staff does not exist"
    missing = {"ListFaces": lambda p: (400, {"__type": "ResourceNotFoundException",
                                              "Message": gone})}
    api = FakeApi(missing)
    status, report = post(enrolment(tmp_path, api), FakeAccess(), WOMAN.read_bytes())
    assert status == 200 and api.calls == ["ListFaces"]
    assert report["Problem"] == f"ResourceNotFoundException: {gone}"


def test_a_client_that_leaves_or_signs_out_stops_the_work(tmp_path: Path) -> None:
    api = FakeApi(no_faces())
    status, _ = post(enrolment(tmp_path, api), FakeAccess(), WOMAN.read_bytes(), gone=True)
    assert status == 400 and api.calls == []
    access = FakeAccess()

    def sign_out(params: dict[str, Any]) -> tuple[int, Any]:
        access.signed_in = False
        return 200, {"FaceDetails": []}

    api = FakeApi({**no_faces(), "DetectFaces": sign_out})
    status, _ = post(enrolment(tmp_path, api), access, WOMAN.read_bytes())
    assert status == 400 and api.calls == ["ListFaces", "DetectFaces"]


def test_a_full_disk_is_the_files_reason_not_a_500(tmp_path: Path) -> None:
    (tmp_path / "scratch").write_text("a file where the folder goes")
    status, report = post(enrolment(tmp_path, FakeApi(no_faces())), FakeAccess(), b"x" * 10)
    assert status == 200 and report["Problem"].startswith("cannot store the upload: ")


def test_each_process_clears_only_its_own_scratch(tmp_path: Path) -> None:
    other = tmp_path / "scratch" / "console-enrol" / "otherhost-1"
    other.mkdir(parents=True)
    (other / "upload").write_bytes(b"in flight")
    mine = process_scratch(tmp_path, "console-enrol")
    mine.mkdir(parents=True)
    (mine / "left").write_bytes(b"a killed daemon's")
    assert process_scratch(tmp_path, "console-enrol") == mine
    assert not mine.exists() and (other / "upload").exists()


class _Unseekable:
    """A container whose seek fails (as a pipe-like input's does)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def seek(self, *args: Any, **kwargs: Any) -> None:
        raise av.error.FFmpegError(38, "Function not implemented")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_failed_rewind_is_a_rejection_not_a_crash(tmp_path: Path) -> None:
    clip = write_mkv(tmp_path / "clip.mkv", 48)
    with StoredVideo(clip, "b/clip.mkv", 1.0, 3600) as video:
        real = video._container
        video._container = cast(Any, _Unseekable(real))
        try:
            with pytest.raises(VideoRejected, match="cannot be read again from the start"):
                video.frame_at(1000, threading.Event())
        finally:
            video._container = real
