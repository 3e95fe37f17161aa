"""The rules DetectLabels and StartLabelDetection share come from one module, and agree."""

from __future__ import annotations

import pytest
from test_label_jobs import CLIP, ByIndex
from test_labels_service import FakeDetector

from streamproc.api.label_handlers import label_request
from streamproc.errors import InvalidParameterException
from streamproc.jobs.kinds.labels import LabelDetectionJobKind, LabelDetectionRequest
from streamproc.labels import request
from streamproc.labels.service import LabelRequest, LabelService


def refusal(call: object) -> str:
    with pytest.raises(InvalidParameterException) as err:
        call()  # type: ignore[operator]
    return str(err.value)


def test_image_and_video_refuse_a_feature_with_one_message() -> None:
    image = refusal(lambda: LabelService(FakeDetector()).check(
        LabelRequest(features=frozenset({"GENERAL_LABELS", "IMAGE_PROPERTIES"}))))
    video = refusal(lambda: LabelDetectionJobKind(ByIndex()).check(
        LabelDetectionRequest(CLIP, features=("IMAGE_PROPERTIES",))))
    assert image == video and "IMAGE_PROPERTIES is not supported" in image


@pytest.mark.parametrize("bad", [-0.5, 100.5])
def test_image_and_video_refuse_min_confidence_alike(bad: float) -> None:
    image = refusal(lambda: LabelService(FakeDetector()).check(LabelRequest(min_confidence=bad)))
    video = refusal(lambda: LabelDetectionJobKind(ByIndex()).check(
        LabelDetectionRequest(CLIP, min_confidence=bad)))
    assert image == video == f"MinConfidence {bad} is not between 0 and 100"


def test_the_defaults_are_rekognitions_per_operation() -> None:
    assert label_request({"Image": {}}).min_confidence == request.IMAGE_MIN_CONFIDENCE == 55.0
    assert LabelDetectionRequest(CLIP).min_confidence == request.VIDEO_MIN_CONFIDENCE == 50.0
    assert request.features(None) == request.features([]) == ("GENERAL_LABELS",)
