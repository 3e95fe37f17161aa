"""Moderation packs without models: config checks, label maps, calibration, the served set."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from streamproc.config import ModerationConfig, load_config
from streamproc.config.moderation import NUDENET_CLASSES, OPEN_NSFW_OUTPUTS
from streamproc.moderation import taxonomy
from streamproc.moderation.engine import ModerationEngine, model_version
from streamproc.moderation.labels import LabelMap
from streamproc.tools.deps import OPENNSFW

BUILTIN = ModerationConfig()
SCORE = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
# Any subset of each model's outputs, with any scores (a detector reports only what it saw).
SCORES = st.fixed_dictionaries({
    "open_nsfw": st.dictionaries(st.sampled_from(OPEN_NSFW_OUTPUTS), SCORE),
    "nudenet_320n": st.dictionaries(st.sampled_from(NUDENET_CLASSES), SCORE),
})


def test_defaults() -> None:
    assert BUILTIN.pack == "open_nsfw"
    assert set(BUILTIN.packs) == {"open_nsfw", "nudenet", "open_nsfw+nudenet"}
    assert ModerationEngine(BUILTIN, load_config(None, {}).models).served == ("Explicit",)
    assert model_version("open_nsfw+nudenet") == "7.0-open_nsfw+nudenet"


def test_setup_pin_is_the_configured_model() -> None:
    model = BUILTIN.models["open_nsfw"]
    assert OPENNSFW == f"{model.package}=={model.version}"


@pytest.mark.parametrize("pack", sorted(BUILTIN.packs))
@settings(max_examples=300, deadline=None)
@given(scores=SCORES)
def test_label_map_emits_only_served_labels_with_confident_ancestors(
        pack: str, scores: dict[str, dict[str, float]]) -> None:
    mapper = LabelMap(pack, BUILTIN.packs[pack])
    labels = mapper.labels(scores)
    by_name = {label.name: label for label in labels}
    assert len(by_name) == len(labels)
    assert set(by_name) <= set(mapper.served)
    for label in labels:
        assert 0.0 <= label.confidence <= 100.0
        assert label.parent == taxonomy.parent_of(label.name)
        assert label.level == taxonomy.level_of(label.name)
        for ancestor in taxonomy.ancestors(label.name):
            assert by_name[ancestor].confidence >= label.confidence
    assert [label.level for label in labels] == sorted(label.level for label in labels)


def test_open_nsfw_serves_the_top_level_only() -> None:
    mapper = LabelMap("open_nsfw", BUILTIN.packs["open_nsfw"])
    (explicit,) = mapper.labels({"open_nsfw": {"sfw": 0.1, "nsfw": 0.9}})
    assert (explicit.name, explicit.parent, explicit.level) == ("Explicit", "", 1)
    assert explicit.confidence == pytest.approx(90.0)


def test_combined_pack_parent_takes_the_stronger_evidence() -> None:
    mapper = LabelMap("open_nsfw+nudenet", BUILTIN.packs["open_nsfw+nudenet"])
    weak_image = mapper.labels({"open_nsfw": {"nsfw": 0.1},
                                "nudenet_320n": {"FEMALE_BREAST_EXPOSED": 0.9}})
    assert [(label.name, label.confidence) for label in weak_image] == [
        ("Explicit", 95.0), ("Explicit Nudity", 95.0), ("Exposed Female Nipple", 95.0)]
    strong_image = mapper.labels({"open_nsfw": {"nsfw": 0.8}, "nudenet_320n": {}})
    assert [(label.name, label.confidence) for label in strong_image] == [("Explicit", 80.0)]
    # Unmapped classes (faces, covered parts) serve nothing.
    assert mapper.labels({"nudenet_320n": {"FACE_FEMALE": 0.99, "BELLY_EXPOSED": 0.9}}) == ()


@pytest.mark.parametrize("pack", sorted(BUILTIN.packs))
@settings(max_examples=200, deadline=None)
@given(low=SCORE, high=SCORE)
def test_calibration_is_monotonic(pack: str, low: float, high: float) -> None:
    low, high = sorted((low, high))
    mapper = LabelMap(pack, BUILTIN.packs[pack])
    for label, rule in BUILTIN.packs[pack].labels.items():
        output = rule.outputs[0]

        def confidence(score: float, rule_model: str = rule.model, out: str = output,
                       name: str = label) -> float:
            found = {x.name: x.confidence for x in mapper.labels({rule_model: {out: score}})}
            return found[name]

        assert confidence(low) <= confidence(high)


def _with(**pack_changes: Any) -> dict[str, Any]:
    rule = {"model": "open_nsfw", "outputs": ["nsfw"],
            "calibration": [{"score": 0.0, "confidence": 0.0}, {"score": 1.0, "confidence": 99}]}
    pack = {"models": ["open_nsfw"], "labels": {"Explicit": rule}}
    for key, value in pack_changes.items():
        if key in rule:
            rule[key] = value
        else:
            pack[key] = value
    return {"pack": "mine", "packs": {"mine": pack}}


@pytest.mark.parametrize(("changes", "message"), [
    ({"models": ["absent"]}, "model 'absent' is not under moderation.models"),
    ({"model": "nudenet_320n"}, "uses 'nudenet_320n', not in its models"),
    ({"outputs": ["porn"]}, "unknown outputs ['porn']"),
    ({"calibration": [{"score": 0.0, "confidence": 60}, {"score": 1.0, "confidence": 50}]},
     "knots must increase"),
])
def test_bad_packs_are_refused_at_load(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ModerationConfig.model_validate(_with(**changes))
    assert message in str(caught.value)


def test_unknown_pack_and_model_places_are_refused() -> None:
    with pytest.raises(ValidationError, match="moderation.pack 'nope' is not a pack"):
        ModerationConfig(pack="nope")
    with pytest.raises(ValidationError, match="exactly one of package and folder"):
        ModerationConfig.model_validate({"models": {"x": {
            "kind": "open_nsfw", "file": "a.onnx", "sha256": "0" * 64, "licence": "MIT"}}})


def test_configured_packs_extend_the_builtins() -> None:
    config = ModerationConfig.model_validate(_with())
    assert {"mine", "open_nsfw", "nudenet"} <= set(config.packs)
    assert "open_nsfw" in config.models


def test_a_label_outside_the_taxonomy_is_refused_by_the_engine() -> None:
    config = ModerationConfig.model_validate({"packs": {"bad": {
        "models": ["open_nsfw"], "labels": {"Nudity": {
            "model": "open_nsfw", "outputs": ["nsfw"],
            "calibration": [{"score": 0, "confidence": 0}, {"score": 1, "confidence": 99}]}}}}})
    with pytest.raises(ValueError, match=r"\['Nudity'\] not labels of taxonomy v7.0"):
        ModerationEngine(config, load_config(None, {}).models, "bad")
