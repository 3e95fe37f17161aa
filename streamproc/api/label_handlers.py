"""Wire handlers for DetectLabels, and the GeneralLabels settings parser label jobs share.

botocore's model has already checked ranges, enums and filter patterns
(:mod:`streamproc.api.validate`); here the request becomes a
:class:`~streamproc.labels.service.LabelRequest`, checked before the image is read, and the
image goes through the same :class:`~streamproc.api.images.ImageLoader` as every image
operation (same limits, same errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.labels.filters import NO_FILTERS, LabelFilters
from streamproc.labels.service import (
    DEFAULT_MIN_CONFIDENCE,
    GENERAL_LABELS,
    LabelRequest,
    LabelService,
)
from streamproc.labels.types import Label


@dataclass
class LabelApi:
    """What the label handlers call; built by the daemon."""

    labels: LabelService
    loader: ImageLoader


def label_filters(general: Params | None) -> LabelFilters:
    """A GeneralLabelsSettings structure (DetectLabels, StartLabelDetection) as filters."""
    if not general:
        return NO_FILTERS
    return LabelFilters(
        include=frozenset(general.get("LabelInclusionFilters") or ()),
        exclude=frozenset(general.get("LabelExclusionFilters") or ()),
        include_categories=frozenset(general.get("LabelCategoryInclusionFilters") or ()),
        exclude_categories=frozenset(general.get("LabelCategoryExclusionFilters") or ()))


def label_request(p: Params) -> LabelRequest:
    """MinConfidence (default 55), MaxLabels, Features, Settings.GeneralLabels."""
    confidence = p.get("MinConfidence")
    settings = p.get("Settings") or {}
    return LabelRequest(
        min_confidence=DEFAULT_MIN_CONFIDENCE if confidence is None else float(confidence),
        max_labels=p.get("MaxLabels"),
        features=frozenset(p.get("Features") or (GENERAL_LABELS,)),
        filters=label_filters(settings.get("GeneralLabels")))


def label_wire(label: Label) -> dict[str, Any]:
    """One Label as DetectLabels (and GetLabelDetection) render it."""
    return {
        "Name": label.name, "Confidence": label.confidence,
        "Instances": [{"BoundingBox": {"Width": i.box.width, "Height": i.box.height,
                                       "Left": i.box.left, "Top": i.box.top},
                       "Confidence": i.confidence} for i in label.instances],
        "Parents": [{"Name": name} for name in label.parents],
        "Aliases": [{"Name": name} for name in label.aliases],
        "Categories": [{"Name": name} for name in label.categories],
    }


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
