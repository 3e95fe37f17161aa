"""Tag operations, API side: find the resource an ARN names, submit the change, read tags.

Nothing here changes tags directly: TagResource and UntagResource become commands whose
appliers (:mod:`streamproc.tags.rules`) hold the limit.
"""

from __future__ import annotations

from streamproc.errors import ResourceNotFoundException
from streamproc.ledger import Ledger
from streamproc.storage.tags import TagStore
from streamproc.tags.commands import RemoveTags, SetTags
from streamproc.tags.rules import TagKeys


def resource_not_found(arn: str) -> ResourceNotFoundException:
    """The one error for an ARN that names nothing here (whatever the reason)."""
    return ResourceNotFoundException(f"Resource {arn} not found")


class TagService:
    """What the API calls for tags; raises domain errors only."""

    def __init__(self, tags: TagStore, ledger: Ledger, keys: TagKeys) -> None:
        self._tags = tags
        self._ledger = ledger
        self._keys = keys

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        """Add or overwrite tags (at most MAX_TAGS in all)."""
        self._ledger.submit(SetTags(self._key(arn), tags))

    def untag(self, arn: str, keys: list[str]) -> None:
        """Remove tags by key."""
        self._ledger.submit(RemoveTags(self._key(arn), keys))

    def list(self, arn: str) -> dict[str, str]:
        """All tags of the resource."""
        return self._tags.get(self._key(arn))

    def _key(self, arn: str) -> str:
        key = self._keys.key(arn)
        if key is None:
            raise resource_not_found(arn)
        return key
