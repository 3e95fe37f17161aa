"""Where a processor reads video and writes records (redaction: ``streamproc.redaction``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from streamproc.config import MEDIA_SCHEMES
from streamproc.dataplane.output.transport import legal_topic
from streamproc.redaction import redact, scrub

KVS_ARN = re.compile(r"^arn:([a-z\d-]+):kinesisvideo:([a-z\d-]+):\d{12}:.+$")
KDS_ARN = re.compile(r"^arn:([a-z\d-]+):kinesis:([a-z\d-]+):\d{12}:.+$")


def is_media_url(value: str) -> bool:
    """A URL PyAV can open, or an absolute file path."""
    if value.startswith("/"):
        return True
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket: not a URL we can open
        return False
    return scheme in MEDIA_SCHEMES


def is_video_input(value: str) -> bool:
    """Accepted as ``Input.KinesisVideoStream.Arn``: a KVS-style ARN or a media URL."""
    return bool(KVS_ARN.match(value)) or is_media_url(value)


def is_data_output(value: str) -> bool:
    """Accepted as ``Output.KinesisDataStream.Arn``: a KDS-style ARN or kafka://host:port/topic."""
    return bool(KDS_ARN.match(value)) or parse_kafka_url(value) is not None


@dataclass(frozen=True)
class KafkaTarget:
    """A topic, on the default cluster (bootstrap None) or a named one."""

    topic: str
    bootstrap: str | None


def parse_kafka_url(value: str) -> KafkaTarget | None:
    """``kafka://host:port[,host:port]/topic`` -> KafkaTarget, else None."""
    if not value.startswith("kafka://"):
        return None
    rest = value[len("kafka://"):]
    hosts, _, topic = rest.partition("/")
    # Bootstrap servers are host:port pairs; userinfo would end up in status messages,
    # metric labels and logs, which show the destination as it is written.
    if not hosts or "@" in hosts or not legal_topic(topic):
        return None
    return KafkaTarget(topic=topic, bootstrap=hosts)


def output_target(value: str) -> KafkaTarget | None:
    """Where records for this output value go; None if it is not a valid output."""
    kafka = parse_kafka_url(value)
    if kafka is not None:
        return kafka
    if KDS_ARN.match(value):
        # arn:aws:kinesis:region:account:stream/NAME -> topic NAME on the default cluster.
        name = value.split(":", 5)[5].split("/", 1)[-1]
        if legal_topic(name):
            return KafkaTarget(topic=name, bootstrap=None)
    return None


def destination_of(output_arn: str, default: str | None) -> tuple[str, str] | None:
    """(Kafka bootstrap, topic) for an output value; None if it names no topic or no cluster.

    The one place that decides which cluster a processor writes to: a kafka:// URL names
    its own, a Kinesis-data-style ARN uses ``default`` (``kafka.bootstrap``).
    """
    target = output_target(output_arn)
    if target is None:
        return None
    destination = target.bootstrap or default
    return (destination, target.topic) if destination else None


def stream_name(arn: str) -> str:
    """The stream name inside a KVS ARN (``...:stream/NAME/123`` -> NAME)."""
    resource = arn.split(":", 5)[5]
    parts = resource.split("/")
    return parts[1] if len(parts) > 1 else resource


__all__ = ["redact", "scrub"]  # re-exported: callers above the processors use these
