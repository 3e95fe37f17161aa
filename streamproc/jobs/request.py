"""A Start request as the jobs package keeps it: defaults filled in, comparable as a whole.

Idempotency compares the whole request (a ClientRequestToken reused with another video,
threshold, tag or channel is IdempotentParameterMismatchException), so the stored form fills
in every default: omitting ``FaceMatchThreshold`` and sending 80 are the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamproc.rekognition.constants import DEFAULT_THRESHOLD, FACE_SEARCH
from streamproc.storage.objects import ObjectRef


@dataclass(frozen=True)
class JobRequest:
    """StartFaceDetection or StartFaceSearch, minus the token."""

    api: str  # FaceDetection | FaceSearch
    video: ObjectRef
    job_tag: str | None = None
    notification: dict[str, str] | None = None  # {SNSTopicArn, RoleArn}
    face_attributes: str = "DEFAULT"  # FaceDetection
    collection_id: str | None = None  # FaceSearch
    threshold: float = DEFAULT_THRESHOLD  # FaceSearch

    @property
    def shown(self) -> str:
        """bucket/name, for messages."""
        return f"{self.video.bucket}/{self.video.name}"

    def to_dict(self) -> dict[str, Any]:
        """The stored (and compared) form."""
        out: dict[str, Any] = {"Video": {"S3Object": self.video.to_wire()}}
        if self.job_tag is not None:
            out["JobTag"] = self.job_tag
        if self.notification is not None:
            out["NotificationChannel"] = dict(self.notification)
        if self.api == FACE_SEARCH:
            out["CollectionId"] = self.collection_id
            out["FaceMatchThreshold"] = float(self.threshold)
        else:
            out["FaceAttributes"] = self.face_attributes
        return out

    @classmethod
    def from_dict(cls, api: str, data: dict[str, Any]) -> JobRequest:
        """Back from the stored form (or from validated wire parameters)."""
        return cls(
            api=api, video=ObjectRef.from_wire(data["Video"]["S3Object"]),
            job_tag=data.get("JobTag"), notification=data.get("NotificationChannel"),
            face_attributes=data.get("FaceAttributes", "DEFAULT"),
            collection_id=data.get("CollectionId"),
            threshold=float(data.get("FaceMatchThreshold", DEFAULT_THRESHOLD)))
