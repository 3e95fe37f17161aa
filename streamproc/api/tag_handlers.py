"""Wire handlers for tagging (collections and stream processors, by ARN).

A resource exists once in this daemon and its tags are kept under the ARN it was created
with. A request names it by the ARN written in the request's own region (the one Create and
Describe answered that client with): another region's, partition's or account's spelling
is ResourceNotFoundException (:func:`~streamproc.api.resources.own_resource`), and a
policy judges the resource itself, not the spelling. See README: ARNs and regions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.resources import own_resource
from streamproc.collections.service import CollectionService
from streamproc.errors import ResourceNotFoundException
from streamproc.ledger import Ledger
from streamproc.processors.service import ProcessorService
from streamproc.rekognition.constants import Arns
from streamproc.storage.tags import TagStore


@dataclass
class Tagging:
    """Tags (read here, changed through the ledger), and the key (if any) an ARN names."""

    tags: TagStore
    resolve: Callable[[str], str | None]
    ledger: Ledger


def tag_keys(arns: Arns, collections: CollectionService, processors: ProcessorService
             ) -> Callable[[str], str | None]:
    """Resolves an ARN of this account, in any region, to the key its tags are kept under."""

    def resolve(arn: str) -> str | None:
        parsed = arns.parse(arn)
        if parsed is None:
            return None
        kind, name = parsed
        if kind == "collection":
            return collections.tag_key(name)
        try:
            return processors.describe(name)[0].arn
        except ResourceNotFoundException:
            return None

    return resolve


def _resource(s: Tagging, arn: str, ctx: RequestContext) -> str:
    key = s.resolve(arn) if own_resource(arn, ctx.arns) is not None else None
    if key is None:
        raise ResourceNotFoundException(f"Resource {arn} not found")
    return key


def tag_resource(s: Tagging, p: Params, ctx: RequestContext) -> Response:
    """TagResource."""
    s.ledger.submit("tags.set", {"key": _resource(s, p["ResourceArn"], ctx), "tags": p["Tags"]})
    return {}


def untag_resource(s: Tagging, p: Params, ctx: RequestContext) -> Response:
    """UntagResource."""
    s.ledger.submit("tags.remove", {"key": _resource(s, p["ResourceArn"], ctx),
                                    "keys": p["TagKeys"]})
    return {}


def list_tags_for_resource(s: Tagging, p: Params, ctx: RequestContext) -> Response:
    """ListTagsForResource."""
    return {"Tags": s.tags.get(_resource(s, p["ResourceArn"], ctx))}


TAG_HANDLERS: dict[str, Callable[[Tagging, Params, RequestContext], Response]] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
