"""PackDetector's own arithmetic, over fake model outputs (the real pack: test_detect_labels).

The SSD graph gives boxes as (top, left, bottom, right) ratios; the classifier gives one
uint8 score per ImageNet class, and several classes (every dog breed) are one label whose
probability is their sum.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from streamproc.faces.runner import OrtRunner
from streamproc.labels.detector import PackDetector
from streamproc.labels.labelmap import LabelInfo, LabelMap
from streamproc.labels.merge import merge
from streamproc.labels.pack import PackManifest
from streamproc.labels.types import Box

MANIFEST = PackManifest("fake/1", {}, 300, 280, 1 / 256)
MAP = LabelMap({"Animal": LabelInfo(), "Dog": LabelInfo(("Animal",)),
                "Cat": LabelInfo(("Animal",))},
               detector={17: "Cat"}, classifier={0: "Dog", 1: "Dog", 2: "Cat"})
IMAGE = np.zeros((600, 1200, 3), np.uint8)


class Outputs:
    """A runner that answers fixed outputs whatever the input."""

    def __init__(self, *outputs: Any) -> None:
        self.outputs = [np.asarray(o) for o in outputs]

    def run(self, _tensor: Any) -> list[Any]:
        return self.outputs


def test_one_labels_classes_are_summed_before_min_confidence() -> None:
    # Two breeds at 77/256 (30 %) each: neither reaches MinConfidence 50, Dog (60 %) does.
    runner = Outputs(np.array([[77, 77, 26] + [0] * 997], np.uint8))
    hits = PackDetector._classes(IMAGE, MANIFEST, MAP, cast(OrtRunner, runner))
    assert {h.name: h.confidence for h in hits} == pytest.approx({"Dog": 60.16, "Cat": 10.16},
                                                                   abs=0.01)
    labels = merge(hits, MAP, 50.0)
    assert [(x.name, round(x.confidence, 2)) for x in labels] == [("Animal", 60.16),
                                                                   ("Dog", 60.16)]


def test_a_label_never_exceeds_certainty() -> None:
    runner = Outputs(np.array([[200, 200, 0] + [0] * 997], np.uint8))
    (dog,) = PackDetector._classes(IMAGE, MANIFEST, MAP, cast(OrtRunner, runner))
    assert dog.name == "Dog" and dog.confidence == 100.0


def test_detector_boxes_are_top_left_bottom_right() -> None:
    runner = Outputs(np.array([[[0.5, 0.25, 0.9, 0.75]]], np.float32),
                     np.array([[0.8]], np.float32), np.array([[17.0]], np.float32),
                     np.array([1.0], np.float32))
    (hit,) = PackDetector._boxes(IMAGE, MANIFEST, MAP, cast(OrtRunner, runner))
    assert hit.name == "Cat" and hit.instance is not None
    got = hit.instance.box
    assert (got.left, got.top, got.width, got.height) == pytest.approx((0.25, 0.5, 0.5, 0.4))
    assert isinstance(got, Box)
