"""Wire handlers for image moderation: DetectModerationLabels.

The request is parsed here into a :class:`~streamproc.moderation.service.ModerationRequest`
(botocore's model already checked its ranges), checked before the image is read, and the
image goes through the same :class:`~streamproc.api.images.ImageLoader` as the face
operations (same limits, same errors). A ``ProjectVersion`` is resolved before the image
is read too (:class:`~streamproc.projects.versions_serving.VersionModels`: an ARN spelt
for another region names nothing, as every ARN here), and the answer then carries it.
``ContentTypes`` and ``HumanLoopActivationOutput`` are never in the response: no pack
detects content types, and human review is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.api.project_handlers import version_id
from streamproc.moderation.adapter import Adapter, no_adapters
from streamproc.moderation.service import ModerationRequest, ModerationService
from streamproc.moderation.types import min_confidence
from streamproc.projects.versions_serving import VersionModels


@dataclass
class ModerationApi:
    """What the moderation handlers call; built by the daemon (``versions`` None: no adapters)."""

    moderation: ModerationService
    loader: ImageLoader
    versions: VersionModels | None = None


def moderation_request(p: Params) -> ModerationRequest:
    """MinConfidence (default 50), ProjectVersion and HumanLoopConfig, as the domain sees them."""
    return ModerationRequest(
        min_confidence=min_confidence(p.get("MinConfidence")),
        project_version=p.get("ProjectVersion"),
        human_review="HumanLoopConfig" in p)


def _adapter(s: ModerationApi, request: ModerationRequest, ctx: RequestContext
             ) -> Adapter | None:
    arn = request.project_version
    if arn is None:
        return None
    if s.versions is None:  # the service serves adapters but no versions are wired: none
        raise no_adapters(arn)
    return s.versions.adapter(version_id(arn, ctx), arn)


def detect_moderation_labels(s: ModerationApi, p: Params, ctx: RequestContext) -> Response:
    """DetectModerationLabels (with ProjectVersion: through that adapter)."""
    request = moderation_request(p)
    s.moderation.check(request)  # before the image is read
    adapter = _adapter(s, request, ctx)
    found = s.moderation.detect(s.loader.load(p["Image"]), request, adapter)
    out: Response = {"ModerationLabels": [label.wire() for label in found.labels],
                     "ModerationModelVersion": found.model_version}
    if found.project_version is not None:
        out["ProjectVersion"] = found.project_version
    return out


MODERATION_HANDLERS: dict[str, Callable[[ModerationApi, Params, RequestContext], Response]] = {
    "DetectModerationLabels": detect_moderation_labels,
}
