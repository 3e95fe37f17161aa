"""StartPersonTracking / GetPersonTracking through boto3, with a stand-in label pack.

A real daemon (face engine, jobs, store) whose label pack is :class:`HalvesPack`: it finds
two persons in every frame, the image's left part and its right part. The clip is the
two-person one (the woman left of x=200 px, the man right of it), so each stand-in person
holds one real face: the face engine's. What the real pack finds is
tests/test_person_tracking_e2e.py. Without a pack Start answers
LabelPackMissing (the restarted daemon has none); hostile bodies get a 4xx.
"""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from conftest import client_for, make_config
from jobs_helpers import BOTH, LEFT_OF, all_pages, centre_x, sample_times, video, wait_job
from videos import frame_times_ms

from streamproc.daemon import Daemon
from streamproc.labels.types import Box, Instance, Label

LEFT = Box(0.0, 0.0, LEFT_OF - 0.01, 1.0)
RIGHT = Box(LEFT_OF, 0.0, 1.0 - LEFT_OF, 1.0)


class HalvesPack:
    """A label pack that sees a person on each side of x=200 px in every frame."""

    model_version = "halves-1"

    def detect(self, image: np.ndarray, min_confidence: float) -> tuple[Label, ...]:
        assert image.shape[2] == 3 and min_confidence == 0.0  # the stage asks for all
        return (Label("Person", 90.0, (Instance(LEFT, 90.0), Instance(RIGHT, 80.0))),)


def _daemon(data: Path, objects: Path) -> Daemon:
    d = Daemon(make_config(data, **{"objects.local_root": str(objects),
                                    "kafka.bootstrap": "127.0.0.1:9"}))
    d.start()
    return d


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    objects = tmp_path_factory.mktemp("objects")
    (objects / "vids").mkdir()
    shutil.copy(BOTH, objects / "vids" / BOTH.name)
    return tmp_path_factory.mktemp("persons-data"), objects


@pytest.fixture(scope="module")
def hd(dirs: tuple[Path, Path]) -> Iterator[Daemon]:
    """The daemon with the stand-in pack (the restart test, last, stops it first)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Daemon, "_label_pack", lambda self: HalvesPack())
        d = _daemon(*dirs)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def halves(hd: Daemon) -> Any:
    return client_for(hd.endpoint)


def _call(daemon: Daemon, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A raw call (botocore would refuse some of these bodies before sending them)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", "/", body=json.dumps(body), headers={
        "X-Amz-Target": f"RekognitionService.{target}",
        "Content-Type": "application/x-amz-json-1.1"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


@pytest.fixture(scope="module")
def done(halves: Any) -> tuple[str, dict[str, Any]]:
    job_id = halves.start_person_tracking(Video=video(BOTH.name), JobTag="t1")["JobId"]
    out = wait_job(halves.get_person_tracking, job_id, timeout=120)
    assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
    return job_id, out


def test_every_sampled_frame_has_both_persons_with_their_faces(hd: Daemon, halves: Any,
                                                               done: Any) -> None:
    job_id, out = done
    assert hd.health()["stages"]["persons"]["state"] == "ok"  # with a pack: supervised
    assert out["JobTag"] == "t1" and out["Video"] == video(BOTH.name)
    assert out["VideoMetadata"]["FrameWidth"] == 480
    persons, _ = all_pages(halves.get_person_tracking, "Persons", JobId=job_id)
    sampled = sample_times(frame_times_ms(BOTH))
    assert sorted({p["Timestamp"] for p in persons}) == sampled
    assert len(persons) == 2 * len(sampled)
    for p in persons:
        index, bb = p["Person"]["Index"], p["Person"]["BoundingBox"]
        assert index == (0 if bb["Left"] == 0.0 else 1), p  # stable: one Index a side
    with_face = [p for p in persons if "Face" in p["Person"]]
    assert len(with_face) >= len(persons) * 0.8  # both faces are visible nearly throughout
    for p in with_face:
        face = p["Person"]["Face"]
        assert (centre_x(face["BoundingBox"]) < LEFT_OF) == (p["Person"]["Index"] == 0)
        assert {"BoundingBox", "Landmarks", "Confidence", "Pose", "Quality"} <= set(face)


def test_sort_by_timestamp_is_the_default_and_index_groups_persons(halves: Any,
                                                                    done: Any) -> None:
    job_id, _ = done
    by_time, _ = all_pages(halves.get_person_tracking, "Persons", JobId=job_id)
    by_index, _ = all_pages(halves.get_person_tracking, "Persons", JobId=job_id,
                            SortBy="INDEX")
    stamps = [p["Timestamp"] for p in by_time]
    assert stamps == sorted(stamps)
    keys = [(p["Person"]["Index"], p["Timestamp"]) for p in by_index]
    assert keys == sorted(keys) and keys[0][0] == 0 and keys[-1][0] == 1
    assert sorted(map(str, by_time)) == sorted(map(str, by_index))  # the same rows


def test_pages_follow_next_token_without_loss_or_repeat(halves: Any, done: Any) -> None:
    job_id, _ = done
    whole, _ = all_pages(halves.get_person_tracking, "Persons", JobId=job_id)
    paged, pages = all_pages(halves.get_person_tracking, "Persons", JobId=job_id,
                             MaxResults=3)
    assert paged == whole and pages == -(-len(whole) // 3)
    first = halves.get_person_tracking(JobId=job_id, MaxResults=3, SortBy="INDEX")
    assert len(first["Persons"]) == 3 and first["NextToken"]


def test_the_client_request_token_is_idempotent(halves: Any) -> None:
    a = halves.start_person_tracking(Video=video(BOTH.name), ClientRequestToken="tok-1")
    b = halves.start_person_tracking(Video=video(BOTH.name), ClientRequestToken="tok-1")
    assert a["JobId"] == b["JobId"]
    with pytest.raises(ClientError) as caught:
        halves.start_person_tracking(Video=video(BOTH.name), ClientRequestToken="tok-1",
                                     JobTag="other")
    assert caught.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    wait_job(halves.get_person_tracking, a["JobId"], timeout=120)


@pytest.mark.parametrize(("params", "code"), [
    ({"SortBy": "NAME"}, "InvalidParameterException"),
    ({"SortBy": "index"}, "InvalidParameterException"),
    ({"MaxResults": 0}, "InvalidParameterException"),
    ({"MaxResults": "10"}, "InvalidParameterException"),
    ({"NextToken": "not-a-token"}, "InvalidPaginationTokenException"),
    ({"AggregateBy": "SEGMENTS"}, "InvalidParameterException"),
])
def test_bad_get_parameters(hd: Daemon, done: Any, params: dict[str, Any], code: str) -> None:
    status, out = _call(hd, "GetPersonTracking", {"JobId": done[0], **params})
    assert (status, out["__type"]) == (400, code), out


@pytest.mark.parametrize("body", [
    {}, {"Video": None}, {"Video": {"S3Object": {"Bucket": "vids"}}},
    {"Video": video(BOTH.name), "JobTag": "a b"},
    {"Video": video(BOTH.name), "ClientRequestToken": 5},
    {"Video": video(BOTH.name), "NotificationChannel": {"SNSTopicArn": 1}},
    {"Video": video(BOTH.name), "MinConfidence": 50},  # not one of its parameters
])
def test_bad_start_bodies_get_a_4xx(hd: Daemon, body: dict[str, Any]) -> None:
    status, out = _call(hd, "StartPersonTracking", body)
    assert 400 <= status < 500 and out["__type"].endswith("Exception"), (body, status, out)


def test_bad_start_input(halves: Any) -> None:
    with pytest.raises(ClientError) as caught:
        halves.start_person_tracking(Video=video("missing.mp4"))
    assert caught.value.response["Error"]["Code"] == "InvalidS3ObjectException"
    with pytest.raises(ClientError) as caught:
        halves.get_person_tracking(JobId="0" * 64)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_results_survive_a_restart_and_without_a_pack_start_is_refused(
        dirs: tuple[Path, Path], hd: Daemon, done: Any, halves: Any) -> None:
    """Last in the module: it stops the module's daemon and starts one without a pack."""
    job_id, _ = done
    before, _ = all_pages(halves.get_person_tracking, "Persons", JobId=job_id)
    hd.stop()
    d = _daemon(*dirs)
    try:
        rek: Any = client_for(d.endpoint)
        out = rek.get_person_tracking(JobId=job_id)
        after, _ = all_pages(rek.get_person_tracking, "Persons", JobId=job_id)
        with pytest.raises(ClientError) as caught:
            rek.start_person_tracking(Video=video(BOTH.name))
    finally:
        d.stop()
    assert out["JobStatus"] == "SUCCEEDED" and after == before
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert "no label pack" in error["Message"]
