"""The tag rules: how many tags a resource may have, and where an ARN's tags are kept.

:class:`TagRules` applies the tag commands in ledger order (the limit depends on the
tags already there, so it is checked where every node sees the same ones).
:class:`TagKeys` answers which key an ARN's tags are kept under: the ARN the resource was
created with, whatever region a client names now, asked of the resource's owner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from streamproc.errors import ServiceQuotaExceededException
from streamproc.ledger import Applied, Appliers
from streamproc.rekognition.constants import MAX_TAGS, Arns
from streamproc.storage.tags import TagStore
from streamproc.tags.commands import RemoveTags, SetTags

KeyOf = Callable[[str], str | None]  # a resource's name -> its tag key; None: no such one


class TagRules:
    """Applies the tag commands to the tag store."""

    def __init__(self, tags: TagStore) -> None:
        self._tags = tags

    def register(self, appliers: Appliers) -> None:
        """Declare the tag commands."""
        appliers.register(SetTags, self._set)
        appliers.register(RemoveTags, self._remove)

    def _set(self, c: SetTags, where: Applied) -> None:
        if len({**self._tags.get(c.key), **c.tags}) > MAX_TAGS:
            raise ServiceQuotaExceededException(f"A resource can have at most {MAX_TAGS} tags")
        self._tags.set(c.key, c.tags)

    def _remove(self, c: RemoveTags, where: Applied) -> None:
        self._tags.remove(c.key, c.keys)


class TagKeys:
    """An ARN of this account, in any region -> the key its resource's tags are kept under.

    Each taggable resource type (``collection``, ``streamprocessor``: the type in the ARN)
    has one owner that knows its resources by name.
    """

    def __init__(self, arns: Arns, owners: Mapping[str, KeyOf]) -> None:
        self._arns = arns
        self._owners = dict(owners)

    def key(self, arn: str) -> str | None:
        """The key, or None when the ARN names no resource here."""
        parsed = self._arns.parse(arn)
        if parsed is None:
            return None
        resource_type, name = parsed
        owner = self._owners.get(resource_type)
        return owner(name) if owner is not None else None
