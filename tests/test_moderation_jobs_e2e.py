"""StartContentModeration / GetContentModeration through boto3: a real daemon, the open_nsfw pack.

The clip is a benign shared one (classroom.mp4, 2.7 s: 14 frames at the default 5 per
second). open_nsfw gives every frame an ``Explicit`` label at a confidence near 0 (well
below the default MinConfidence of 50), so MinConfidence 0 shows every sampled frame and one
segment over the whole clip, and the default shows nothing. No notification channel: no
broker is needed.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import VIDEO, client_for, make_config
from jobs_helpers import all_pages, sample_times, video, wait_job
from videos import frame_times_ms

from streamproc.daemon import Daemon
from streamproc.moderation import taxonomy

CLIP = VIDEO / "classroom.mp4"
VIEWS = [{}, {"SortBy": "NAME"}, {"AggregateBy": "SEGMENTS"},
         {"SortBy": "NAME", "AggregateBy": "SEGMENTS"}]


@pytest.fixture(scope="module")
def rekm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A daemon (no broker: no job here notifies) with the clip in bucket ``vids``."""
    objects = tmp_path_factory.mktemp("objects")
    (objects / "vids").mkdir()
    shutil.copy(CLIP, objects / "vids" / CLIP.name)
    d = Daemon(make_config(tmp_path_factory.mktemp("moderation-data"), **{
        "objects.local_root": str(objects), "kafka.bootstrap": "127.0.0.1:9"}))
    d.start()
    yield client_for(d.endpoint)
    d.stop()


def _done(rek: Any, **start: Any) -> tuple[str, dict[str, Any]]:
    job_id = rek.start_content_moderation(Video=video(CLIP.name), **start)["JobId"]
    out = wait_job(rek.get_content_moderation, job_id)
    assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
    return job_id, out


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400  # never a 500
    return str(response["Error"]["Code"])


def test_a_benign_clip_has_no_labels_at_the_default_min_confidence(rekm: Any) -> None:
    job_id, out = _done(rekm)
    assert out["ModerationLabels"] == [] and "NextToken" not in out
    assert out["VideoMetadata"]["Codec"] == "h264"
    assert out["ModerationModelVersion"] == "7.0-open_nsfw"  # names the pack
    assert out["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"}
    segments = rekm.get_content_moderation(JobId=job_id, AggregateBy="SEGMENTS")
    assert segments["ModerationLabels"] == []


def test_min_confidence_0_labels_every_sampled_frame_in_each_view(rekm: Any) -> None:
    job_id, out = _done(rekm, MinConfidence=0, JobTag="zero")
    assert out["JobTag"] == "zero" and out["Video"] == video(CLIP.name)
    rows = out["ModerationLabels"]
    for row in rows:  # a valid taxonomy v7 label, consistent with its parent and level
        label = row["ModerationLabel"]
        assert set(row) == {"Timestamp", "ModerationLabel"}
        assert label["ParentName"] == taxonomy.parent_of(label["Name"])
        assert label["TaxonomyLevel"] == taxonomy.level_of(label["Name"])
        assert 0 <= label["Confidence"] <= 100
    # open_nsfw labels every frame (Explicit, near 0): every sampled time shows, in order.
    times = [r["Timestamp"] for r in rows]
    assert times == sorted(times)
    assert sorted(set(times)) == sample_times(frame_times_ms(CLIP))
    assert {r["ModerationLabel"]["Name"] for r in rows} == {"Explicit"}  # what the pack serves

    by_name = rekm.get_content_moderation(JobId=job_id, SortBy="NAME")
    assert by_name["GetRequestMetadata"] == {"SortBy": "NAME", "AggregateBy": "TIMESTAMPS"}
    named = [(r["ModerationLabel"]["Name"], r["Timestamp"]) for r in by_name["ModerationLabels"]]
    assert named == sorted(named) and sorted(named) == sorted(
        (r["ModerationLabel"]["Name"], r["Timestamp"]) for r in rows)

    segments = rekm.get_content_moderation(JobId=job_id, AggregateBy="SEGMENTS")
    assert segments["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "SEGMENTS"}
    _check_segments(segments["ModerationLabels"], rows, sorted(set(times)))
    seg_by_name = rekm.get_content_moderation(JobId=job_id, AggregateBy="SEGMENTS",
                                              SortBy="NAME")["ModerationLabels"]
    keys = [(s["ModerationLabel"]["Name"], s["StartTimestampMillis"]) for s in seg_by_name]
    assert keys == sorted(keys) and len(seg_by_name) == len(segments["ModerationLabels"])


def _check_segments(segments: list[dict[str, Any]], rows: list[dict[str, Any]],
                    sampled: list[int]) -> None:
    """Segments are each label's maximal runs over the sampled times, at the run's top."""
    starts = [s["StartTimestampMillis"] for s in segments]
    assert starts == sorted(starts)
    seen: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        seen[r["ModerationLabel"]["Name"]][r["Timestamp"]] = r["ModerationLabel"]["Confidence"]
    expected = []
    for name, at in seen.items():
        run: list[int] = []
        for t in [*sampled, None]:
            if t is not None and t in at:
                run.append(t)
            elif run:
                expected.append((run[0], name, run[-1], max(at[x] for x in run)))
                run = []
    got = []
    for s in segments:
        assert set(s) == {"Timestamp", "ModerationLabel", "StartTimestampMillis",
                          "EndTimestampMillis", "DurationMillis"}  # no ContentTypes
        start, end = s["StartTimestampMillis"], s["EndTimestampMillis"]
        assert s["Timestamp"] == start <= end and s["DurationMillis"] == end - start
        got.append((start, s["ModerationLabel"]["Name"], end, s["ModerationLabel"]["Confidence"]))
    assert sorted(got) == sorted(expected)
    assert [(g[0], g[2]) for g in got] == [(sampled[0], sampled[-1])]  # one run: the clip


def test_pages_of_one_are_the_rows_of_one_page_in_every_view(rekm: Any) -> None:
    job_id, _ = _done(rekm, MinConfidence=0, JobTag="paged")
    for view in VIEWS:
        whole = rekm.get_content_moderation(JobId=job_id, **view)["ModerationLabels"]
        paged, pages = all_pages(rekm.get_content_moderation, "ModerationLabels",
                                 JobId=job_id, MaxResults=1, **view)
        assert paged == whole and pages == len(whole) >= 1


def test_a_client_request_token_is_idempotent(rekm: Any) -> None:
    first = rekm.start_content_moderation(Video=video(CLIP.name), ClientRequestToken="cm-1")
    again = rekm.start_content_moderation(Video=video(CLIP.name), ClientRequestToken="cm-1",
                                          MinConfidence=50)  # the default, spelled out
    assert again["JobId"] == first["JobId"]
    with pytest.raises(ClientError) as caught:
        rekm.start_content_moderation(Video=video(CLIP.name), ClientRequestToken="cm-1",
                                      MinConfidence=10)
    assert _code(caught) == "IdempotentParameterMismatchException"
    wait_job(rekm.get_content_moderation, first["JobId"])


def test_bad_input_gets_rekognitions_errors(rekm: Any) -> None:
    job_id, _ = _done(rekm, MinConfidence=0, JobTag="errors")
    token = rekm.get_content_moderation(JobId=job_id, MaxResults=1)["NextToken"]
    cases: list[tuple[str, Any]] = [
        ("InvalidS3ObjectException", lambda: rekm.start_content_moderation(
            Video=video("missing.mp4"))),
        ("InvalidS3ObjectException", lambda: rekm.start_content_moderation(
            Video=video(CLIP.name, bucket="nobucket"))),
        ("InvalidParameterException", lambda: rekm.start_content_moderation(
            Video=video(CLIP.name), MinConfidence=101)),
        ("InvalidParameterException", lambda: rekm.get_content_moderation(
            JobId=job_id, SortBy="INDEX")),
        ("InvalidParameterException", lambda: rekm.get_content_moderation(
            JobId=job_id, AggregateBy="FRAMES")),
        ("InvalidPaginationTokenException", lambda: rekm.get_content_moderation(
            JobId=job_id, NextToken="bogus")),
        ("InvalidPaginationTokenException", lambda: rekm.get_content_moderation(
            JobId=job_id, NextToken=token, SortBy="NAME")),  # another view's token
        ("InvalidPaginationTokenException", lambda: rekm.get_content_moderation(
            JobId=job_id, NextToken=token, AggregateBy="SEGMENTS")),
        ("ResourceNotFoundException", lambda: rekm.get_content_moderation(JobId="nosuchjob")),
        ("ResourceNotFoundException", lambda: rekm.get_face_detection(JobId=job_id)),
    ]
    for code, call in cases:
        with pytest.raises(ClientError) as caught:
            call()
        assert _code(caught) == code
