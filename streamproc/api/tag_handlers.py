"""Wire handlers for tagging (collections and stream processors, by ARN)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamproc.errors import ResourceNotFoundException, ServiceQuotaExceededException
from streamproc.rekognition.constants import MAX_TAGS
from streamproc.storage.tags import TagStore

Params = dict[str, Any]


@dataclass
class Tagging:
    """Tags, and how to tell whether an ARN names something that exists."""

    tags: TagStore
    exists: Callable[[str], bool]


def _resource(s: Tagging, arn: str) -> str:
    if not s.exists(arn):
        raise ResourceNotFoundException(f"Resource {arn} not found")
    return arn


def tag_resource(s: Tagging, p: Params) -> dict[str, Any]:
    """TagResource."""
    arn = _resource(s, p["ResourceArn"])
    if len({**s.tags.get(arn), **p["Tags"]}) > MAX_TAGS:
        raise ServiceQuotaExceededException(f"A resource can have at most {MAX_TAGS} tags")
    s.tags.set(arn, p["Tags"])
    return {}


def untag_resource(s: Tagging, p: Params) -> dict[str, Any]:
    """UntagResource."""
    s.tags.remove(_resource(s, p["ResourceArn"]), p["TagKeys"])
    return {}


def list_tags_for_resource(s: Tagging, p: Params) -> dict[str, Any]:
    """ListTagsForResource."""
    return {"Tags": s.tags.get(_resource(s, p["ResourceArn"]))}


TAG_HANDLERS: dict[str, Callable[[Tagging, Params], dict[str, Any]]] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
