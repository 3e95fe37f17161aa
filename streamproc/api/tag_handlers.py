"""Wire handlers for tagging (collections and stream processors, by ARN).

A resource exists once in this daemon and its tags are kept under the ARN it was created
with. A request names it by the ARN written in the request's own region (the one Create and
Describe answered that client with): another region's, partition's or account's spelling
is ResourceNotFoundException (:func:`~streamproc.api.resources.own_resource`), and a
policy judges the resource itself, not the spelling. See docs/api.md: ARNs and regions. Which
resource the ARN then names, and the changes, are :mod:`streamproc.tags`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.resources import own_resource
from streamproc.tags.service import TagService, resource_not_found


def _spelt_here(arn: str, ctx: RequestContext) -> str:
    """The ARN, if it is spelt as this request's region writes it."""
    if own_resource(arn, ctx.arns) is None:
        raise resource_not_found(arn)
    return arn


def tag_resource(s: TagService, p: Params, ctx: RequestContext) -> Response:
    """TagResource."""
    s.tag(_spelt_here(p["ResourceArn"], ctx), p["Tags"])
    return {}


def untag_resource(s: TagService, p: Params, ctx: RequestContext) -> Response:
    """UntagResource."""
    s.untag(_spelt_here(p["ResourceArn"], ctx), p["TagKeys"])
    return {}


def list_tags_for_resource(s: TagService, p: Params, ctx: RequestContext) -> Response:
    """ListTagsForResource."""
    return {"Tags": s.list(_spelt_here(p["ResourceArn"], ctx))}


TAG_HANDLERS: dict[str, Callable[[TagService, Params, RequestContext], Response]] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
