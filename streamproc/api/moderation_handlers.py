"""Wire handlers for image moderation: DetectModerationLabels.

The request is parsed here into a :class:`~streamproc.moderation.service.ModerationRequest`
(botocore's model already checked its ranges), checked before the image is read, and the
image goes through the same :class:`~streamproc.api.images.ImageLoader` as the face
operations (same limits, same errors). ``ContentTypes``, ``HumanLoopActivationOutput`` and
``ProjectVersion`` are never in the response: no pack detects content types, and human
review and adapters are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.moderation.service import ModerationRequest, ModerationService
from streamproc.moderation.types import min_confidence


@dataclass
class ModerationApi:
    """What the moderation handlers call; built by the daemon."""

    moderation: ModerationService
    loader: ImageLoader


def moderation_request(p: Params) -> ModerationRequest:
    """MinConfidence (default 50), ProjectVersion and HumanLoopConfig, as the domain sees them."""
    return ModerationRequest(
        min_confidence=min_confidence(p.get("MinConfidence")),
        project_version=p.get("ProjectVersion"),
        human_review="HumanLoopConfig" in p)


def detect_moderation_labels(s: ModerationApi, p: Params, ctx: RequestContext) -> Response:
    """DetectModerationLabels."""
    request = moderation_request(p)
    s.moderation.check(request)  # before the image is read
    found = s.moderation.detect(s.loader.load(p["Image"]), request)
    return {"ModerationLabels": [label.wire() for label in found.labels],
            "ModerationModelVersion": found.model_version}


MODERATION_HANDLERS: dict[str, Callable[[ModerationApi, Params, RequestContext], Response]] = {
    "DetectModerationLabels": detect_moderation_labels,
}
