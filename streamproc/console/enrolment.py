"""The enrolment rule, owned once for ``streamproc enrol`` and the console's video upload.

A photo gives its largest face; a video is sampled (about ``candidates`` frames spread over
it, :func:`video_frames`), DetectFaces is asked about each frame, the frames are ranked by
:func:`score` (confident, sharp, frontal, big) and the best ``frames`` go to IndexFaces.
:func:`enrol_file` says what that did for one file (:class:`Outcome`).

The API is reached through :class:`FaceCalls`, so the CLI (boto3) and the console
(``ControlApi.call`` with the session's key) ask the same questions and the policy judges
both alike. It lives here, the lowest layer that is a client of the API, so that both the
console and the tools above it can use it.
"""

from __future__ import annotations

import errno
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np

from streamproc.config import InputsConfig
from streamproc.dataplane.guard.allowlist import CheckedInput, InputAllowlist
from streamproc.dataplane.guard.nested import GuardedOpener, OpenRefused

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Rekognition's Image.Bytes limit
NO_FACE_SAMPLED = "no face found in any sampled frame"
_IO_TIMEOUT_S = 30.0  # local files only: the opener needs a bound, nothing waits on a network
# Real single-file containers only: no concat, HLS or image2 demuxer, which open other files
# (a 40-byte ffconcat naming itself nested opens until the process ran out of fds).
UPLOAD_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts"
UPLOAD_OPENS = 4  # one file: FFmpeg opens it once; the margin is for demuxers that reopen
MAX_PIXELS = 4096 * 4096  # a frame's width x height, judged before decoding (decode bombs)
MAX_DECODED = 20_000  # frames decoded per video at most, whatever its header says


class MediaError(Exception):
    """A file that cannot be read or decoded (the message says why, no more)."""


class CallRefused(Exception):
    """The API refused a call or could not be reached: ``"Code: Message"`` or why."""


class FaceCalls(Protocol):
    """The two operations enrolment asks, answered in the API's response shape."""

    def detect_faces(self, jpeg: bytes) -> list[dict[str, Any]]:
        """DetectFaces' FaceDetails for ``jpeg``; raises :class:`CallRefused`."""

    def index_faces(self, jpeg: bytes, person: str) -> dict[str, Any]:
        """IndexFaces (MaxFaces 1, ExternalImageId ``person``); raises :class:`CallRefused`."""


@dataclass
class Outcome:
    """What enrolling one file did; ``problem`` None when it gave a face."""

    indexed: list[str] = field(default_factory=list)  # FaceIds new to the collection
    present: list[str] = field(default_factory=list)  # FaceIds already there
    unindexed: Counter[str] = field(default_factory=Counter)  # reasons -> faces
    problem: str | None = None


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes that fit Image.Bytes (large images are scaled down first)."""
    quality = 95
    while True:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise MediaError("cannot encode as JPEG")
        if len(jpeg) <= MAX_IMAGE_BYTES:
            return bytes(jpeg.tobytes())
        image = cv2.resize(image, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
        quality = 90


def video_frames(path: Path, candidates: int, stop: threading.Event | None = None, *,
                 confined: bool = False) -> Iterator[bytes]:
    """At most ``candidates`` frames spread over the video, as JPEG (ends early on ``stop``).

    At most :data:`MAX_DECODED` frames are decoded, none larger than :data:`MAX_PIXELS`.

    ``confined``: the file is hostile (an upload), so it is opened through the data plane's
    guard: FFmpeg may open nothing but files beside it (no network, no symbolic link). The
    CLI's files are the operator's own, opened as they are (links followed).
    """
    opening: dict[str, Any] = {"options": {"max_pixels": str(MAX_PIXELS)}}
    opener: GuardedOpener | None = None
    if confined:
        beside = InputAllowlist(InputsConfig(media_roots=[path.parent]))
        opener = GuardedOpener(CheckedInput(str(path)), beside.check, path.name,
                               _IO_TIMEOUT_S, _IO_TIMEOUT_S, max_opens=UPLOAD_OPENS,
                               reopen_main=False)
        opening = {"io_open": opener,
                   "options": {"protocol_whitelist": "file", "format_whitelist": UPLOAD_FORMATS,
                               "max_pixels": str(MAX_PIXELS)}}
    try:
        with av.open(str(path), **opening) as container:
            if not container.streams.video:  # audio only, subtitles: a media file, no video
                raise MediaError("cannot decode video: it has no video stream")
            stream = container.streams.video[0]
            check_size(stream.codec_context.width, stream.codec_context.height)
            every = max(1, min(_frames_in(stream, candidates), MAX_DECODED) // candidates)
            sampled = 0
            for i, frame in enumerate(container.decode(stream)):
                if (stop is not None and stop.is_set()) or i >= MAX_DECODED:
                    return
                if i % every == 0:
                    check_size(frame.width, frame.height)  # a stream may change size
                    sampled += 1
                    yield encode_jpeg(frame.to_ndarray(format="bgr24"))
                    if sampled >= candidates:
                        return  # the rest is never decoded
    except OpenRefused:
        raise MediaError(OUTSIDE) from None
    except (av.error.FFmpegError, OSError) as exc:
        if opener is not None and opener.refused is not None:
            raise MediaError(OUTSIDE) from None  # FFmpeg's own error hides the refusal
        if confined and getattr(exc, "errno", None) == errno.EINVAL:
            raise MediaError(NOT_A_CONTAINER) from None  # a format off the whitelist
        text = getattr(exc, "strerror", None) or type(exc).__name__
        raise MediaError(f"cannot decode video: {text}") from None


OUTSIDE = "cannot decode video: it names files outside itself"
NOT_A_CONTAINER = ("cannot decode video: not a video file (MP4, MOV, MKV, WebM, AVI or "
                   "MPEG-TS; no playlist or list of files)")


def check_size(width: int, height: int) -> None:
    """Refuse a frame larger than :data:`MAX_PIXELS` (before its pixels are decoded)."""
    # FFmpeg's max_pixels makes the probe give up on a larger frame: its size reads 0.
    if not width or not height:
        raise MediaError("cannot decode video: its frames have no readable size (over "
                         f"{MAX_PIXELS} pixels are refused)")
    if width * height > MAX_PIXELS:
        raise MediaError(f"cannot decode video: its frames are {width}x{height}, more than "
                         f"the {MAX_PIXELS} pixels a frame may have")


def _frames_in(stream: Any, candidates: int) -> int:
    """The stream's frame count: the header's, else duration x rate, else a guess.

    MKV, WebM and MPEG-TS headers give no count; without a duration either, the first
    ``candidates * 5`` frames are sampled.
    """
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if stream.duration is not None and stream.time_base is not None and rate:
        return max(1, int(float(stream.duration * stream.time_base) * float(rate)))
    container = stream.container
    if container.duration is not None and rate:
        return max(1, int(container.duration / av.time_base * float(rate)))
    return candidates * 5


def score(faces: Sequence[Mapping[str, Any]]) -> float:
    """How good the largest face is for enrolment: sharp, confident, frontal and big."""
    face = max(faces, key=lambda f: f["BoundingBox"]["Width"] * f["BoundingBox"]["Height"])
    box, pose = face["BoundingBox"], face["Pose"]
    frontal = max(0.1, math.cos(math.radians(pose["Yaw"]))) * \
        max(0.1, math.cos(math.radians(pose["Pitch"])))
    return float(face["Confidence"] / 100 * (face["Quality"]["Sharpness"] + 1) * frontal
                 * math.sqrt(box["Width"] * box["Height"]))


def best_frames(calls: FaceCalls, frames: Iterable[bytes], keep: int) -> list[bytes]:
    """The ``keep`` frames with a face that :func:`score` ranks best (earlier wins a tie)."""
    scored: list[tuple[float, int, bytes]] = []
    for jpeg in frames:
        faces = calls.detect_faces(jpeg)
        if faces:
            scored.append((score(faces), len(scored), jpeg))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [jpeg for _, _, jpeg in scored[:keep]]


def enrol_file(calls: FaceCalls, images: Callable[[], list[bytes]], person: str,
               known: set[str]) -> Outcome:
    """Index the images ``images()`` gives (a photo, or a video's best frames) as ``person``.

    ``known``: the collection's FaceIds, updated, so a face already there counts as present.
    Counts made before a failure stay in the outcome (those faces were indexed).
    """
    outcome = Outcome()
    new = reasons = 0
    try:
        chosen = images()
        if not chosen:
            outcome.problem = NO_FACE_SAMPLED  # a photo always gives its one image
            return outcome
        for jpeg in chosen:
            out = calls.index_faces(jpeg, person)
            for record in out["FaceRecords"]:
                face_id = record["Face"]["FaceId"]
                (outcome.present if face_id in known else outcome.indexed).append(face_id)
                known.add(face_id)
                new += 1
            for face in out["UnindexedFaces"]:
                outcome.unindexed["+".join(face["Reasons"])] += 1
                reasons += 1
    except (MediaError, CallRefused) as exc:
        outcome.problem = str(exc)
        return outcome
    if not new:
        outcome.problem = "no face passed the quality filter" if reasons else "no face found"
    return outcome
