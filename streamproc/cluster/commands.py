"""The cluster's own commands (beside :class:`~streamproc.cluster.ledger.Barrier`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from streamproc.ledger import Command


@dataclass(frozen=True)
class AdvanceEpoch(Command[None]):
    """Move every node to the next placement group, once, from epoch ``from_epoch``.

    The log spells the field ``from`` (a Python keyword), hence the payload overrides.
    """

    kind: ClassVar[str] = "placement.epoch"
    from_epoch: int

    def payload(self) -> dict[str, Any]:
        """``{"from": epoch}``."""
        return {"from": self.from_epoch}

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """``from``."""
        return frozenset({"from"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> AdvanceEpoch:
        """Inverse of :meth:`payload`."""
        return cls(int(payload["from"]))
