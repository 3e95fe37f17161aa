"""A stream processor's definition: what CreateStreamProcessor was given."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from streamproc.dataplane.regions import Region, regions_from_wire, regions_to_wire
from streamproc.rekognition.constants import FACE_SEARCH


@dataclass(frozen=True)
class ProcessorSpec:
    """Everything that defines a processor, as given by the client (secrets included).

    ``regions`` are parsed :class:`~streamproc.dataplane.regions.Region` values: the API
    parses a request's, :meth:`from_dict` a stored spec's or a logged one's. Only
    :meth:`to_dict` and :meth:`from_dict` see their JSON, which round-trips unchanged.
    """

    name: str
    arn: str
    input_arn: str
    output_arn: str
    collection_id: str
    threshold: float
    role_arn: str
    created: float
    regions: tuple[Region, ...] = ()
    data_sharing: bool | None = None
    notification: dict[str, str] | None = None
    kms_key_id: str | None = None
    kind: str = FACE_SEARCH  # which processor kind (the Settings key) it is

    def with_updates(self, **changes: Any) -> ProcessorSpec:
        """A copy with some fields changed (``regions`` as parsed Regions)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The definition as a plain dict (what the store and the log keep)."""
        out = asdict(replace(self, regions=()))
        out["regions"] = regions_to_wire(self.regions)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessorSpec:
        """Inverse of :meth:`to_dict`: the store's and the log's JSON, regions parsed."""
        fields = dict(data)
        fields["regions"] = regions_from_wire(fields.get("regions", ()))
        return cls(**fields)
