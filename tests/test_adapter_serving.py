"""Serving adapters (DetectModerationLabels with ProjectVersion) and Custom Labels models.

Real model and real images: the frames of shared/data/video's clips. A benign proxy
concept: the v7 label Violence on the three head-pose clips' frames (the base pack never
emits it), the other clips' frames and scikit-image's photos without it. Each clip is
split by time (first 60% of its frames train, last 30% test, 10% gap: neighbouring frames
are near-copies). The rules of applying an adapter are also checked with constant heads on
an engine that is never loaded (so any model run would fail).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from conftest import IMAGES, VIDEO

from streamproc.config import ModelsConfig, ModerationConfig
from streamproc.errors import InvalidParameterException
from streamproc.faces.runner import OrtRunner
from streamproc.moderation.adapter import (
    Adapter,
    AdapterModerator,
    VersionBackboneError,
    VersionFeatureError,
    WithAdapter,
    adapted,
    load_adapter,
)
from streamproc.moderation.custom_labels import (
    DEFAULT_THRESHOLD,
    Classifier,
    CustomLabelsModel,
    assumed_thresholds,
    load_classifier,
    ranked,
)
from streamproc.moderation.engine import ModerationEngine
from streamproc.moderation.features import (
    DIMENSIONS,
    FeatureBatch,
    FeatureExtractor,
    extractor_for,
)
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel
from streamproc.training import LabelHead, TrainedHeads, train_heads
from streamproc.training.calibration import Platt
from streamproc.training.classifier import train_classifier
from streamproc.training.logistic import LinearFit, Standardiser
from streamproc.training.serial import dumps

MODELS = ModelsConfig()
POSITIVE = ("head-pose-face-detection-female-and-male.mp4",
            "head-pose-face-detection-female.mp4", "head-pose-face-detection-male.mp4")
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"
HAS_NUDENET = importlib.util.find_spec("nudenet") is not None


@dataclass(frozen=True)
class Frame:
    """One image, its scene, split side and calibration group."""

    scene: str  # head_pose, classroom, walking or photo
    test: bool | None  # None: in a clip's gap between train and test frames
    group: str
    pixels: np.ndarray


def _frames() -> list[Frame]:
    import av
    import skimage.data

    out = []
    for clip in sorted(VIDEO.glob("*.mp4")):
        with av.open(str(clip)) as container:
            pixels = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        scene = "head_pose" if clip.name in POSITIVE else clip.stem.split("-")[0]
        scene = "walking" if scene == "face" else scene
        for index, image in enumerate(pixels):
            at = index / len(pixels)
            out.append(Frame(scene, None if 0.6 <= at < 0.7 else at >= 0.7,
                             f"{clip.name}#{index // 8}", image))
    names = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
             "immunohistochemistry", "colorwheel", "retina", "logo", "camera", "coins", "page")
    for name in names:
        pixels = getattr(skimage.data, name)()
        image = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR) if pixels.ndim == 2 else \
            cv2.cvtColor(np.ascontiguousarray(pixels[:, :, :3]), cv2.COLOR_RGB2BGR)
        out.append(Frame("photo", _hashed(name), name, image))
    for path in sorted(IMAGES.rglob("*.*")):  # portraits: people, but not the scene
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            out.append(Frame("photo", _hashed(path.name), path.name, image))
    return out


def _hashed(key: str) -> bool:
    """A fixed 30% of the photos test, by a hash of their name (as adapter_accuracy)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32 < 0.3


@dataclass(frozen=True)
class Seen:
    """The frames and what one adapter-path run gave for each."""

    frames: list[Frame]
    features: np.ndarray
    base_violence: np.ndarray  # the base model's Violence score per frame (0-1)

    def side(self, test: bool) -> np.ndarray:
        """The frames of one split side."""
        return np.array([frame.test is test for frame in self.frames])


@pytest.fixture(scope="module")
def engine() -> ModerationEngine:
    loaded = ModerationEngine(ModerationConfig(), MODELS)
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    loaded = extractor_for(ModerationConfig(), MODELS)
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def moderator(engine: ModerationEngine, extractor: FeatureExtractor) -> AdapterModerator:
    return AdapterModerator(engine, extractor)


@pytest.fixture(scope="module")
def seen(moderator: AdapterModerator) -> Seen:
    frames = _frames()
    inputs = moderator.inputs([frame.pixels for frame in frames])
    return Seen(frames, inputs.features, inputs.base_scores(["Violence"])["Violence"])


@pytest.fixture(scope="module")
def violence(seen: Seen, moderator: AdapterModerator) -> TrainedHeads:
    train = seen.side(False)
    truth = np.array([frame.scene == "head_pose" for frame in seen.frames], dtype=float)
    return train_heads(seen.features[train], {"Violence": truth[train]}, moderator.backbone,
                       base={"Violence": seen.base_violence[train]},
                       groups=[f.group for f, t in zip(seen.frames, train, strict=True) if t])


def _test_frames(seen: Seen) -> list[Frame]:
    return [frame for frame in seen.frames if frame.test is True]


def test_the_adapter_returns_its_label_for_held_out_positives_only(
        seen: Seen, moderator: AdapterModerator, violence: TrainedHeads) -> None:
    adapter = load_adapter(ARN, dumps(violence), moderator.backbone)
    test = _test_frames(seen)
    assert sum(f.scene == "head_pose" for f in test) >= 30
    assert sum(f.scene != "head_pose" for f in test) >= 20
    assert not seen.base_violence.any()  # the base pack never says Violence
    for frame in test:
        result = moderator.detect(frame.pixels, adapter, 50.0)
        names = [label.name for label in result.labels]
        assert ("Violence" in names) is (frame.scene == "head_pose"), frame.group
        assert result.project_version == ARN
        assert result.model_version == moderator.model_version == "7.0-open_nsfw"


def test_unknown_labels_keep_the_base_models_confidence(
        seen: Seen, engine: ModerationEngine, moderator: AdapterModerator,
        violence: TrainedHeads) -> None:
    test = _test_frames(seen)[::5]
    images = [frame.pixels for frame in test]
    with_adapter = moderator.analyse_many(images, violence)
    for base, ours in zip(engine.analyse_many(images), with_adapter, strict=True):
        theirs = {label.name: label.confidence for label in base.labels}
        mine = {label.name: label.confidence for label in ours.labels}
        assert set(mine) == set(theirs) | {"Violence"}
        for name, confidence in theirs.items():  # Explicit, from the engine's own run
            assert mine[name] == pytest.approx(confidence, abs=1e-3)


@pytest.fixture
def session_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The model file of every onnxruntime session run, in order."""
    runs: list[str] = []
    real = OrtRunner.run

    def counted(self: OrtRunner, batch: np.ndarray) -> list[np.ndarray]:
        runs.append(self.path.name)
        return real(self, batch)

    monkeypatch.setattr(OrtRunner, "run", counted)
    return runs


def test_one_model_run_per_image(seen: Seen, moderator: AdapterModerator,
                                 violence: TrainedHeads, session_runs: list[str]) -> None:
    adapter = Adapter(ARN, violence)
    moderator.detect(seen.frames[0].pixels, adapter, 50.0)
    assert session_runs == ["open-nsfw.onnx"]
    images = [frame.pixels for frame in seen.frames[:8]]  # one batch of open_nsfw's 8
    moderator.analyse_many(images, violence)
    assert session_runs == ["open-nsfw.onnx"] * 2


@pytest.mark.skipif(not HAS_NUDENET, reason="nudenet is not installed")
def test_a_pack_of_two_models_runs_each_once(seen: Seen, violence: TrainedHeads,
                                             session_runs: list[str]) -> None:
    config = ModerationConfig(pack="open_nsfw+nudenet")
    engine = ModerationEngine(config, MODELS)
    engine.load()
    extractor = extractor_for(config, MODELS)
    extractor.load()
    image = seen.frames[0].pixels
    session_runs.clear()
    (ours,) = AdapterModerator(engine, extractor).analyse_many([image], violence)
    assert sorted(session_runs) == ["320n.onnx", "open-nsfw.onnx"]
    (base,) = engine.analyse_many([image])
    assert {x.name for x in ours.labels} == {x.name for x in base.labels} | {"Violence"}


def test_a_version_of_another_backbone_or_feature_is_refused(
        moderator: AdapterModerator, violence: TrainedHeads, seen: Seen) -> None:
    other = TrainedHeads(violence.kind, "open_nsfw:sha256=0000:tensor=Reshape:0",
                         violence.heads)
    with pytest.raises(VersionBackboneError) as caught:
        load_adapter(ARN, dumps(other), moderator.backbone)
    assert isinstance(caught.value, InvalidParameterException)
    assert caught.value.trained == other.backbone
    assert caught.value.running == moderator.backbone
    assert "train a new version" in str(caught.value)
    with pytest.raises(VersionBackboneError):
        moderator.analyse_many([seen.frames[0].pixels], other)
    classifier = TrainedHeads("classifier", moderator.backbone, violence.heads)
    with pytest.raises(VersionFeatureError, match="of kind 'classifier', not 'adapter'"):
        load_adapter(ARN, dumps(classifier), moderator.backbone)
    with pytest.raises(VersionFeatureError, match="of kind 'adapter', not 'classifier'"):
        load_classifier(dumps(violence), moderator.backbone)
    with pytest.raises(VersionBackboneError):
        CustomLabelsModel(_FakeExtractor()).detect(seen.frames[0].pixels,
                                                   Classifier(classifier, {}))


# The rules, with constant heads on an engine that is never loaded.

def _constant(label: str, confidence: float) -> LabelHead:
    """A head that gives every image ``confidence``."""
    p = confidence / 100.0
    return LabelHead(label, Standardiser(np.zeros(DIMENSIONS), np.ones(DIMENSIONS)),
                     LinearFit(np.zeros(DIMENSIONS), 0.0, 0, True),
                     Platt(0.0, float(np.log(p / (1 - p)))), uses_base=False)


class _FakeExtractor:
    """Features of zeros and a fixed nsfw score; counts its runs."""

    name = "open_nsfw"
    identity = "fake-backbone"

    def __init__(self, nsfw: float = 0.9) -> None:
        self.nsfw = nsfw
        self.runs = 0

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        self.runs += 1
        return FeatureBatch(np.zeros((len(images), DIMENSIONS), np.float32),
                            np.full(len(images), self.nsfw))


@pytest.fixture
def unloaded() -> Iterator[tuple[AdapterModerator, _FakeExtractor]]:
    extractor = _FakeExtractor()
    # Never loaded: running open_nsfw would raise, so the base labels must come from the
    # extractor's scores.
    yield AdapterModerator(ModerationEngine(ModerationConfig(), MODELS), extractor), extractor


def _labels(analysis: ModerationAnalysis | Sequence[ModerationLabel]) -> dict[str, float]:
    labels = analysis.labels if isinstance(analysis, ModerationAnalysis) else analysis
    return {label.name: round(label.confidence, 3) for label in labels}


def test_the_base_labels_come_from_the_extractors_run(
        unloaded: tuple[AdapterModerator, _FakeExtractor]) -> None:
    moderator, extractor = unloaded
    heads = TrainedHeads("adapter", "fake-backbone", (_constant("Violence", 80.0),))
    (analysis,) = moderator.analyse_many([np.zeros((8, 8, 3), np.uint8)], heads)
    assert extractor.runs == 1
    found = _labels(analysis)
    assert found["Violence"] == 80.0
    assert found["Explicit"] > 50  # open_nsfw's nsfw 0.9 through the pack's map
    violence = next(x for x in analysis.labels if x.name == "Violence")
    assert (violence.parent, violence.level) == ("", 1)


def test_min_confidence_applies_after_the_adapter(
        unloaded: tuple[AdapterModerator, _FakeExtractor]) -> None:
    moderator, _ = unloaded
    image = np.zeros((8, 8, 3), np.uint8)
    heads = (_constant("Violence", 70.0), _constant("Explicit", 20.0))
    adapter = Adapter(ARN, TrainedHeads("adapter", "fake-backbone", heads))
    assert _labels(moderator.detect(image, adapter, 50.0).labels) == {"Violence": 70.0}
    assert _labels(moderator.detect(image, adapter, 10.0).labels) == {
        "Explicit": 20.0, "Violence": 70.0}
    assert moderator.detect(image, adapter, 71.0).labels == ()
    wire = moderator.detect(image, adapter, 50.0).wire()
    assert wire == {"ModerationLabels": [{"Confidence": 70.0, "Name": "Violence",
                                          "ParentName": "", "TaxonomyLevel": 1}],
                    "ModerationModelVersion": "7.0-open_nsfw", "ProjectVersion": ARN}


def test_a_moderator_bound_to_an_adapter_serves_jobs(
        unloaded: tuple[AdapterModerator, _FakeExtractor]) -> None:
    moderator, _ = unloaded
    heads = TrainedHeads("adapter", "fake-backbone", (_constant("Violence", 70.0),))
    bound = WithAdapter(moderator, Adapter(ARN, heads))
    assert bound.served == ("Explicit", "Violence")
    assert bound.model_version == "7.0-open_nsfw"
    (analysis,) = bound.analyse_many([np.zeros((8, 8, 3), np.uint8)])
    assert _labels(analysis)["Violence"] == 70.0
    assert bound.analyse_many([]) == []


def _label(name: str, parent: str, level: int, confidence: float) -> ModerationLabel:
    return ModerationLabel(name, parent, level, confidence)


BASE = ModerationAnalysis(labels=(
    _label("Explicit", "", 1, 90.0), _label("Swimwear or Underwear", "", 1, 40.0),
    _label("Explicit Nudity", "Explicit", 2, 85.0),
    _label("Female Swimwear or Underwear", "Swimwear or Underwear", 2, 40.0),
    _label("Exposed Female Nipple", "Explicit Nudity", 3, 60.0)))


def test_an_adapted_label_bounds_its_subtree_and_leaves_the_rest() -> None:
    lowered = _labels(adapted(BASE, {"Explicit": 30.0}))
    assert lowered == {"Explicit": 30.0, "Swimwear or Underwear": 40.0,
                       "Explicit Nudity": 30.0, "Female Swimwear or Underwear": 40.0,
                       "Exposed Female Nipple": 30.0}
    raised = _labels(adapted(BASE, {"Explicit": 99.0}))
    assert raised["Explicit"] == 99.0 and raised["Explicit Nudity"] == 85.0
    # A lower-level adapted label raises its ancestors (the engine's rule) ...
    assert _labels(adapted(BASE, {"Explicit Nudity": 95.0}))["Explicit"] == 95.0
    # ... and a parent's adapter bounds an adapted child.
    both = _labels(adapted(BASE, {"Explicit": 30.0, "Explicit Nudity": 95.0}))
    assert both["Explicit"] == both["Explicit Nudity"] == 30.0
    ordered = [x.name for x in adapted(BASE, {"Violence": 10.0}).labels]
    assert ordered[:3] == ["Explicit", "Swimwear or Underwear", "Violence"]  # levels first


# Custom Labels

@pytest.fixture(scope="module")
def scenes(seen: Seen, moderator: AdapterModerator) -> Classifier:
    train = np.array([frame.test is False and frame.scene != "photo"
                      for frame in seen.frames])
    picked = [frame for frame, t in zip(seen.frames, train, strict=True) if t]
    heads = train_classifier(seen.features[train], [f.scene for f in picked],
                             moderator.backbone, groups=[f.group for f in picked])
    return load_classifier(dumps(heads), moderator.backbone)


def test_held_out_frames_get_their_scene(seen: Seen, extractor: FeatureExtractor,
                                         scenes: Classifier, session_runs: list[str]) -> None:
    model = CustomLabelsModel(extractor)
    test = [frame for frame in _test_frames(seen) if frame.scene != "photo"]
    session_runs.clear()
    answers = model.detect_many([frame.pixels for frame in test], scenes, max_results=1,
                                min_confidence=0.0)
    assert len(session_runs) == -(-len(test) // 8)  # one run per batch of 8
    right = sum(labels[0].name == frame.scene for labels, frame in
                zip(answers, test, strict=True))
    assert right / len(test) >= 0.9, f"{right} of {len(test)}"
    assert {frame.scene for frame in test} == {"classroom", "walking", "head_pose"}


def test_max_results_and_min_confidence(seen: Seen, extractor: FeatureExtractor,
                                        scenes: Classifier) -> None:
    model = CustomLabelsModel(extractor)
    image = _test_frames(seen)[0].pixels
    every = model.detect(image, scenes, min_confidence=0.0)
    assert [x.name for x in every] != [] and len(every) == 3
    assert sum(x.confidence for x in every) == pytest.approx(100.0)
    assert [x.confidence for x in every] == sorted((x.confidence for x in every),
                                                   reverse=True)
    assert model.detect(image, scenes, max_results=2, min_confidence=0.0) == every[:2]
    assert model.detect(image, scenes, max_results=0) == []
    cut = every[1].confidence
    assert model.detect(image, scenes, min_confidence=cut) == every[:2]
    assert every[0].wire() == {"Name": every[0].name,
                               "Confidence": round(every[0].confidence, 4)}


def test_without_min_confidence_each_label_has_its_assumed_threshold() -> None:
    heads = TrainedHeads("classifier", "fake-backbone", ())
    names, values = ["a", "b", "c"], [60.0, 30.0, 10.0]
    stored = Classifier(heads, {"a": 70.0, "b": 25.0})
    assert [x.name for x in ranked(names, values, stored, None, None)] == ["b"]
    assert stored.threshold("c") == DEFAULT_THRESHOLD == 50.0
    assert [x.name for x in ranked(names, values, stored, None, 0.0)] == ["a", "b", "c"]
    assert [x.name for x in ranked(names, values, Classifier(heads, {}), None, None)] == ["a"]


def test_assumed_thresholds_are_the_best_f1_cuts(seen: Seen, scenes: Classifier) -> None:
    test = np.array([frame.test is True and frame.scene != "photo"
                     for frame in seen.frames])
    truth = [f.scene for f, t in zip(seen.frames, test, strict=True) if t]
    cuts = assumed_thresholds(scenes.heads, seen.features[test], truth)
    assert set(cuts) == set(scenes.heads.labels)
    assert all(0.0 < cut <= 100.0 for cut in cuts.values())
    with_cuts = Classifier(scenes.heads, cuts)
    assert with_cuts.threshold("walking") == cuts["walking"]
