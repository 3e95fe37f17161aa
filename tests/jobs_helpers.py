"""Helpers for the stored-video job tests: polling, expected sample times, notices."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import VIDEO

from streamproc.daemon import Daemon

BOTH = VIDEO / "head-pose-face-detection-female-and-male.mp4"
BUCKET = "vids"
LEFT_OF = 200 / 480  # in the two-person clip the woman is left of x=200 px
ROLE = "arn:aws:iam::123456789012:role/rekognition"


def video(name: str, bucket: str = BUCKET, **extra: str) -> dict[str, Any]:
    """A Video structure naming an object."""
    return {"S3Object": {"Bucket": bucket, "Name": name, **extra}}


def channel(topic: str) -> dict[str, str]:
    """A NotificationChannel whose SNS topic name is ``topic``."""
    return {"SNSTopicArn": f"arn:aws:sns:us-east-1:123456789012:{topic}", "RoleArn": ROLE}


def wait_job(get: Callable[..., dict[str, Any]], job_id: str, timeout: float = 90.0,
             **params: Any) -> dict[str, Any]:
    """Poll a Get* operation until the job is no longer IN_PROGRESS."""
    deadline = time.monotonic() + timeout
    while True:
        out = get(JobId=job_id, **params)
        if out["JobStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def all_pages(get: Callable[..., dict[str, Any]], key: str, **params: Any
              ) -> tuple[list[dict[str, Any]], int]:
    """Every result of a finished job, following NextToken; also the number of pages."""
    items, token, pages = [], None, 0
    while True:
        out = get(**params, **({"NextToken": token} if token else {}))
        items += out[key]
        pages += 1
        token = out.get("NextToken")
        if not token:
            return items, pages


def sample_times(frame_times_ms: list[int], period_ms: int = 200) -> list[int]:
    """The first frame at or after each multiple of ``period_ms``: when a job looks."""
    end = frame_times_ms[-1]
    return sorted({min(t for t in frame_times_ms if t >= k * period_ms)
                   for k in range(end // period_ms + 1) if k * period_ms <= end})


def centre_x(box: dict[str, float]) -> float:
    """Horizontal centre of a BoundingBox."""
    return box["Left"] + box["Width"] / 2


def notices_for(records: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    """Notices about ``job_id`` among records read from a topic."""
    return [r for r in records if r.get("JobId") == job_id]


def decode(value: bytes) -> dict[str, Any]:
    """A record's JSON."""
    return json.loads(value)


def wait_progress(d: Daemon, job_id: str, at_least: float = 0.1, timeout: float = 120.0
                  ) -> None:
    """Until the job's progress metric reaches ``at_least`` on ``d`` (fails past ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = d.registry.get_sample_value("streamproc_job_progress_ratio", {"job_id": job_id})
        if value is not None and value >= at_least:
            return
        time.sleep(0.01)
    pytest.fail(f"job {job_id} made no progress")


def stop_bounded(d: Daemon) -> None:
    """Stop ``d`` mid-job: the stop must be bounded."""
    started = time.monotonic()
    d.stop()
    assert time.monotonic() - started < 15  # bounded, with a job mid-way
