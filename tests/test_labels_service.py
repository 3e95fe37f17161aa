"""DetectLabels' rules over a fake pack: refusals before the image, filters, MaxLabels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streamproc.api.label_handlers import label_request
from streamproc.errors import InvalidParameterException
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.filters import LabelFilters
from streamproc.labels.filters import filters_from as label_filters
from streamproc.labels.service import LabelRequest, LabelService
from streamproc.labels.types import Box, Instance, Label
from streamproc.labels.wire import label_wire

CAR = Label("Car", 90.0, (Instance(Box(0.1, 0.2, 0.3, 0.4), 90.0),),
            ("Transportation", "Vehicle"), ("Automobile",), ("Vehicles and Automotive",))
VEHICLE = Label("Vehicle", 90.0, (), ("Transportation",), (), ("Vehicles and Automotive",))
CUP = Label("Cup", 70.0, (), (), (), ("Kitchen and Dining",))


class FakeDetector:
    """Answers the same labels for any image; records what it was asked."""

    model_version = "fake/1"

    def __init__(self) -> None:
        self.asked: list[tuple[tuple[int, ...], float]] = []

    def detect(self, image: npt.NDArray[np.uint8], min_confidence: float) -> tuple[Label, ...]:
        self.asked.append((image.shape, min_confidence))
        return tuple(x for x in (CAR, VEHICLE, CUP) if x.confidence >= min_confidence)


IMAGE = np.zeros((8, 8, 3), np.uint8)


def test_without_a_pack_the_answer_is_label_pack_missing() -> None:
    with pytest.raises(LabelPackMissing, match="models convert labels"):
        LabelService(None).check(LabelRequest())


def test_image_properties_is_refused_before_the_image() -> None:
    fake = FakeDetector()
    request = LabelRequest(features=frozenset({"GENERAL_LABELS", "IMAGE_PROPERTIES"}))
    with pytest.raises(InvalidParameterException, match="IMAGE_PROPERTIES is not supported"):
        LabelService(fake).detect(IMAGE, request)
    assert fake.asked == []


@pytest.mark.parametrize("request_", [LabelRequest(min_confidence=100.5),
                                      LabelRequest(min_confidence=-1),
                                      LabelRequest(max_labels=-1)])
def test_out_of_range_numbers_are_refused(request_: LabelRequest) -> None:
    with pytest.raises(InvalidParameterException):
        LabelService(FakeDetector()).check(request_)


def test_min_confidence_then_filters_then_max_labels() -> None:
    fake = FakeDetector()
    service = LabelService(fake)
    assert service.detect(IMAGE, LabelRequest()).labels == (CAR, VEHICLE, CUP)
    assert fake.asked == [((8, 8, 3), 55.0)]
    assert service.detect(IMAGE, LabelRequest(min_confidence=80)).labels == (CAR, VEHICLE)
    no_vehicle = LabelRequest(filters=LabelFilters(exclude=frozenset({"Vehicle"})))
    assert service.detect(IMAGE, no_vehicle).labels == (CAR, CUP)
    kitchen = LabelFilters(include_categories=frozenset({"Kitchen and Dining"}))
    assert service.detect(IMAGE, LabelRequest(filters=kitchen, max_labels=1)).labels == (CUP,)
    assert service.detect(IMAGE, LabelRequest(max_labels=2)).labels == (CAR, VEHICLE)
    assert service.detect(IMAGE, LabelRequest()).model_version == "fake/1"


def test_the_service_hands_the_pack_rgb() -> None:
    seen: list[npt.NDArray[np.uint8]] = []

    class Keeps(FakeDetector):
        def detect(self, image: npt.NDArray[np.uint8], min_confidence: float
                   ) -> tuple[Label, ...]:
            seen.append(image)
            return ()

    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue, as OpenCV decodes it
    LabelService(Keeps()).detect(bgr, LabelRequest())
    assert seen[0][0, 0].tolist() == [0, 0, 255]


def test_the_wire_request_and_label() -> None:
    request = label_request({"Image": {}, "MinConfidence": 70, "MaxLabels": 3,
                             "Features": ["GENERAL_LABELS"],
                             "Settings": {"GeneralLabels": {"LabelInclusionFilters": ["Car"],
                                                            "LabelCategoryExclusionFilters":
                                                                ["Sports"]}}})
    assert request == LabelRequest(70.0, 3, frozenset({"GENERAL_LABELS"}), LabelFilters(
        include=frozenset({"Car"}), exclude_categories=frozenset({"Sports"})))
    assert label_request({"Image": {}}) == LabelRequest()
    assert label_request({"Image": {}, "Features": []}).features == {"GENERAL_LABELS"}
    assert label_filters(None) == label_filters({}) == LabelFilters()
    assert label_wire(CAR) == {
        "Name": "Car", "Confidence": 90.0,
        "Instances": [{"BoundingBox": {"Width": 0.3, "Height": 0.4, "Left": 0.1, "Top": 0.2},
                       "Confidence": 90.0}],
        "Parents": [{"Name": "Transportation"}, {"Name": "Vehicle"}],
        "Aliases": [{"Name": "Automobile"}], "Categories": [{"Name": "Vehicles and Automotive"}]}


def test_the_daemon_loads_no_pack_when_none_is_there_and_refuses_a_broken_one(
        tmp_path: Path) -> None:
    from test_convert_labels import fill

    from streamproc.config import load_config
    from streamproc.daemon.labels import LabelPackBroken, label_detector

    config = load_config(None, {"models.label_pack": str(tmp_path / "pack")})
    assert label_detector(config) is None
    (tmp_path / "pack").mkdir()
    fill(tmp_path / "pack")
    (tmp_path / "pack" / "detector.onnx").write_text("cut short")
    with pytest.raises(LabelPackBroken, match="detector.onnx.*convert labels"):
        label_detector(config)
    default = load_config(None, {"models.root": str(tmp_path)})
    assert default.models.label_pack_folder() == tmp_path / "labels-pack"
