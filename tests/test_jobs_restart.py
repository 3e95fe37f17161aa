"""Daemon restarts during stored-video jobs, and the limit on queued jobs (real models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, make_config
from jobs_helpers import (
    BOTH,
    all_pages,
    channel,
    notices_for,
    stop_bounded,
    video,
    wait_job,
    wait_progress,
)
from streams import Records
from videos import frame_times_ms, looped

from streamproc.daemon import Daemon

LOOPS = 5  # 22.4 s of video; every frame analysed (12.5 fps): 280 frames


def _daemon(data: Path, objects: Path, broker: Any, **extra: Any) -> Daemon:
    d = Daemon(make_config(data, **{
        "objects.local_root": str(objects), "kafka.bootstrap": broker.bootstrap,
        "jobs.sample_fps": 12.5, "jobs.max_jobs": 2, **extra}))
    d.start()
    return d


def test_restart_resumes_or_fails_jobs_and_the_queue_is_bounded(
        tmp_path: Path, broker: Any) -> None:
    objects = tmp_path / "objects"
    (objects / "vids").mkdir(parents=True)
    long = looped(BOTH, LOOPS, objects / "vids" / "long.mp4")
    data = tmp_path / "data"

    first = _daemon(data, objects, broker)
    rek = client_for(first.endpoint)
    resumed = rek.start_face_detection(Video=video("long.mp4"))["JobId"]
    wait_progress(first, resumed)
    stop_bounded(first)  # mid-job

    second = _daemon(data, objects, broker)
    rek = client_for(second.endpoint)
    during = rek.get_face_detection(JobId=resumed)
    assert during["JobStatus"] == "IN_PROGRESS"
    assert "Resumed after a daemon restart" in during["StatusMessage"]
    assert "(attempt 2 of 3)" in during["StatusMessage"]
    cut = rek.start_face_detection(Video=video("long.mp4"), JobTag="cut",
                                   NotificationChannel=channel("restart-notices"))["JobId"]
    with pytest.raises(rek.exceptions.LimitExceededException, match="limit is 2"):
        rek.start_face_detection(Video=video("long.mp4"), JobTag="third")
    done = wait_job(rek.get_face_detection, resumed, timeout=240)
    assert done["JobStatus"] == "SUCCEEDED" and "StatusMessage" not in done
    faces, _ = all_pages(rek.get_face_detection, "Faces", JobId=resumed)
    expected = frame_times_ms(long)
    per_time: dict[int, int] = {}
    for face in faces:
        per_time[face["Timestamp"]] = per_time.get(face["Timestamp"], 0) + 1
    assert set(per_time) <= set(expected) and len(per_time) >= 0.95 * len(expected)
    assert max(per_time.values()) == 2  # nothing doubled by the interrupted launch
    wait_progress(second, cut)
    stop_bounded(second)  # mid-job again

    third = _daemon(data, objects, broker, **{"jobs.max_attempts": 1})
    rek = client_for(third.endpoint)
    failed = rek.get_face_detection(JobId=cut)
    assert failed["JobStatus"] == "FAILED" and "Faces" not in failed
    assert failed["StatusMessage"] == ("The job was cut off 1 times by a daemon restart or its "
                                       "node leaving the cluster (jobs.max_attempts = 1); it "
                                       "was not finished")
    assert rek.get_face_detection(JobId=resumed)["JobStatus"] == "SUCCEEDED"
    records = Records(broker.bootstrap, "restart-notices")
    got = records.wait_for(lambda r: notices_for(r, cut), 30)
    records.close()
    assert [n["Status"] for n in notices_for(got, cut)] == ["FAILED"]
    assert notices_for(got, cut)[0]["JobTag"] == "cut"
    stop_bounded(third)
