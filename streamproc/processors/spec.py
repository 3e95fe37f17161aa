"""A stream processor's definition: what CreateStreamProcessor was given."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from streamproc.rekognition.constants import FACE_SEARCH


@dataclass(frozen=True)
class ProcessorSpec:
    """Everything that defines a processor, as given by the client (secrets included)."""

    name: str
    arn: str
    input_arn: str
    output_arn: str
    collection_id: str
    threshold: float
    role_arn: str
    created: float
    regions: list[dict[str, Any]] = field(default_factory=list)
    data_sharing: bool | None = None
    notification: dict[str, Any] | None = None
    kms_key_id: str | None = None
    kind: str = FACE_SEARCH  # which processor kind (the Settings key) it is

    def with_updates(self, **changes: Any) -> ProcessorSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The definition as a plain dict (what the store keeps)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessorSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
