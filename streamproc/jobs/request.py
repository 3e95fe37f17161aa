"""A Start request as the jobs package keeps it: typed, defaults filled in, comparable.

Each job kind has a request type of its own (:mod:`streamproc.jobs.kinds`), a subclass of
:class:`JobRequest`: what every job has (the object it reads, a tag, a notification
channel) and the kind's own fields. The API parses the wire into one; below the API only
the typed value travels.

Its *stored form* (:meth:`JobRequest.stored`) is what the ``job.start`` command carries and
the jobs table keeps: a JSON object whose names are those the wire had when it was first
written (``Video.S3Object``, ``JobTag``, ``NotificationChannel``, ``FaceMatchThreshold``...),
because rows and logs written then are still read. Idempotency compares the whole stored
form (a ClientRequestToken reused with another video, threshold, tag or channel is
IdempotentParameterMismatchException), so it fills in every default: omitting
``FaceMatchThreshold`` and sending 80 are the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from streamproc.storage.objects import ObjectRef

R = TypeVar("R", bound="JobRequest")


@dataclass(frozen=True)
class NotificationChannel:
    """Where the completion notice goes (``SNSTopicArn`` names a Kafka topic here)."""

    topic_arn: str
    role_arn: str | None = None

    def stored(self) -> dict[str, str]:
        """The stored form: the wire's names."""
        out = {"SNSTopicArn": self.topic_arn}
        if self.role_arn is not None:
            out["RoleArn"] = self.role_arn
        return out

    @classmethod
    def from_stored(cls, data: dict[str, str]) -> NotificationChannel:
        """Back from the stored form."""
        return cls(data["SNSTopicArn"], data.get("RoleArn"))


def s3_object(ref: ObjectRef) -> dict[str, str]:
    """``ref`` as an ``S3Object`` structure (no Version when it has none).

    The stored form of a request's object, in the wire's shape it was first written in;
    Get* answers with the same structure, so the API writes it with this too.
    """
    out = {"Bucket": ref.bucket, "Name": ref.name}
    if ref.version is not None:
        out["Version"] = ref.version
    return out


@dataclass(frozen=True)
class JobRequest:
    """What every job's Start has, minus the token; a kind's request adds its own fields."""

    source: ObjectRef  # the object the job reads (Video.S3Object)
    job_tag: str | None = None
    notification: NotificationChannel | None = None

    def stored(self) -> dict[str, Any]:
        """The stored (and compared) form, keys in the order they were always written."""
        obj = self.source
        out: dict[str, Any] = {"Video": {"S3Object": s3_object(obj)}}
        if self.job_tag is not None:
            out["JobTag"] = self.job_tag
        if self.notification is not None:
            out["NotificationChannel"] = self.notification.stored()
        return {**out, **self._own_stored()}

    def _own_stored(self) -> dict[str, Any]:
        """The kind's own fields in the stored form (none here)."""
        return {}

    @classmethod
    def from_stored(cls: type[R], data: dict[str, Any]) -> R:
        """Back from the stored form (of a row or a ``job.start`` command)."""
        obj = data["Video"]["S3Object"]
        channel = data.get("NotificationChannel")
        return cls(ObjectRef(obj["Bucket"], obj["Name"], obj.get("Version")),
                   data.get("JobTag"),
                   NotificationChannel.from_stored(channel) if channel else None,
                   **cls._own_from_stored(data))

    @classmethod
    def _own_from_stored(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The kind's own fields (constructor keywords) from the stored form."""
        return {}
