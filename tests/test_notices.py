"""Completion-notice channels checked at Start (no models, no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamproc.config import NotificationTarget, load_config
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.dataplane.output.transport import legal_topic
from streamproc.errors import InvalidParameterException
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.kinds.faces import FaceDetectionJobKind
from streamproc.jobs.notices import Notices
from streamproc.jobs.request import NotificationChannel
from streamproc.metrics import JobMetrics, NoticeSensor


class Submitted:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def submit(self, destination: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: Any) -> None:
        self.records.append((destination, topic))


def _notices(**topics: NotificationTarget) -> Notices:
    return Notices(Submitted(), "k:9092", topics,
                   NoticeSensor(JobMetrics.create(CollectorRegistry())),
                   OutputAllowlist.for_config(load_config(None, {"kafka.bootstrap": "k:9092"})))


def _arn(name: str) -> NotificationChannel:
    return NotificationChannel(f"arn:aws:sns:us-east-1:123456789012:{name}",
                               "arn:aws:iam::123456789012:role/r")


@pytest.mark.parametrize("name", ["bad topic", "tab\there", "..", ".", "x" * 250, "ünïcode",
                                  "semi;colon", "slash/topic"])
def test_a_topic_kafka_would_refuse_is_refused_at_start(name: str) -> None:
    with pytest.raises(InvalidParameterException, match="not a legal Kafka topic name"):
        _notices().target(_arn(name))


def test_a_mapping_to_an_illegal_topic_is_refused_too() -> None:
    notices = _notices(mapped=NotificationTarget(topic="bad topic"),
                       good=NotificationTarget(topic="jobs.done", bootstrap="other:9092"))
    with pytest.raises(InvalidParameterException, match="'bad topic'"):
        notices.target(_arn("mapped"))
    assert notices.target(_arn("good")) == ("other:9092", "jobs.done")


@pytest.mark.parametrize("name", ["AmazonRekognitionDone", "a", "jobs.done_2-x", "x" * 249,
                                  "..."])
def test_legal_topics_pass(name: str) -> None:
    assert legal_topic(name)
    assert _notices().target(_arn(name)) == ("k:9092", name)


@pytest.mark.parametrize("name", ["__consumer_offsets", "__transaction_state", "streamproc.state",
                                  "streamproc.placement"])
def test_a_notice_cannot_be_written_into_an_internal_topic(name: str) -> None:
    """Notices go to configured clusters only; a topic there must not be one that Kafka or
    the cluster's own ledger and placement read (a notice there would be applied)."""
    with pytest.raises(InvalidParameterException, match="refused by outputs.topics"):
        _notices().target(_arn(name))
    with pytest.raises(InvalidParameterException, match="refused by outputs.topics"):
        _notices(mapped=NotificationTarget(topic=name)).target(_arn("mapped"))


def _job(topic: str) -> Any:
    from streamproc.storage.jobs import StoredJob

    request = {"Video": {"S3Object": {"Bucket": "b", "Name": "v.mp4"}},
               "NotificationChannel": _arn(topic).stored()}
    return JobKinds([FaceDetectionJobKind()]).job(StoredJob(
        "job-1", "FaceDetection", None, request, "SUCCEEDED", "", None, 1, 0.0, 1.0))


def test_a_notice_with_nowhere_to_go_is_logged_and_counted_not_dropped_silently(
        caplog: pytest.LogCaptureFixture) -> None:
    """Its topic passed at Start; a configuration changed since (here: the topic is now
    refused) leaves nowhere to send it: the notice is not queued, and says so."""
    registry = CollectorRegistry()
    submitted = Submitted()
    notices = Notices(submitted, "k:9092", {}, NoticeSensor(JobMetrics.create(registry)),
                      OutputAllowlist.for_config(load_config(None, {
                          "kafka.bootstrap": "k:9092", "outputs.topics": ["faces-*"]})))
    with caplog.at_level("WARNING", logger="streamproc.jobs.notices"):
        notices.send(_job("jobs-done"), "SUCCEEDED", "", 2.0)
    assert submitted.records == []
    assert registry.get_sample_value("streamproc_job_notices_total", {"result": "dropped"}) == 1
    (record,) = [r for r in caplog.records if "job-1" in r.getMessage()]
    assert record.levelname == "WARNING" and "refused by outputs.topics" in record.getMessage()
    notices.send(_job("faces-done"), "SUCCEEDED", "", 2.0)  # one still allowed goes out
    assert submitted.records == [("k:9092", "faces-done")]
    assert registry.get_sample_value("streamproc_job_notices_total", {"result": "dropped"}) == 1
