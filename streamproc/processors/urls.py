"""Where a processor reads video and writes records, and how URLs are shown safely."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MEDIA_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp", "file")
KVS_ARN = re.compile(r"^arn:([a-z\d-]+):kinesisvideo:([a-z\d-]+):\d{12}:.+$")
KDS_ARN = re.compile(r"^arn:([a-z\d-]+):kinesis:([a-z\d-]+):\d{12}:.+$")
_SECRET_PARAMS = {"password", "pass", "pwd", "passwd", "token", "access_token", "key",
                  "secret", "signature", "sig", "auth", "apikey", "api_key", "passphrase"}


def is_media_url(value: str) -> bool:
    """A URL PyAV can open, or an absolute file path."""
    if value.startswith("/"):
        return True
    scheme = urlsplit(value).scheme.lower()
    return scheme in MEDIA_SCHEMES


def is_video_input(value: str) -> bool:
    """Accepted as ``Input.KinesisVideoStream.Arn``: a KVS-style ARN or a media URL."""
    return bool(KVS_ARN.match(value)) or is_media_url(value)


def is_data_output(value: str) -> bool:
    """Accepted as ``Output.KinesisDataStream.Arn``: a KDS-style ARN or kafka://host:port/topic."""
    return bool(KDS_ARN.match(value)) or parse_kafka_url(value) is not None


def redact(value: str) -> str:
    """Hide credentials: user:password in the authority and secret-looking query values."""
    if value.startswith("/") or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            netloc = ("***:***@" if ":" in userinfo else "***@") + host
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs],
                              safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable url>"


@dataclass(frozen=True)
class KafkaTarget:
    """A topic, on the default cluster (bootstrap None) or a named one."""

    topic: str
    bootstrap: str | None


_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def parse_kafka_url(value: str) -> KafkaTarget | None:
    """``kafka://host:port[,host:port]/topic`` -> KafkaTarget, else None."""
    if not value.startswith("kafka://"):
        return None
    rest = value[len("kafka://"):]
    hosts, _, topic = rest.partition("/")
    if not hosts or not _TOPIC.match(topic):
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
        if _TOPIC.match(name):
            return KafkaTarget(topic=name, bootstrap=None)
    return None


def stream_name(arn: str) -> str:
    """The stream name inside a KVS ARN (``...:stream/NAME/123`` -> NAME)."""
    resource = arn.split(":", 5)[5]
    parts = resource.split("/")
    return parts[1] if len(parts) > 1 else resource
