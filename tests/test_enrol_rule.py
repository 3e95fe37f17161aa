"""The enrolment rule both ``streamproc enrol`` and the console's video upload follow.

:mod:`streamproc.console.enrolment`: the frame score, the choice of the best frames, the
per-file outcome, and the sampling (with the guard for an uploaded, hostile file). The API
is a fake :class:`FaceCalls` here: what each frame shows is set by the test.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from streams import WOMAN

from streamproc.console.enrolment import (
    NO_FACE_SAMPLED,
    CallRefused,
    MediaError,
    best_frames,
    enrol_file,
    score,
    video_frames,
)


def face(width: float = 0.2, confidence: float = 99.0, sharpness: float = 50.0,
         yaw: float = 0.0, pitch: float = 0.0) -> dict[str, Any]:
    return {"BoundingBox": {"Width": width, "Height": width, "Left": 0.1, "Top": 0.1},
            "Confidence": confidence, "Quality": {"Sharpness": sharpness},
            "Pose": {"Yaw": yaw, "Pitch": pitch, "Roll": 0.0}}


class FakeCalls:
    """DetectFaces answers by frame (``b"0"``, ``b"1"``...); IndexFaces returns FaceIds."""

    def __init__(self, faces: dict[bytes, list[dict[str, Any]]],
                 indexed: dict[bytes, dict[str, Any]] | None = None,
                 refuse_index_after: int | None = None) -> None:
        self._faces = faces
        self._indexed = indexed or {}
        self._refuse_after = refuse_index_after
        self.detected: list[bytes] = []
        self.index_calls: list[tuple[bytes, str]] = []

    def detect_faces(self, jpeg: bytes) -> list[dict[str, Any]]:
        self.detected.append(jpeg)
        return self._faces.get(jpeg, [])

    def index_faces(self, jpeg: bytes, person: str) -> dict[str, Any]:
        if self._refuse_after is not None and len(self.index_calls) >= self._refuse_after:
            raise CallRefused("AccessDeniedException: not for you")
        self.index_calls.append((jpeg, person))
        return self._indexed.get(jpeg, {"FaceRecords": [{"Face": {"FaceId": f"id-{jpeg!r}"}}],
                                        "UnindexedFaces": []})


def test_the_score_prefers_frontal_sharp_confident_and_big_faces() -> None:
    base = score([face()])
    assert score([face(yaw=60)]) < base
    assert score([face(pitch=50)]) < base
    assert score([face(sharpness=5)]) < base
    assert score([face(confidence=60)]) < base
    assert score([face(width=0.4)]) > base
    # The largest face of a frame is the one scored, not the best-looking small one.
    assert score([face(width=0.05, sharpness=99), face(width=0.3, yaw=80)]) == \
        score([face(width=0.3, yaw=80)])


def test_the_best_frames_are_chosen_skipping_frames_without_a_face() -> None:
    calls = FakeCalls({b"0": [face(yaw=70)], b"2": [face()], b"3": [face(width=0.3)],
                       b"4": [face()]})
    chosen = best_frames(calls, [b"0", b"1", b"2", b"3", b"4"], 3)
    # Biggest first; of two equal frames the earlier wins; the profile is left out.
    assert chosen == [b"3", b"2", b"4"]
    assert calls.detected == [b"0", b"1", b"2", b"3", b"4"]  # every sampled frame asked
    assert best_frames(FakeCalls({}), [b"0", b"1"], 3) == []


def test_an_outcome_tells_new_faces_from_those_already_there() -> None:
    calls = FakeCalls({}, {b"a": {"FaceRecords": [{"Face": {"FaceId": "f1"}}],
                                  "UnindexedFaces": []},
                           b"b": {"FaceRecords": [{"Face": {"FaceId": "f2"}}],
                                  "UnindexedFaces": [{"Reasons": ["LOW_SHARPNESS", "SMALL"]}]}})
    known = {"f2"}
    outcome = enrol_file(calls, lambda: [b"a", b"b"], "jane", known)
    assert (outcome.indexed, outcome.present, outcome.problem) == (["f1"], ["f2"], None)
    assert outcome.unindexed == {"LOW_SHARPNESS+SMALL": 1}
    assert known == {"f1", "f2"}
    assert [person for _, person in calls.index_calls] == ["jane", "jane"]
    again = enrol_file(calls, lambda: [b"a"], "jane", known)
    assert (again.indexed, again.present) == ([], ["f1"])


def test_an_outcome_says_why_nothing_was_indexed() -> None:
    none: dict[str, Any] = {"FaceRecords": [], "UnindexedFaces": []}
    filtered = {"FaceRecords": [], "UnindexedFaces": [{"Reasons": ["LOW_CONFIDENCE"]}]}
    calls = FakeCalls({}, {b"none": none, b"filtered": filtered})
    assert enrol_file(calls, lambda: [], "x", set()).problem == NO_FACE_SAMPLED
    assert enrol_file(calls, lambda: [b"none"], "x", set()).problem == "no face found"
    assert enrol_file(calls, lambda: [b"filtered"], "x", set()).problem == \
        "no face passed the quality filter"

    def broken() -> list[bytes]:
        raise MediaError("cannot decode video: InvalidDataError")

    assert enrol_file(calls, broken, "x", set()).problem == \
        "cannot decode video: InvalidDataError"


def test_a_refusal_midway_keeps_what_was_indexed_before_it() -> None:
    calls = FakeCalls({}, refuse_index_after=1)
    outcome = enrol_file(calls, lambda: [b"a", b"b"], "x", set())
    assert outcome.problem == "AccessDeniedException: not for you"
    assert outcome.indexed == ["id-b'a'"]


def own_copy(tmp_path: Path) -> Path:
    """The clip as an upload is: a file of the daemon's own (the guard opens no other's)."""
    path = tmp_path / "upload"
    shutil.copyfile(WOMAN, path)
    return path


def test_a_video_is_sampled_to_about_the_candidates_asked(tmp_path: Path) -> None:
    upload = own_copy(tmp_path)
    frames = list(video_frames(upload, 12, confined=True))
    # "About": spread by the stream's frame count, or by 5 x candidates where it has none.
    assert 2 <= len(frames) <= 2 * 12
    assert all(f[:3] == b"\xff\xd8\xff" for f in frames)
    assert len(list(video_frames(WOMAN, 12))) == len(frames)  # the CLI samples alike
    stop = threading.Event()
    stop.set()
    assert list(video_frames(upload, 12, stop, confined=True)) == []


def test_a_file_that_is_not_a_video_is_a_media_error(tmp_path: Path) -> None:
    notes = tmp_path / "upload"
    notes.write_text("not a video at all\n" * 50)
    with pytest.raises(MediaError, match="^cannot decode video: "):
        list(video_frames(notes, 24, confined=True))


def test_a_media_file_without_video_says_so(tmp_path: Path) -> None:
    sound = tmp_path / "upload"
    with av.open(str(sound), "w", format="matroska") as out:  # an MKA: audio only
        stream = out.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(MediaError, match="^cannot decode video: it has no video stream$"):
        list(video_frames(sound, 4, confined=True))


def test_a_confined_upload_opens_no_file_outside_its_folder(tmp_path: Path) -> None:
    # An HLS playlist naming a clip elsewhere on disk: the operator's own playlist plays
    # it, an upload (confined) may not read outside its folder.
    (tmp_path / "elsewhere").mkdir()
    segment = tmp_path / "elsewhere" / "clip.ts"
    with av.open(str(WOMAN)) as source, av.open(str(segment), "w", format="mpegts") as out:
        video = source.streams.video[0]
        copy = out.add_stream_from_template(video)
        for packet in source.demux(video):
            if packet.dts is not None:
                packet.stream = copy
                out.mux(packet)
    (tmp_path / "upload").mkdir()
    playlist = tmp_path / "upload" / "clip.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:20\n"
                        f"#EXTINF:20.0,\n{segment}\n#EXT-X-ENDLIST\n")
    assert list(video_frames(playlist, 4))  # the CLI: the operator's file, as it is
    # An upload is one container: the HLS demuxer (which opens other files) is not allowed.
    with pytest.raises(MediaError, match="^cannot decode video: not a video file"):
        list(video_frames(playlist, 4, confined=True))
