"""Wire handlers for DetectLabels.

botocore's model has already checked ranges, enums and filter patterns
(:mod:`streamproc.api.validate`); here the request becomes a
:class:`~streamproc.labels.service.LabelRequest` (its defaults and rules from
:mod:`streamproc.labels.request`, shared with the label job; its GeneralLabels settings
parsed by :func:`~streamproc.labels.filters.filters_from`, as the job's are), checked before
the image is read, and the image goes through the same
:class:`~streamproc.api.images.ImageLoader` as every image operation (same limits, same
errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.labels.filters import filters_from
from streamproc.labels.request import features, image_min_confidence
from streamproc.labels.service import LabelRequest, LabelService
from streamproc.labels.wire import label_wire


@dataclass
class LabelApi:
    """What the label handlers call; built by the daemon."""

    labels: LabelService
    loader: ImageLoader


def label_request(p: Params) -> LabelRequest:
    """MinConfidence (default 55), MaxLabels, Features, Settings.GeneralLabels."""
    settings = p.get("Settings") or {}
    return LabelRequest(
        min_confidence=image_min_confidence(p.get("MinConfidence")),
        max_labels=p.get("MaxLabels"),
        features=frozenset(features(p.get("Features"))),
        filters=filters_from(settings.get("GeneralLabels")))


def detect_labels(s: LabelApi, p: Params, ctx: RequestContext) -> Response:
    """DetectLabels."""
    request = label_request(p)
    s.labels.check(request)  # before the image is read
    found = s.labels.detect(s.loader.load(p["Image"]), request)
    return {"Labels": [label_wire(label) for label in found.labels],
            "LabelModelVersion": found.model_version}


LABEL_HANDLERS: dict[str, Callable[[LabelApi, Params, RequestContext], Response]] = {
    "DetectLabels": detect_labels,
}
