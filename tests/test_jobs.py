"""Stored-video jobs through boto3: a real daemon, real models, the shared clips, real Kafka."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, make_config
from jobs_helpers import (
    BOTH,
    LEFT_OF,
    all_pages,
    centre_x,
    channel,
    notices_for,
    sample_times,
    video,
    wait_job,
)
from streams import MAN, WOMAN, Records, enrol
from videos import CODEC_NAMES, VARIANTS, audio_only, frame_times_ms, looped, variant

from streamproc.daemon import Daemon
from streamproc.tools.clusterkit import poll

MAX_BYTES = 3 * 1024 * 1024
MAX_SECONDS = 30
FORMATS = {".mov": "QuickTime / MOV", ".mp4": "QuickTime / MOV", ".mkv": "Matroska / WebM",
           ".ts": "MPEG-TS (MPEG-2 Transport Stream)"}


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The object root: the clips, re-encoded variants and bad files in bucket ``vids``."""
    root = tmp_path_factory.mktemp("objects")
    vids = root / "vids"
    vids.mkdir()
    for clip in (BOTH, WOMAN, MAN):
        shutil.copy(clip, vids / clip.name)
    for name in VARIANTS:
        variant(BOTH, name, vids)
    looped(BOTH, 1, vids / "slow.mp4", fps=1)  # 56 frames a second apart: 56 s > 30 s
    audio_only(vids / "audio.mp4")
    # Fixed bytes, not random ones: ffmpeg probes about 1 random 4 KiB file in 150 as lyrics
    # (lrc) with no video stream, which made this a flaky test.
    (vids / "unreadable.mp4").write_bytes(b"this is not a video\n" * 205)
    (vids / "big.mp4").write_bytes(bytes(MAX_BYTES + 1))
    return root


@pytest.fixture(scope="module")
def jd(objects: Path, tmp_path_factory: pytest.TempPathFactory, broker: Any) -> Iterator[Daemon]:
    """A daemon with small limits, the object root and the test broker."""
    d = Daemon(make_config(tmp_path_factory.mktemp("jobs-data"), **{
        "objects.local_root": str(objects), "kafka.bootstrap": broker.bootstrap,
        "jobs.max_video_bytes": MAX_BYTES, "jobs.max_duration_s": MAX_SECONDS,
        "jobs.notification_topics": {"mapped-name": {"topic": "jobs-mapped"}}}))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rk(jd: Daemon) -> Any:
    """boto3 for the jobs daemon."""
    return client_for(jd.endpoint)


@pytest.fixture(scope="module")
def people(rk: Any) -> str:
    """W and M enrolled from their own clips."""
    rk.create_collection(CollectionId="people")
    assert enrol(rk, "people", WOMAN, "woman-W") >= 2
    assert enrol(rk, "people", MAN, "man-M") >= 2
    return "people"


@pytest.fixture(scope="module")
def detection(rk: Any) -> dict[str, Any]:
    """A face detection job on the two-person clip, finished."""
    job_id = rk.start_face_detection(Video=video(BOTH.name), JobTag="both-clip")["JobId"]
    return wait_job(rk.get_face_detection, job_id)


@pytest.fixture(scope="module")
def search(rk: Any, people: str) -> dict[str, Any]:
    """A face search job on the two-person clip against W and M, finished."""
    job_id = rk.start_face_search(Video=video(BOTH.name), CollectionId=people)["JobId"]
    return wait_job(rk.get_face_search, job_id)


def test_face_detection_finds_both_faces_at_the_sampled_times(detection: dict[str, Any]
                                                              ) -> None:
    assert detection["JobStatus"] == "SUCCEEDED" and "StatusMessage" not in detection
    assert detection["JobTag"] == "both-clip"
    assert detection["Video"] == video(BOTH.name)
    assert detection["VideoMetadata"] == {
        "Codec": "h264", "DurationMillis": 4480, "Format": "QuickTime / MOV", "FrameRate": 12.5,
        "FrameHeight": 270, "FrameWidth": 480, "ColorRange": "LIMITED"}
    faces = detection["Faces"]
    expected = sample_times(frame_times_ms(BOTH))  # 5 frames per second of video
    assert sorted({f["Timestamp"] for f in faces}) == expected
    assert [f["Timestamp"] for f in faces] == sorted(f["Timestamp"] for f in faces)
    both = [t for t in expected
            if {centre_x(f["Face"]["BoundingBox"]) < LEFT_OF
                for f in faces if f["Timestamp"] == t} == {True, False}]
    assert len(both) >= 0.9 * len(expected)  # W on the left and M on the right, throughout
    detail = faces[0]["Face"]
    assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= set(detail)


def test_face_search_finds_w_and_m_with_stable_person_indices(search: dict[str, Any]) -> None:
    assert search["JobStatus"] == "SUCCEEDED"
    persons = search["Persons"]
    names: dict[int, set[str]] = {}
    for person in persons:
        best = person["FaceMatches"][0]["Face"]["ExternalImageId"]
        names.setdefault(person["Person"]["Index"], set()).add(best)
        side = centre_x(person["Person"]["BoundingBox"]) < LEFT_OF
        assert best == ("woman-W" if side else "man-M")  # the right person on each side
        assert person["FaceMatches"][0]["Similarity"] >= 80
        assert person["Person"]["Face"]["BoundingBox"] == person["Person"]["BoundingBox"]
    assert sorted(names.values(), key=sorted) == [{"man-M"}, {"woman-W"}]  # one index each
    times = {p["Timestamp"] for p in persons}
    assert len(times) >= 10 and max(times) >= 4000  # matched from start to end
    assert {p["Person"]["Index"] for p in persons} == {0, 1}


def test_sort_orders_and_pages(rk: Any, search: dict[str, Any]) -> None:
    job_id = search["JobId"]
    by_time, pages = all_pages(rk.get_face_search, "Persons", JobId=job_id, MaxResults=5)
    assert by_time == search["Persons"] and pages == -(-len(by_time) // 5)
    assert [p["Timestamp"] for p in by_time] == sorted(p["Timestamp"] for p in by_time)
    by_index, _ = all_pages(rk.get_face_search, "Persons", JobId=job_id, MaxResults=3,
                            SortBy="INDEX")
    keys = [(p["Person"]["Index"], p["Timestamp"]) for p in by_index]
    assert keys == sorted(keys) and sorted(map(str, by_index)) == sorted(map(str, by_time))
    capped = rk.get_face_search(JobId=job_id, MaxResults=5000)  # capped at 1000
    assert capped["Persons"] == by_time and "NextToken" not in capped
    first = rk.get_face_search(JobId=job_id, MaxResults=2)
    with pytest.raises(rk.exceptions.InvalidPaginationTokenException):
        rk.get_face_search(JobId=job_id, NextToken=first["NextToken"], SortBy="INDEX")
    with pytest.raises(rk.exceptions.InvalidPaginationTokenException):
        rk.get_face_search(JobId=job_id, NextToken="bm90IGEgdG9rZW4=")


def test_a_token_from_another_job_is_refused(rk: Any, detection: dict[str, Any],
                                             search: dict[str, Any]) -> None:
    token = rk.get_face_detection(JobId=detection["JobId"], MaxResults=1)["NextToken"]
    other = rk.start_face_detection(Video=video(BOTH.name))["JobId"]
    wait_job(rk.get_face_detection, other)
    with pytest.raises(rk.exceptions.InvalidPaginationTokenException):
        rk.get_face_detection(JobId=other, NextToken=token)


def test_client_request_tokens(rk: Any, people: str) -> None:
    first = rk.start_face_detection(Video=video(WOMAN.name), ClientRequestToken="tok-A",
                                    JobTag="t1")["JobId"]
    assert rk.start_face_detection(Video=video(WOMAN.name), ClientRequestToken="tok-A",
                                   JobTag="t1")["JobId"] == first
    assert wait_job(rk.get_face_detection, first)["JobStatus"] == "SUCCEEDED"
    assert rk.start_face_detection(Video=video(WOMAN.name), ClientRequestToken="tok-A",
                                   JobTag="t1")["JobId"] == first  # also once finished
    with pytest.raises(rk.exceptions.IdempotentParameterMismatchException):
        rk.start_face_detection(Video=video(MAN.name), ClientRequestToken="tok-A", JobTag="t1")
    search = rk.start_face_search(Video=video(WOMAN.name), CollectionId=people,
                                  ClientRequestToken="tok-A")["JobId"]
    assert search != first
    assert wait_job(rk.get_face_search, search)["JobStatus"] == "SUCCEEDED"  # none left running
    with pytest.raises(rk.exceptions.IdempotentParameterMismatchException):
        rk.start_face_search(Video=video(WOMAN.name), CollectionId=people,
                             ClientRequestToken="tok-A", FaceMatchThreshold=90)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_containers_and_codecs(rk: Any, name: str) -> None:
    suffix, _, encoder = VARIANTS[name]
    job_id = rk.start_face_detection(Video=video(f"{BOTH.stem}-{name}{suffix}"),
                                     FaceAttributes="ALL")["JobId"]
    out = wait_job(rk.get_face_detection, job_id)
    assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
    meta = out["VideoMetadata"]
    assert meta["Codec"] == CODEC_NAMES[encoder] and meta["Format"] == FORMATS[suffix]
    assert (meta["FrameWidth"], meta["FrameHeight"]) == (480, 270)
    assert abs(meta["DurationMillis"] - 4480) <= 100
    times = sorted({f["Timestamp"] for f in out["Faces"]})
    assert times[0] == 0 and times == sample_times(frame_times_ms(BOTH))
    sides = {centre_x(f["Face"]["BoundingBox"]) < LEFT_OF for f in out["Faces"]}
    assert sides == {True, False}


def test_completion_notices_arrive_on_kafka(rk: Any, broker: Any) -> None:
    done = rk.start_face_detection(Video=video(WOMAN.name), JobTag="nightly",
                                   NotificationChannel=channel("AmazonRekognitionDone")
                                   )["JobId"]
    failed = rk.start_face_detection(Video=video("unreadable.mp4"),
                                     NotificationChannel=channel("AmazonRekognitionDone")
                                     )["JobId"]
    mapped = rk.start_face_detection(Video=video(MAN.name),
                                     NotificationChannel=channel("mapped-name"))["JobId"]
    for job_id in (done, failed, mapped):
        wait_job(rk.get_face_detection, job_id)
    records = Records(broker.bootstrap, "AmazonRekognitionDone")
    got = records.wait_for(lambda r: notices_for(r, done) and notices_for(r, failed), 30)
    records.close()
    (ok,), (bad,) = notices_for(got, done), notices_for(got, failed)
    assert ok["Status"] == "SUCCEEDED" and ok["API"] == "StartFaceDetection"
    assert ok["JobTag"] == "nightly" and isinstance(ok["Timestamp"], int)
    assert ok["Video"] == {"S3ObjectName": WOMAN.name, "S3Bucket": "vids"}
    assert bad["Status"] == "FAILED" and "JobTag" not in bad
    assert bad["Message"].startswith("Unsupported codec/format")
    records = Records(broker.bootstrap, "jobs-mapped")
    got = records.wait_for(lambda r: notices_for(r, mapped), 30)
    records.close()
    assert notices_for(got, mapped)[0]["Status"] == "SUCCEEDED"


def test_bad_input_is_refused_at_start(rk: Any, people: str) -> None:
    with pytest.raises(rk.exceptions.InvalidS3ObjectException):
        rk.start_face_detection(Video=video("missing.mp4"))
    with pytest.raises(rk.exceptions.InvalidS3ObjectException):
        rk.start_face_detection(Video=video(BOTH.name, bucket="nobucket"))
    with pytest.raises(rk.exceptions.VideoTooLargeException, match="limit is 3145728"):
        rk.start_face_detection(Video=video("big.mp4"))
    with pytest.raises(rk.exceptions.ResourceNotFoundException):
        rk.start_face_search(Video=video(BOTH.name), CollectionId="no-such-collection")
    with pytest.raises(rk.exceptions.InvalidParameterException):
        rk.start_face_detection(Video={})
    with pytest.raises(rk.exceptions.InvalidParameterException):
        rk.start_face_detection(Video=video(BOTH.name), JobTag="spaces are not allowed")
    with pytest.raises(rk.exceptions.ResourceNotFoundException):
        rk.get_face_detection(JobId="no-such-job")
    job_id = rk.start_face_search(Video=video(WOMAN.name), CollectionId=people)["JobId"]
    with pytest.raises(rk.exceptions.ResourceNotFoundException):
        rk.get_face_detection(JobId=job_id)  # a face search job is not a detection job
    wait_job(rk.get_face_search, job_id)


@pytest.mark.parametrize(("name", "reason"), [
    ("unreadable.mp4", "Unsupported codec/format: vids/unreadable.mp4 cannot be read"),
    ("audio.mp4", "Unsupported codec/format: vids/audio.mp4 has no video stream"),
    ("slow.mp4", "VideoTooLargeException: vids/slow.mp4 lasts 56 s; the limit is 30 s"),
])
def test_bad_videos_fail_with_their_reason(rk: Any, name: str, reason: str) -> None:
    out = wait_job(rk.get_face_detection, rk.start_face_detection(Video=video(name))["JobId"])
    assert out["JobStatus"] == "FAILED" and out["StatusMessage"].startswith(reason)
    assert "Faces" not in out  # nothing half-written is shown
    if name == "slow.mp4":
        assert out["VideoMetadata"]["DurationMillis"] == 56000


def test_job_metrics(jd: Daemon, detection: dict[str, Any]) -> None:
    def value(name: str, **labels: str) -> float:
        return jd.registry.get_sample_value(name, labels) or 0.0

    api = {"api": "FaceDetection"}
    assert value("streamproc_job_frames_analysed_total", **api) >= 23
    assert value("streamproc_job_video_seconds_total", **api) >= 4.4
    assert value("streamproc_job_faces_detected_total", **api) >= 40
    assert value("streamproc_job_finished_total", status="SUCCEEDED", **api) >= 1
    assert value("streamproc_job_started_total", **api) >= 1
    # The scheduler's thread sets the gauge at the end of the turn that wrote the job's end.
    assert poll(lambda: value("streamproc_job_running") == 0, 10)
