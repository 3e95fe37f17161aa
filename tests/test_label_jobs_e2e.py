"""StartLabelDetection / GetLabelDetection through boto3: a real daemon with the real label pack.

The clips are the shared ones (``intel_sample_videos``, 480x270, 1.8-5 s, every one with
people in it): the pack must find ``Person`` in each, with Instances (boxes). The pack is
made once by ``scripts/labels_pack.sh`` (tests/labels_helpers.py: a missing pack fails, never
skips). No notification channel: no broker is needed.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import VIDEO, client_for, make_config
from jobs_helpers import all_pages, sample_times, stop_bounded, video, wait_job, wait_progress
from labels_helpers import label_config, label_pack_dir
from videos import audio_only, frame_times_ms, looped

from streamproc.daemon import Daemon

CLIPS = sorted(VIDEO.glob("*.mp4"))
VIEWS = [{}, {"SortBy": "NAME"}, {"AggregateBy": "SEGMENTS"},
         {"SortBy": "NAME", "AggregateBy": "SEGMENTS"}]
MAX_BYTES = 3 * 1024 * 1024


def _objects(root: Path) -> Path:
    vids = root / "vids"
    vids.mkdir()
    for clip in CLIPS:
        shutil.copy(clip, vids / clip.name)
    audio_only(vids / "audio.mp4")
    (vids / "unreadable.mp4").write_bytes(b"this is not a video\n" * 205)
    (vids / "big.mp4").write_bytes(bytes(MAX_BYTES + 1))
    return root


def _daemon(data: Path, objects: Path, **extra: Any) -> Daemon:
    d = Daemon(make_config(data, **{
        "objects.local_root": str(objects), "kafka.bootstrap": "127.0.0.1:9",
        "jobs.max_video_bytes": MAX_BYTES, **label_config(label_pack_dir()), **extra}))
    d.start()
    return d


@pytest.fixture(scope="module")
def rekl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A daemon with the label pack and the clips in bucket ``vids``."""
    objects = _objects(tmp_path_factory.mktemp("objects"))
    d = _daemon(tmp_path_factory.mktemp("labels-data"), objects)
    yield client_for(d.endpoint)
    d.stop()


def _done(rek: Any, name: str, **start: Any) -> tuple[str, dict[str, Any]]:
    job_id = rek.start_label_detection(Video=video(name), **start)["JobId"]
    out = wait_job(rek.get_label_detection, job_id, timeout=180)
    assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
    return job_id, out


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400  # never a 500
    return str(response["Error"]["Code"])


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_person_is_found_with_instances_in_every_clip(rekl: Any, clip: Path) -> None:
    job_id, out = _done(rekl, clip.name)
    labels, _ = all_pages(rekl.get_label_detection, "Labels", JobId=job_id)
    assert out["LabelModelVersion"] and out["VideoMetadata"]["FrameWidth"] == 480
    sampled = set(sample_times(frame_times_ms(clip)))
    assert {row["Timestamp"] for row in labels} <= sampled
    persons = [row for row in labels if row["Label"]["Name"] == "Person"]
    boxed = [row for row in persons if row["Label"]["Instances"]]
    print(f"{clip.name}: Person at {len(persons)} of {len(sampled)} sampled frames, "
          f"{len(boxed)} with boxes")
    assert boxed, f"no Person with Instances in {clip.name}"
    for row in labels:
        label = row["Label"]
        assert label["Confidence"] >= 50  # the default MinConfidence
        assert set(label) == {"Name", "Confidence", "Instances", "Parents", "Aliases",
                              "Categories"}
        for instance in label["Instances"]:
            box = instance["BoundingBox"]
            assert 0 <= box["Left"] <= 1 and 0 <= box["Top"] <= 1
            assert 0 < box["Width"] <= 1 and 0 < box["Height"] <= 1
            assert instance["Confidence"] >= 50
    per_frame = Counter((row["Timestamp"], row["Label"]["Name"]) for row in labels)
    assert max(per_frame.values()) == 1  # each name once per timestamp


def test_every_view_orders_and_pages_as_aws_documents(rekl: Any) -> None:
    job_id, _ = _done(rekl, "classroom.mp4", MinConfidence=20, JobTag="views")
    for view in VIEWS:
        whole = rekl.get_label_detection(JobId=job_id, **view)
        assert whole["GetRequestMetadata"] == {"SortBy": view.get("SortBy", "TIMESTAMP"),
                                               "AggregateBy": view.get("AggregateBy",
                                                                       "TIMESTAMPS")}
        paged, pages = all_pages(rekl.get_label_detection, "Labels", JobId=job_id,
                                 MaxResults=1, **view)
        assert paged == whole["Labels"] and pages == len(paged) >= 1
    by_time = rekl.get_label_detection(JobId=job_id)["Labels"]
    assert [r["Timestamp"] for r in by_time] == sorted(r["Timestamp"] for r in by_time)
    by_name = rekl.get_label_detection(JobId=job_id, SortBy="NAME")["Labels"]
    keys = [(r["Label"]["Name"], -r["Label"]["Confidence"]) for r in by_name]
    assert keys == sorted(keys)  # names grouped alphabetically, highest confidence first
    segments = rekl.get_label_detection(JobId=job_id, AggregateBy="SEGMENTS")["Labels"]
    assert {s["Label"]["Name"] for s in segments} == {r["Label"]["Name"] for r in by_time}
    for s in segments:
        start, end = s["StartTimestampMillis"], s["EndTimestampMillis"]
        assert s["Timestamp"] == start <= end and s["DurationMillis"] == end - start
        assert "Instances" not in s["Label"]
        seen = [r["Label"]["Confidence"] for r in by_time if r["Label"]["Name"] ==
                s["Label"]["Name"] and start <= r["Timestamp"] <= end]
        assert s["Label"]["Confidence"] == max(seen)


def test_filters_keep_only_what_they_name(rekl: Any) -> None:
    _, out = _done(rekl, "classroom.mp4", Settings={
        "GeneralLabels": {"LabelInclusionFilters": ["Person"]}})
    assert {r["Label"]["Name"] for r in out["Labels"]} == {"Person"}
    _, out = _done(rekl, "classroom.mp4", Settings={
        "GeneralLabels": {"LabelExclusionFilters": ["Person"]}})
    assert "Person" not in {r["Label"]["Name"] for r in out["Labels"]}


def test_a_client_request_token_is_idempotent(rekl: Any) -> None:
    first = rekl.start_label_detection(Video=video("classroom.mp4"), ClientRequestToken="lb-1")
    again = rekl.start_label_detection(Video=video("classroom.mp4"), ClientRequestToken="lb-1",
                                       MinConfidence=50, Features=["GENERAL_LABELS"])
    assert again["JobId"] == first["JobId"]
    with pytest.raises(ClientError) as caught:
        rekl.start_label_detection(Video=video("classroom.mp4"), ClientRequestToken="lb-1",
                                   MinConfidence=10)
    assert _code(caught) == "IdempotentParameterMismatchException"
    wait_job(rekl.get_label_detection, first["JobId"], timeout=180)


def test_bad_input_gets_rekognitions_errors(rekl: Any) -> None:
    job_id, _ = _done(rekl, "classroom.mp4", MinConfidence=20, JobTag="errors")
    token = rekl.get_label_detection(JobId=job_id, MaxResults=1)["NextToken"]
    start = rekl.start_label_detection
    cases: list[tuple[str, Any]] = [
        ("InvalidS3ObjectException", lambda: start(Video=video("missing.mp4"))),
        ("InvalidS3ObjectException", lambda: start(Video=video("classroom.mp4", "nobucket"))),
        ("VideoTooLargeException", lambda: start(Video=video("big.mp4"))),
        ("InvalidParameterException", lambda: start(Video={})),
        ("InvalidParameterException", lambda: start(Video=video("classroom.mp4"),
                                                    MinConfidence=101)),
        ("InvalidParameterException", lambda: start(Video=video("classroom.mp4"),
                                                    Features=["IMAGE_PROPERTIES"])),
        ("InvalidParameterException", lambda: rekl.get_label_detection(
            JobId=job_id, SortBy="INDEX")),
        ("InvalidParameterException", lambda: rekl.get_label_detection(
            JobId=job_id, AggregateBy="FRAMES")),
        ("InvalidPaginationTokenException", lambda: rekl.get_label_detection(
            JobId=job_id, NextToken="bogus")),
        ("InvalidPaginationTokenException", lambda: rekl.get_label_detection(
            JobId=job_id, NextToken=token, SortBy="NAME")),  # another view's token
        ("ResourceNotFoundException", lambda: rekl.get_label_detection(JobId="nosuchjob")),
        ("ResourceNotFoundException", lambda: rekl.get_face_detection(JobId=job_id)),
    ]
    for code, call in cases:
        with pytest.raises(ClientError) as caught:
            call()
        assert _code(caught) == code, code


@pytest.mark.parametrize(("name", "reason"), [
    ("unreadable.mp4", "Unsupported codec/format: vids/unreadable.mp4 cannot be read"),
    ("audio.mp4", "Unsupported codec/format: vids/audio.mp4 has no video stream"),
])
def test_not_a_video_or_no_video_stream_fails_with_the_reason(rekl: Any, name: str,
                                                             reason: str) -> None:
    job_id = rekl.start_label_detection(Video=video(name))["JobId"]
    out = wait_job(rekl.get_label_detection, job_id, timeout=60)
    assert out["JobStatus"] == "FAILED" and out["StatusMessage"].startswith(reason)
    assert "Labels" not in out


def test_a_restart_mid_job_resumes_it_and_loses_or_doubles_nothing(tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    (objects / "vids").mkdir(parents=True)
    long = looped(VIDEO / "classroom.mp4", 4, objects / "vids" / "long.mp4")
    data = tmp_path / "data"
    first = _daemon(data, objects)
    job_id = client_for(first.endpoint).start_label_detection(
        Video=video("long.mp4"), JobTag="restart")["JobId"]
    wait_progress(first, job_id, 0.1, timeout=120)
    stop_bounded(first)

    second = _daemon(data, objects)
    try:
        rek = client_for(second.endpoint)
        during = rek.get_label_detection(JobId=job_id)
        if during["JobStatus"] == "IN_PROGRESS":
            assert "Resumed after a daemon restart" in during["StatusMessage"]
        out = wait_job(rek.get_label_detection, job_id, timeout=240)
        assert out["JobStatus"] == "SUCCEEDED" and out["JobTag"] == "restart"
        labels, _ = all_pages(rek.get_label_detection, "Labels", JobId=job_id)
    finally:
        second.stop()
    sampled = sample_times(frame_times_ms(long))
    per_frame = Counter((row["Timestamp"], row["Label"]["Name"]) for row in labels)
    assert max(per_frame.values()) == 1  # nothing doubled by the interrupted launch
    person_at = {t for t, name in per_frame if name == "Person"}
    assert person_at <= set(sampled) and len(person_at) >= 0.5 * len(sampled)


def test_health_lists_the_label_stage_only_where_there_is_a_pack(tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    objects.mkdir()
    with_pack = _daemon(tmp_path / "with", objects)
    try:
        assert "labels" in with_pack.health()["stages"]
    finally:
        with_pack.stop()
    without = _daemon(tmp_path / "without", objects,
                      **{"models.label_pack": str(tmp_path / "no-pack")})
    try:
        assert "labels" not in without.health()["stages"]
    finally:
        without.stop()


def test_the_classifier_interval_setting_reaches_the_label_stage(tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    objects.mkdir()
    d = _daemon(tmp_path / "data", objects, **{"jobs.label_classifier_interval_s": 1.5})
    try:
        stage = d._plane.background_stages["labels"]
        assert stage._interval_ms == 1500  # noqa: SLF001 (what the daemon wired)
    finally:
        d.stop()
