"""Completion notices: the JSON Rekognition publishes to SNS, published to Kafka instead.

``NotificationChannel.SNSTopicArn`` names a Kafka topic: a configured mapping
(``jobs.notification_topics``, by ARN or by topic name) gives topic and cluster, otherwise
the ARN's topic name (``arn:aws:sns:REGION:ACCOUNT:NAME`` -> ``NAME``) on the default
cluster. Notices go through the daemon's publisher, so they share its outbox and disk spool
with the stream processors' records: a notice waits out a Kafka outage instead of being lost.
A topic Kafka would refuse (``bad topic``) is refused at Start, as processor outputs are, so
no notice is queued that can never be sent.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

from streamproc.config import NotificationTarget
from streamproc.dataplane.output.outputs import OutputAllowlist, OutputRefused
from streamproc.dataplane.output.transport import legal_topic
from streamproc.errors import InvalidParameterException
from streamproc.jobs.kind import Job
from streamproc.jobs.request import NotificationChannel
from streamproc.metrics import NoticeSensor

logger = logging.getLogger(__name__)


class NoticePublisher(Protocol):
    """The publisher's submit (``dataplane.output.publish.Publisher``)."""

    def submit(self, destination: str, processor: str, topic: str, value: bytes,
               decoded_at: float, sensor: Any) -> None:
        """Queue one record, keyed by ``processor``."""


def notice(job: Job[Any], status: str, message: str, finished: float) -> dict[str, Any]:
    """The SNS message body for a finished job (its "API": the kind's Start operation)."""
    video = job.request.source
    body: dict[str, Any] = {"JobId": job.job_id, "Status": status,
                            "API": job.kind.operation, "Message": message,
                            "Timestamp": int(round(finished * 1000)),
                            "Video": {"S3ObjectName": video.name, "S3Bucket": video.bucket}}
    if job.request.job_tag is not None:
        body["JobTag"] = job.request.job_tag
    return body


class Notices:
    """Resolves notification channels and hands notices to the publisher."""

    def __init__(self, publisher: NoticePublisher, default_cluster: str | None,
                 topics: dict[str, NotificationTarget], sensor: NoticeSensor,
                 outputs: OutputAllowlist) -> None:
        self._outputs = outputs
        self._publisher = publisher
        self._default = default_cluster
        self._topics = topics
        self._sensor = sensor

    def target(self, channel: NotificationChannel) -> tuple[str, str]:
        """(cluster, topic) for a NotificationChannel; InvalidParameterException if none."""
        arn = channel.topic_arn
        name = arn.rsplit(":", 1)[-1]
        mapped = self._topics.get(arn) or self._topics.get(name)
        topic = mapped.topic if mapped is not None else name
        cluster = (mapped.bootstrap if mapped is not None else None) or self._default
        if cluster is None:
            raise InvalidParameterException(
                f"NotificationChannel.SNSTopicArn {arn}: no Kafka cluster to publish it on "
                "(set kafka.bootstrap, or map it in jobs.notification_topics)")
        if not legal_topic(topic):
            raise InvalidParameterException(
                f"NotificationChannel.SNSTopicArn {arn}: {topic!r} is not a legal Kafka topic "
                "name (1 to 249 of A-Z a-z 0-9 . _ -, and not . or ..)")
        self._check_topic(arn, topic)
        return cluster, topic

    def _check_topic(self, arn: str, topic: str) -> None:
        # The cluster is always a configured one (the default or a mapping's); the topic
        # still must not be internal (a notice in the cluster's ledger would be applied).
        try:
            self._outputs.check_topic(topic)
        except OutputRefused as exc:
            raise InvalidParameterException(
                f"NotificationChannel.SNSTopicArn {arn} refused by outputs.{exc.rule}: "
                f"{exc.message}") from None

    def send(self, job: Job[Any], status: str, message: str, finished: float) -> None:
        """Queue the notice of a finished job, if it asked for one."""
        channel = job.request.notification
        if channel is None:
            return
        try:
            cluster, topic = self.target(channel)
        except InvalidParameterException as exc:
            # Checked at Start; a configuration changed since then leaves nowhere to send it.
            logger.warning("job %s: its %s notice is not sent: %s", job.job_id, status,
                           exc.message)
            self._sensor.dropped()
            return
        value = json.dumps(notice(job, status, message, finished), separators=(",", ":"))
        self._publisher.submit(cluster, job.job_id, topic, value.encode(), time.monotonic(),
                               self._sensor)
