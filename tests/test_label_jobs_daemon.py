"""StartLabelDetection / GetLabelDetection through boto3 against a real daemon, a fake pack.

The daemon is real (transport, validation, service, ledger, scheduler, video runner, label
stage, supervision); only its label pack is a fake (:class:`Striped`), put where the daemon
builds its label stage, so these run without the real pack (tests/test_label_jobs_e2e.py has
that). The fake answers from the pixels it is given, so what comes back is what the stage
and the builder made of real decoded frames.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from conftest import VIDEO, client_for, make_config
from jobs_helpers import all_pages, sample_times, stop_bounded, video, wait_job, wait_progress
from videos import frame_times_ms, looped

from streamproc.daemon import Daemon
from streamproc.dataplane.plane import DataPlane
from streamproc.labels.types import Box, Instance, Label, LabelDetector

CLIP = VIDEO / "classroom.mp4"


class Striped:
    """A fake pack: Person (boxed) in every frame, and Bright where the frame's mean is over
    the clip's middle grey, both at confidences read from the pixels."""

    model_version = "fake-striped"

    def __init__(self) -> None:
        self.floors: set[float] = set()
        self.slow_s = 0.0  # a pause per frame, so a restart lands mid-job

    def detect(self, image: npt.NDArray[np.uint8], min_confidence: float) -> tuple[Label, ...]:
        self.floors.add(min_confidence)
        time.sleep(self.slow_s)
        mean = float(image.mean())
        person = Label("Person", 60 + mean % 40, (Instance(Box(0.1, 0.2, 0.3, 0.6), 75.0),
                                                  Instance(Box(0.6, 0.2, 0.2, 0.5), 20.0)),
                       categories=("Person Description",))
        out = [person]
        if mean > 100:
            out.append(Label("Bright", mean / 2.55, categories=("Colors and Visual Composition",)))
        return tuple(label for label in out if label.confidence >= min_confidence)


@pytest.fixture
def fake_pack(monkeypatch: pytest.MonkeyPatch) -> Striped:
    """Every daemon started in the test builds its label stage over one :class:`Striped`."""
    pack = Striped()
    real = Daemon._label_stage

    def with_fake(self: Daemon, detector: LabelDetector | None, plane: DataPlane) -> Any:
        return real(self, pack, plane)

    monkeypatch.setattr(Daemon, "_label_stage", with_fake)
    return pack


def _objects(root: Path) -> Path:
    (root / "vids").mkdir(parents=True)
    shutil.copy(CLIP, root / "vids" / CLIP.name)
    return root


def _daemon(data: Path, objects: Path) -> Daemon:
    d = Daemon(make_config(data, **{"objects.local_root": str(objects),
                                    "kafka.bootstrap": "127.0.0.1:9"}))
    d.start()
    return d


@pytest.fixture
def rek(tmp_path: Path, fake_pack: Striped) -> Iterator[Any]:
    d = _daemon(tmp_path / "data", _objects(tmp_path / "objects"))
    yield client_for(d.endpoint)
    d.stop()


def test_a_label_job_through_boto3(rek: Any, fake_pack: Striped) -> None:
    job_id = rek.start_label_detection(Video=video(CLIP.name), JobTag="fake",
                                       MinConfidence=30)["JobId"]
    out = wait_job(rek.get_label_detection, job_id)
    assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
    assert (out["LabelModelVersion"], out["JobTag"]) == ("fake-striped", "fake")
    assert out["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"}
    assert fake_pack.floors == {0.0}  # the stage asks for everything; the job keeps >= 30
    sampled = sample_times(frame_times_ms(CLIP))
    labels, _ = all_pages(rek.get_label_detection, "Labels", JobId=job_id)
    persons = [r for r in labels if r["Label"]["Name"] == "Person"]
    assert [r["Timestamp"] for r in persons] == sampled  # every sampled frame, in order
    person = persons[0]["Label"]
    assert person["Instances"] == [{"BoundingBox": {"Width": 0.3, "Height": 0.6, "Left": 0.1,
                                                    "Top": 0.2}, "Confidence": 75.0}]
    assert person["Categories"] == [{"Name": "Person Description"}]
    assert (person["Parents"], person["Aliases"]) == ([], [])
    segments = rek.get_label_detection(JobId=job_id, AggregateBy="SEGMENTS")["Labels"]
    person_segments = [s for s in segments if s["Label"]["Name"] == "Person"]
    assert [(s["StartTimestampMillis"], s["EndTimestampMillis"]) for s in person_segments] == [
        (sampled[0], sampled[-1])]
    assert person_segments[0]["Label"]["Confidence"] == max(
        r["Label"]["Confidence"] for r in persons)
    by_name = rek.get_label_detection(JobId=job_id, SortBy="NAME")["Labels"]
    keys = [(r["Label"]["Name"], -r["Label"]["Confidence"]) for r in by_name]
    assert keys == sorted(keys) and len(by_name) == len(labels)


def test_filters_and_min_confidence_through_boto3(rek: Any) -> None:
    only_person = rek.start_label_detection(Video=video(CLIP.name), MinConfidence=0, Settings={
        "GeneralLabels": {"LabelCategoryExclusionFilters": ["Colors and Visual Composition"]}})
    out = wait_job(rek.get_label_detection, only_person["JobId"])
    assert {r["Label"]["Name"] for r in out["Labels"]} == {"Person"}
    assert all(len(r["Label"]["Instances"]) == 2 for r in out["Labels"])  # 20 >= 0 kept
    strict = rek.start_label_detection(Video=video(CLIP.name), MinConfidence=99.9)
    out = wait_job(rek.get_label_detection, strict["JobId"])
    assert out["JobStatus"] == "SUCCEEDED" and out["Labels"] == []


def test_a_restart_mid_job_resumes_it_and_doubles_nothing(tmp_path: Path,
                                                          fake_pack: Striped) -> None:
    objects = _objects(tmp_path / "objects")
    long = looped(CLIP, 3, objects / "vids" / "long.mp4")
    fake_pack.slow_s = 0.05  # about 2 s of analysis for 41 sampled frames
    data = tmp_path / "data"
    first = _daemon(data, objects)
    job_id = client_for(first.endpoint).start_label_detection(Video=video("long.mp4"))["JobId"]
    wait_progress(first, job_id, 0.2, timeout=60)
    stop_bounded(first)
    fake_pack.slow_s = 0.0
    second = _daemon(data, objects)
    try:
        rek = client_for(second.endpoint)
        during = rek.get_label_detection(JobId=job_id)
        assert during["JobStatus"] == "IN_PROGRESS"
        assert "Resumed after a daemon restart" in during["StatusMessage"]
        out = wait_job(rek.get_label_detection, job_id)
        assert out["JobStatus"] == "SUCCEEDED", out.get("StatusMessage")
        labels, _ = all_pages(rek.get_label_detection, "Labels", JobId=job_id)
    finally:
        second.stop()
    persons = Counter(r["Timestamp"] for r in labels if r["Label"]["Name"] == "Person")
    assert sorted(persons) == sample_times(frame_times_ms(long))  # none lost
    assert set(persons.values()) == {1}  # none doubled by the interrupted launch
