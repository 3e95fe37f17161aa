"""What a handler knows about the request besides its parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamproc.api.auth import signed_region
from streamproc.rekognition.constants import Arns, valid_region

# A validated request body, and a response body, as handlers see them.
Params = dict[str, Any]
Response = dict[str, Any]


@dataclass(frozen=True)
class RequestContext:
    """Per-request facts the transport found: the region ARNs are written in."""

    arns: Arns


def request_context(headers: dict[str, str], configured: Arns) -> RequestContext:
    """The context of a request with these (lower-case) headers.

    ARNs are written in the region the client signed for, so an ``eu-west-1`` client sees
    ``eu-west-1`` ARNs; unsigned requests, and regions that cannot appear in an ARN, get the
    configured region.
    """
    region = signed_region(headers)
    if region is None or not valid_region(region):
        return RequestContext(configured)
    return RequestContext(configured.for_region(region))
