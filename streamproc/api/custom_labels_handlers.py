"""Wire handlers for serving Custom Labels models: DetectCustomLabels.

The ``ProjectVersionArn`` is resolved before the image is read (an ARN spelt for another
region names nothing; a version that is not RUNNING is ResourceNotReadyException, as on
AWS); the image goes through the same :class:`~streamproc.api.images.ImageLoader` as the
other image operations. MaxResults and MinConfidence are
:func:`streamproc.moderation.custom_labels.ranked`'s: without a MinConfidence each class
is cut at its assumed threshold, measured on the test set at training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.api.project_handlers import version_id
from streamproc.moderation.adapter import no_backbone
from streamproc.moderation.custom_labels import CustomLabelsModel
from streamproc.projects.versions_serving import VersionModels


@dataclass
class CustomLabelsApi:
    """What DetectCustomLabels calls; built by the daemon.

    ``model`` None: the pack has no backbone, and no version is served.
    """

    versions: VersionModels
    model: CustomLabelsModel | None
    loader: ImageLoader


def detect_custom_labels(s: CustomLabelsApi, p: Params, ctx: RequestContext) -> Response:
    """DetectCustomLabels."""
    arn = p["ProjectVersionArn"]
    classifier = s.versions.classifier(version_id(arn, ctx))  # before the image is read
    if s.model is None:
        raise no_backbone()
    min_confidence = p.get("MinConfidence")
    labels = s.model.detect(s.loader.load(p["Image"]), classifier, p.get("MaxResults"),
                            None if min_confidence is None else float(min_confidence))
    return {"CustomLabels": [label.wire() for label in labels]}


CUSTOM_LABELS_HANDLERS: dict[str, Callable[[CustomLabelsApi, Params, RequestContext],
                                           Response]] = {
    "DetectCustomLabels": detect_custom_labels,
}
