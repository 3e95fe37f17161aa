"""DetectLabels: one image through the label pack, on the request's thread.

The wire half (:mod:`streamproc.api.label_handlers`) parses the request into a
:class:`LabelRequest`; this service refuses what this server cannot do before the image is
read (:meth:`LabelService.check`), then runs the pack and applies, in Rekognition's order,
MinConfidence, the GeneralLabels filters and MaxLabels (the highest-confidence labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamproc.errors import InvalidParameterException
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.filters import NO_FILTERS, LabelFilters
from streamproc.labels.request import (
    GENERAL_LABELS,
    IMAGE_MIN_CONFIDENCE,
    check_features,
    check_min_confidence,
)
from streamproc.labels.types import Label, LabelDetector


@dataclass(frozen=True)
class LabelRequest:
    """What DetectLabels asks for, besides its image."""

    min_confidence: float = IMAGE_MIN_CONFIDENCE
    max_labels: int | None = None  # None: every label
    features: frozenset[str] = frozenset({GENERAL_LABELS})
    filters: LabelFilters = NO_FILTERS


@dataclass(frozen=True)
class LabelResult:
    """The labels kept, and LabelModelVersion."""

    labels: tuple[Label, ...]
    model_version: str


class LabelService:
    """DetectLabels over a loaded pack (``detector`` None: no pack is installed)."""

    def __init__(self, detector: LabelDetector | None) -> None:
        self._detector = detector

    def check(self, request: LabelRequest) -> LabelDetector:
        """Refuse, before any image is read, what this server does not do; the pack."""
        check_features(request.features)
        check_min_confidence(request.min_confidence)
        if request.max_labels is not None and request.max_labels < 0:
            msg = f"MaxLabels {request.max_labels} is negative"
            raise InvalidParameterException(msg)
        if self._detector is None:
            raise LabelPackMissing
        return self._detector

    def detect(self, bgr: npt.NDArray[np.uint8], request: LabelRequest) -> LabelResult:
        """The image's labels (``bgr``: the pixels as the image loader decodes them)."""
        detector = self.check(request)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        labels = request.filters.apply(detector.detect(rgb, request.min_confidence))
        if request.max_labels is not None:
            labels = labels[:request.max_labels]
        return LabelResult(labels, detector.model_version)
