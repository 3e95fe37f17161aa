"""What AssociateFaces and DisassociateFaces did: the faces changed, those refused and why.

Its own module because three places share it: the user commands (their result type), the
user rules that decide it, and the ClientRequestToken record that replays it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from streamproc.rekognition.constants import UserStatus

FACE_NOT_FOUND = "FACE_NOT_FOUND"
ASSOCIATED_TO_A_DIFFERENT_USER = "ASSOCIATED_TO_A_DIFFERENT_USER"
LOW_MATCH_CONFIDENCE = "LOW_MATCH_CONFIDENCE"


@dataclass(frozen=True)
class FaceOutcome:
    """A face AssociateFaces or DisassociateFaces could not change, and why."""

    face_id: str
    reasons: list[str]
    user_id: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class Membership:
    """What AssociateFaces / DisassociateFaces did."""

    done: list[str]
    failed: list[FaceOutcome] = field(default_factory=list)
    status: UserStatus = UserStatus.CREATED

    def to_saved(self) -> dict[str, Any]:
        """A JSON-able form, remembered with the ClientRequestToken."""
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> Membership:
        """Inverse of :meth:`to_saved`."""
        return cls(data["done"], [FaceOutcome(**f) for f in data["failed"]],
                   UserStatus(data["status"]))
