"""The labels a label pack finds in one image, in Rekognition's terms.

Parse-once domain values: the pack produces them, DetectLabels and the label job filter
and render them; no wire dict appears below the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Box:
    """A box as ratios of the image's width and height (0 to 1), like BoundingBox."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Instance:
    """One object of a label's class, where the model gives boxes."""

    box: Box
    confidence: float  # percent, 0 to 100


@dataclass(frozen=True)
class Label:
    """One label: Rekognition's name, with its parents, aliases and categories from the map."""

    name: str
    confidence: float  # percent, 0 to 100
    instances: tuple[Instance, ...] = ()  # empty for whole-image classes
    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


class LabelDetector(Protocol):
    """A loaded label pack. ``detect`` is safe to call from several threads at once."""

    @property
    def model_version(self) -> str:
        """LabelModelVersion."""
        ...

    def detect(self, image: npt.NDArray[np.uint8], min_confidence: float) -> tuple[Label, ...]:
        """Labels at ``min_confidence`` (percent) or above in an H x W x 3 RGB image.

        Ordered by confidence, highest first; each name once.
        """
        ...
