"""Celebrity recognition through boto3: a real daemon, the test pack, the shared clips.

The operator's gallery is collection ``stars``: the woman of the two-person clip enrolled as
user ``W1`` from her own clip, with a catalog entry, and the man as ``M1``, without one.
Before ``stars`` exists the gallery is empty: the same clip and frame recognise no one.
No notification channel: no broker is needed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import client_for, make_config
from jobs_helpers import BOTH, LEFT_OF, all_pages, centre_x, sample_times, video, wait_job
from streams import MAN, WOMAN
from videos import audio_only, frame_times_ms

from streamproc.config import Config
from streamproc.daemon import Daemon
from streamproc.tools.demo import clip_frames

MAX_BYTES = 3 * 1024 * 1024
CATALOG = """\
W1:
  name: Woman W
  urls: [https://example.org/woman-w]
  known_gender: Female
"""
W1_INFO = {"Name": "Woman W", "Urls": ["https://example.org/woman-w"],
           "KnownGender": {"Type": "Female"}}


@dataclass
class Server:
    """The daemon under test, restartable on the same data directory."""

    config: Config
    daemon: Daemon
    rk: Any

    def restart(self) -> None:
        self.daemon.stop()
        self.daemon = Daemon(self.config)
        self.daemon.start()
        self.rk = client_for(self.daemon.endpoint)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A daemon whose gallery is ``stars`` (not created yet) with the catalog above."""
    root = tmp_path_factory.mktemp("objects")
    vids = root / "vids"
    vids.mkdir()
    shutil.copy(BOTH, vids / BOTH.name)
    audio_only(vids / "audio.mp4")
    (vids / "unreadable.mp4").write_bytes(b"this is not a video\n" * 205)
    (vids / "big.mp4").write_bytes(bytes(MAX_BYTES + 1))
    catalog = tmp_path_factory.mktemp("catalog") / "stars.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    config = make_config(tmp_path_factory.mktemp("celebrities-data"), **{
        "objects.local_root": str(root), "kafka.bootstrap": "127.0.0.1:9",
        "jobs.max_video_bytes": MAX_BYTES, "celebrities.gallery": "stars",
        "celebrities.catalog": str(catalog)})
    d = Daemon(config)
    d.start()
    made = Server(config, d, client_for(d.endpoint))
    yield made
    made.daemon.stop()


def _frame() -> bytes:
    """A frame of the two-person clip: the woman on the left, the man on the right."""
    return next(iter(clip_frames(BOTH, 12)))


def _job(rk: Any, **start: Any) -> dict[str, Any]:
    job_id = rk.start_celebrity_recognition(Video=video(BOTH.name), **start)["JobId"]
    out = wait_job(rk.get_celebrity_recognition, job_id)
    assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
    return out


def _enrol(rk: Any, user_id: str, clip: Path) -> int:
    rk.create_user(CollectionId="stars", UserId=user_id)
    face_ids = [record["Face"]["FaceId"] for jpeg in clip_frames(clip, 6)
                for record in rk.index_faces(CollectionId="stars", Image={"Bytes": jpeg},
                                             MaxFaces=1)["FaceRecords"]]
    out = rk.associate_faces(CollectionId="stars", UserId=user_id, FaceIds=face_ids[:100])
    return len(out["AssociatedFaces"])


@pytest.fixture(scope="module")
def empty(server: Server) -> dict[str, Any]:
    """A job run while the gallery collection does not exist yet (an empty gallery)."""
    return _job(server.rk, JobTag="empty-gallery")


@pytest.fixture(scope="module")
def enrolled(server: Server, empty: dict[str, Any]) -> dict[str, Any]:
    """W1 and M1 enrolled in the gallery, then a job on the two-person clip, finished."""
    server.rk.create_collection(CollectionId="stars")
    # A face indexed in the gallery and associated with no user is no celebrity.
    server.rk.index_faces(CollectionId="stars", Image={"Bytes": _frame()}, MaxFaces=1)
    assert _enrol(server.rk, "W1", WOMAN) >= 2
    assert _enrol(server.rk, "M1", MAN) >= 2
    return _job(server.rk, JobTag="both")


def test_an_empty_gallery_recognises_no_one(server: Server, empty: dict[str, Any]) -> None:
    assert empty["Celebrities"] == [] and empty["JobTag"] == "empty-gallery"
    assert empty["VideoMetadata"]["FrameWidth"] == 480
    out = server.rk.recognize_celebrities(Image={"Bytes": _frame()})
    assert out["CelebrityFaces"] == [] and len(out["UnrecognizedFaces"]) == 2
    # The same faces, boxed as DetectFaces boxes them (the frame is not square).
    assert [f["BoundingBox"] for f in out["UnrecognizedFaces"]] == _detected_boxes(server.rk)
    with pytest.raises(server.rk.exceptions.ResourceNotFoundException):
        server.rk.get_celebrity_info(Id="W1")


def test_the_gallerys_people_come_back_with_their_catalog_entries(enrolled: dict[str, Any]
                                                                   ) -> None:
    rows = enrolled["Celebrities"]
    assert enrolled["Video"] == video(BOTH.name)
    for row in rows:
        c = row["Celebrity"]
        assert set(row) == {"Timestamp", "Celebrity"}
        left = centre_x(c["BoundingBox"]) < LEFT_OF
        assert c["Id"] == ("W1" if left else "M1")  # the right person on each side
        if left:
            assert {k: c[k] for k in W1_INFO} == W1_INFO
        else:  # no catalog entry: named by its UserId, no Urls, no KnownGender
            assert c["Name"] == "M1" and c["Urls"] == [] and "KnownGender" not in c
        assert c["Confidence"] >= 80 and c["Face"]["BoundingBox"] == c["BoundingBox"]
        assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= set(c["Face"])
    sampled = sample_times(frame_times_ms(BOTH))
    seen = {cid: sorted({r["Timestamp"] for r in rows if r["Celebrity"]["Id"] == cid})
            for cid in ("W1", "M1")}
    print(f"recognised at {len(sampled)} sampled times: M1 {len(seen['M1'])}, "
          f"W1 {len(seen['W1'])}")
    assert seen["M1"] == sampled  # he faces the camera throughout
    # She turns her head away mid-clip (her Similarity to W1's user vector falls to 48-74
    # there, under the 80 threshold): recognised while she faces it, at the start and end.
    assert len(seen["W1"]) >= 6 and seen["W1"][0] == 0 and seen["W1"][-1] >= 4000
    times = [r["Timestamp"] for r in rows]
    assert times == sorted(times)  # TIMESTAMP, the default


def test_sort_by_id_and_pages(server: Server, enrolled: dict[str, Any]) -> None:
    rk, job_id = server.rk, enrolled["JobId"]
    by_time, pages = all_pages(rk.get_celebrity_recognition, "Celebrities", JobId=job_id,
                               MaxResults=7)
    assert by_time == enrolled["Celebrities"] and pages == -(-len(by_time) // 7)
    by_id, _ = all_pages(rk.get_celebrity_recognition, "Celebrities", JobId=job_id,
                         MaxResults=3, SortBy="ID")
    keys = [(r["Celebrity"]["Id"], r["Timestamp"]) for r in by_id]
    assert keys == sorted(keys) and keys[0][0] == "M1"
    assert sorted(map(str, by_id)) == sorted(map(str, by_time))


def test_recognize_celebrities_and_get_celebrity_info(server: Server,
                                                      enrolled: dict[str, Any]) -> None:
    rk = server.rk
    out = rk.recognize_celebrities(Image={"Bytes": _frame()})
    found = {c["Id"]: c for c in out["CelebrityFaces"]}
    assert set(found) == {"W1", "M1"} and out["UnrecognizedFaces"] == []
    assert "OrientationCorrection" not in out
    w1 = found["W1"]
    assert centre_x(w1["Face"]["BoundingBox"]) < LEFT_OF < centre_x(
        found["M1"]["Face"]["BoundingBox"])
    assert {k: w1[k] for k in W1_INFO} == W1_INFO and w1["MatchConfidence"] >= 80
    assert set(w1["Face"]) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
    assert sorted(_box_key(c["Face"]["BoundingBox"]) for c in out["CelebrityFaces"]) == sorted(
        map(_box_key, _detected_boxes(rk)))
    info = rk.get_celebrity_info(Id="W1")
    assert {k: info[k] for k in W1_INFO} == W1_INFO
    m1 = rk.get_celebrity_info(Id="M1")
    assert (m1["Name"], m1["Urls"], "KnownGender" in m1) == ("M1", [], False)


def _detected_boxes(rk: Any) -> list[dict[str, float]]:
    """DetectFaces' boxes for the same frame, largest first."""
    return [d["BoundingBox"] for d in rk.detect_faces(Image={"Bytes": _frame()})["FaceDetails"]]


def _box_key(box: dict[str, float]) -> tuple[float, ...]:
    return box["Left"], box["Top"], box["Width"], box["Height"]


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400  # never a 500
    return str(response["Error"]["Code"])


def test_bad_input_gets_rekognitions_errors(server: Server, enrolled: dict[str, Any]) -> None:
    rk, job_id = server.rk, enrolled["JobId"]
    token = rk.get_celebrity_recognition(JobId=job_id, MaxResults=1)["NextToken"]
    detection = rk.start_face_detection(Video=video(BOTH.name))["JobId"]
    cases: list[tuple[str, Any]] = [
        ("InvalidS3ObjectException", lambda: rk.start_celebrity_recognition(
            Video=video("missing.mp4"))),
        ("InvalidS3ObjectException", lambda: rk.start_celebrity_recognition(
            Video=video(BOTH.name, bucket="nobucket"))),
        ("VideoTooLargeException", lambda: rk.start_celebrity_recognition(
            Video=video("big.mp4"))),
        ("InvalidParameterException", lambda: rk.start_celebrity_recognition(Video={})),
        ("InvalidParameterException", lambda: rk.get_celebrity_recognition(
            JobId=job_id, SortBy="INDEX")),
        ("InvalidPaginationTokenException", lambda: rk.get_celebrity_recognition(
            JobId=job_id, NextToken="bogus")),
        ("InvalidPaginationTokenException", lambda: rk.get_celebrity_recognition(
            JobId=job_id, NextToken=token, SortBy="ID")),  # another order's token
        ("ResourceNotFoundException", lambda: rk.get_celebrity_recognition(JobId="nosuchjob")),
        ("ResourceNotFoundException", lambda: rk.get_celebrity_recognition(JobId=detection)),
        ("ResourceNotFoundException", lambda: rk.get_face_search(JobId=job_id)),
        ("ResourceNotFoundException", lambda: rk.get_celebrity_info(Id="Nobody1")),
        ("InvalidParameterException", lambda: rk.get_celebrity_info(Id="not-an-id")),
        ("InvalidImageFormatException", lambda: rk.recognize_celebrities(
            Image={"Bytes": b"not an image" * 20})),
        ("InvalidS3ObjectException", lambda: rk.recognize_celebrities(
            Image={"S3Object": {"Bucket": "vids", "Name": "missing.jpg"}})),
    ]
    for code, call in cases:
        with pytest.raises(ClientError) as caught:
            call()
        assert _code(caught) == code, caught.value
    wait_job(rk.get_face_detection, detection)


@pytest.mark.parametrize(("name", "reason"), [
    ("unreadable.mp4", "Unsupported codec/format: vids/unreadable.mp4 cannot be read"),
    ("audio.mp4", "Unsupported codec/format: vids/audio.mp4 has no video stream"),
])
def test_what_is_not_a_video_fails_with_its_reason(server: Server, name: str, reason: str
                                                   ) -> None:
    rk = server.rk
    out = wait_job(rk.get_celebrity_recognition,
                   rk.start_celebrity_recognition(Video=video(name))["JobId"])
    assert out["JobStatus"] == "FAILED" and out["StatusMessage"].startswith(reason)
    assert "Celebrities" not in out


def test_a_client_request_token_is_idempotent(server: Server, enrolled: dict[str, Any]
                                             ) -> None:
    rk = server.rk
    first = rk.start_celebrity_recognition(Video=video(BOTH.name), ClientRequestToken="cel-1",
                                           JobTag="a")["JobId"]
    assert rk.start_celebrity_recognition(Video=video(BOTH.name), ClientRequestToken="cel-1",
                                          JobTag="a")["JobId"] == first
    with pytest.raises(rk.exceptions.IdempotentParameterMismatchException):
        rk.start_celebrity_recognition(Video=video(BOTH.name), ClientRequestToken="cel-1",
                                       JobTag="b")
    assert wait_job(rk.get_celebrity_recognition, first)["JobStatus"] == "SUCCEEDED"


def test_nothing_is_lost_across_a_restart(server: Server, enrolled: dict[str, Any]) -> None:
    server.restart()
    after = server.rk.get_celebrity_recognition(JobId=enrolled["JobId"])
    assert after["Celebrities"] == enrolled["Celebrities"]
    assert after["JobTag"] == "both" and after["JobStatus"] == "SUCCEEDED"
    assert server.rk.get_celebrity_info(Id="W1")["Name"] == "Woman W"  # the catalog again
