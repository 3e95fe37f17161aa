"""DetectModerationLabels' service and wire half over a fake moderator (no model, no daemon)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from streamproc.api.context import RequestContext
from streamproc.api.moderation_handlers import (
    MODERATION_HANDLERS,
    ModerationApi,
    moderation_request,
)
from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.moderation.service import ModerationRequest, ModerationService
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel
from streamproc.rekognition.constants import Arns

LABELS = (ModerationLabel("Explicit", "", 1, 80.0),
          ModerationLabel("Explicit Nudity", "Explicit", 2, 60.0),
          ModerationLabel("Exposed Female Nipple", "Explicit Nudity", 3, 49.99),
          ModerationLabel("Non-Explicit Nudity of Intimate parts and Kissing", "", 1, 50.0))
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"


class FakeModerator:
    """Answers LABELS for every image; counts the images it was given."""

    model_version = "7.0-fake"
    served = tuple(label.name for label in LABELS)

    def __init__(self) -> None:
        self.images = 0

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        self.images += len(images)
        return [ModerationAnalysis(LABELS) for _ in images]


class FakeLoader:
    """An ImageLoader that counts reads."""

    def __init__(self) -> None:
        self.reads = 0

    def load(self, image: dict[str, Any], field: str = "Image") -> np.ndarray:
        self.reads += 1
        return np.zeros((100, 100, 3), np.uint8)


def call(params: dict[str, Any]) -> tuple[dict[str, Any], FakeModerator, FakeLoader]:
    moderator, loader = FakeModerator(), FakeLoader()
    api = ModerationApi(ModerationService(moderator), loader)  # type: ignore[arg-type]
    ctx = RequestContext(Arns("us-east-1", "123456789012"))
    out = MODERATION_HANDLERS["DetectModerationLabels"](api, params, ctx)
    return out, moderator, loader


def test_the_default_min_confidence_is_50_and_the_engine_order_is_kept() -> None:
    out, moderator, _ = call({"Image": {"Bytes": b"x"}})
    assert [label["Name"] for label in out["ModerationLabels"]] == [
        "Explicit", "Explicit Nudity", "Non-Explicit Nudity of Intimate parts and Kissing"]
    assert out["ModerationLabels"][0] == {"Confidence": 80.0, "Name": "Explicit",
                                          "ParentName": "", "TaxonomyLevel": 1}
    assert out["ModerationModelVersion"] == "7.0-fake"
    assert set(out) == {"ModerationLabels", "ModerationModelVersion"}
    assert moderator.images == 1


@pytest.mark.parametrize(("min_confidence", "count"), [(0, 4), (49.99, 4), (50, 3),
                                                       (60.0, 2), (80, 1), (100, 0)])
def test_min_confidence_is_inclusive(min_confidence: float, count: int) -> None:
    out, _, _ = call({"Image": {"Bytes": b"x"}, "MinConfidence": min_confidence})
    assert len(out["ModerationLabels"]) == count


def test_human_review_is_refused_before_the_image_is_read() -> None:
    moderator, loader = FakeModerator(), FakeLoader()
    api = ModerationApi(ModerationService(moderator), loader)  # type: ignore[arg-type]
    params = {"Image": {"Bytes": b"x"},
              "HumanLoopConfig": {"HumanLoopName": "h", "FlowDefinitionArn": "arn:x"}}
    with pytest.raises(InvalidParameterException, match="no human review"):
        MODERATION_HANDLERS["DetectModerationLabels"](
            api, params, RequestContext(Arns("us-east-1", "123456789012")))
    assert loader.reads == 0 and moderator.images == 0


def test_a_project_version_names_nothing_before_the_image_is_read() -> None:
    moderator, loader = FakeModerator(), FakeLoader()
    api = ModerationApi(ModerationService(moderator), loader)  # type: ignore[arg-type]
    with pytest.raises(ResourceNotFoundException, match="No such project version exists"):
        MODERATION_HANDLERS["DetectModerationLabels"](
            api, {"Image": {"Bytes": b"x"}, "ProjectVersion": ARN},
            RequestContext(Arns("us-east-1", "123456789012")))
    assert loader.reads == 0 and moderator.images == 0


def test_the_request_as_the_domain_sees_it() -> None:
    assert moderation_request({"Image": {}}) == ModerationRequest(50.0, None, False)
    assert moderation_request({"MinConfidence": 0, "ProjectVersion": ARN,
                               "HumanLoopConfig": {}}) == ModerationRequest(0.0, ARN, True)
    assert isinstance(moderation_request({"MinConfidence": 7}).min_confidence, float)
