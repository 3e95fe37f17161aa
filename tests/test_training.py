"""streamproc.training on synthetic features: heads, calibration, limits, bytes, summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamproc.projects.versions_inputs import Sample
from streamproc.projects.versions_training import (
    calibration_group,
    calibration_groups,
    training_groups,
)
from streamproc.training import (
    BackboneMismatchError,
    Deadline,
    HeadFormatError,
    TooFewImagesError,
    TooManyImagesError,
    TrainingDeadlineError,
    TrainingError,
    TrainingLimits,
    TrainingStopped,
    serial,
    train_heads,
)
from streamproc.training.calibration import fit_platt
from streamproc.training.classifier import class_confidences, predict, train_classifier
from streamproc.training.evaluation import SWEEP, Counts, accuracy, best_threshold, counts, sweep
from streamproc.training.logistic import (
    Standardiser,
    balanced_weights,
    fit_logistic,
    sigmoid,
)
from streamproc.training.summaries import (
    Details,
    LabelScores,
    adapter_f1,
    adapter_summary,
    custom_labels_summary,
)

BACKBONE = "open_nsfw:sha256=" + "a" * 64 + ":tensor=Reshape:0:preprocess=yahoo-1-jpeg"
OTHER = "open_nsfw:sha256=" + "b" * 64 + ":tensor=Reshape:0:preprocess=yahoo-1-jpeg"


def _separable(rng: np.random.Generator, n: int, d: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A linear concept with a margin, in d dimensions (most of them noise)."""
    x = rng.normal(size=(n, d))
    margin = x[:, 0] + x[:, 1]
    keep = np.abs(margin) > 0.3
    return x[keep], (margin[keep] > 0).astype(float)


def _f1(y: np.ndarray, confidence: np.ndarray) -> float:
    return counts(y, confidence, 50.0).f1


def test_a_head_learns_a_separable_concept_and_not_a_random_one() -> None:
    rng = np.random.default_rng(1)
    x, y = _separable(rng, 600)
    model = train_heads(x, {"Violence": y}, BACKBONE)
    test_x, test_y = _separable(rng, 600)
    assert _f1(test_y, model.confidences(test_x)["Violence"]) > 0.9

    noise = rng.normal(size=(400, 64))
    coin = rng.integers(0, 2, size=400).astype(float)
    random_model = train_heads(noise, {"Violence": coin}, BACKBONE)
    fresh = random_model.confidences(rng.normal(size=(2000, 64)))["Violence"]
    truth = rng.integers(0, 2, size=2000).astype(float)
    assert np.mean((fresh >= 50) == (truth > 0.5)) < 0.6  # chance, not memorised noise
    # Calibration learnt from held-out folds that the head knows nothing: near the base rate.
    assert np.all(np.abs(fresh - 100 * coin.mean()) < 20)


def test_class_balancing_keeps_recall_on_a_1_to_20_imbalance() -> None:
    rng = np.random.default_rng(2)

    def data(positives: int, negatives: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(positives + negatives, 20))
        x[:positives, 0] += 1.5  # overlapping classes: the prior decides the cut
        return x, np.r_[np.ones(positives), np.zeros(negatives)]

    x, y = data(50, 1000)
    weights = balanced_weights(y)
    assert weights[y > 0.5].sum() == pytest.approx(weights[y < 0.5].sum())
    standardiser = Standardiser.fit(x)
    test_x, test_y = data(2000, 0)
    recalls = {}
    for balanced in (True, False):
        fit = fit_logistic(standardiser.apply(x), y, 1.0, 50, Deadline(60), balanced=balanced)
        assert fit.converged
        recalls[balanced] = float(np.mean(fit.decision(standardiser.apply(test_x)) > 0))
    assert recalls[True] > 0.65
    assert recalls[False] < 0.35


def test_platt_recovers_a_known_calibration_and_stays_monotonic() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=5000)
    truth = (rng.random(5000) < sigmoid(2.0 * scores - 1.0)).astype(float)
    platt = fit_platt(scores, truth)
    assert platt.slope == pytest.approx(2.0, abs=0.25)
    assert platt.offset == pytest.approx(-1.0, abs=0.2)
    grid = np.linspace(-10, 10, 201)
    assert np.all(np.diff(platt.confidence(grid)) >= 0)
    assert 0 <= platt.confidence(grid).min() and platt.confidence(grid).max() <= 100

    backwards = fit_platt(scores, (scores < 0).astype(float))
    assert backwards.slope == 0.0  # never inverted: a useless head reads the base rate
    assert backwards.confidence(grid) == pytest.approx(np.full(201, 50.0), abs=1.0)


def test_calibrated_confidence_matches_observed_frequency_on_held_out_images() -> None:
    rng = np.random.default_rng(4)

    def data(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 16))
        y = (rng.random(n) < sigmoid(1.5 * x[:, 0] - 1.5)).astype(float)  # ~25% positive
        return x, y

    x, y = data(3000)
    model = train_heads(x, {"Alcohol": y}, BACKBONE)
    test_x, test_y = data(6000)
    confidence = model.confidences(test_x)["Alcohol"]
    assert confidence.mean() == pytest.approx(100 * test_y.mean(), abs=3.0)
    for low, high in ((0, 20), (20, 50), (50, 80), (80, 100)):
        inside = (confidence >= low) & (confidence < high)
        assert 100 * test_y[inside].mean() == pytest.approx(confidence[inside].mean(), abs=6.0)


def test_the_base_score_is_a_feature_of_an_adapter_head() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.5).astype(float)
    base = np.clip(0.3 + 0.4 * y + rng.normal(scale=0.05, size=300), 0, 1)
    model = train_heads(rng.normal(size=(300, 32)), {"Explicit": y}, BACKBONE,
                        base={"Explicit": base})
    assert model.heads[0].uses_base
    confidence = model.confidences(rng.normal(size=(300, 32)), {"Explicit": base})
    assert _f1(y, confidence["Explicit"]) > 0.95
    with pytest.raises(ValueError, match="base model"):
        model.confidences(rng.normal(size=(3, 32)))


def test_sweep_counts_add_up_at_every_threshold() -> None:
    rng = np.random.default_rng(6)
    truth = (rng.random(500) < 0.3).astype(float)
    confidence = np.clip(60 * truth + rng.normal(30, 20, size=500), 0, 100)
    confidence[:5] = 50.0  # exactly at a threshold: predicted, as MinConfidence keeps it
    rows = sweep(truth, confidence)
    assert [t for t, _ in rows] == [float(t) for t in range(5, 101, 5)]
    for _, part in rows:
        assert part.tp + part.fn == int(truth.sum())
        assert part.tn + part.fp == int(len(truth) - truth.sum())
    pairs = zip(rows[:-1], rows[1:], strict=True)
    assert all(a.tp >= b.tp and a.fp >= b.fp for (_, a), (_, b) in pairs)
    at_50 = dict(rows)[50.0]
    assert at_50.tp + at_50.fp == int(np.sum(confidence >= 50))
    assert Counts(tp=3, fp=1, fn=2).f1 == pytest.approx(6 / 9)
    assert Counts().f1 == 0.0 and Counts().precision == 0.0 and Counts().recall == 0.0


def test_a_trained_model_round_trips_as_deterministic_bytes() -> None:
    rng = np.random.default_rng(7)
    x, y = _separable(rng, 300)
    model = train_heads(x, {"Violence": y, "Gambling": 1 - y}, BACKBONE)
    data = serial.dumps(model)
    assert serial.dumps(model) == data
    loaded = serial.loads(data, BACKBONE)
    assert serial.dumps(loaded) == data
    assert loaded.labels == ("Violence", "Gambling") and loaded.kind == "adapter"
    probe = rng.normal(size=(50, 64))
    for label, values in model.confidences(probe).items():
        assert np.array_equal(loaded.confidences(probe)[label], values)
    assert len(data) < 30_000  # two 64-d heads, base64 float64


def test_a_model_of_another_backbone_or_format_is_refused() -> None:
    rng = np.random.default_rng(8)
    x, y = _separable(rng, 200)
    data = serial.dumps(train_heads(x, {"Violence": y}, BACKBONE))
    with pytest.raises(BackboneMismatchError) as caught:
        serial.loads(data, OTHER)
    assert BACKBONE in str(caught.value) and OTHER in str(caught.value)
    body = json.loads(data)
    for damaged in (data[:-20], b"not json", json.dumps({**body, "version": 2}).encode(),
                    json.dumps({**body, "format": "x"}).encode(), b"[]",
                    json.dumps({**body, "heads": [{"label": "x"}]}).encode()):
        with pytest.raises(HeadFormatError):
            serial.loads(damaged, BACKBONE)


def test_too_few_or_too_many_images_are_refused_with_the_counts() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(100, 8))
    y = np.zeros(100)
    y[:9] = 1
    with pytest.raises(TooFewImagesError) as caught:
        train_heads(x, {"Violence": y}, BACKBONE)
    assert (caught.value.positives, caught.value.negatives) == (9, 91)
    assert "'Violence'" in str(caught.value) and "at least 10" in str(caught.value)
    y[9] = 1
    train_heads(x, {"Violence": y}, BACKBONE)  # exactly the minimum trains
    with pytest.raises(TooManyImagesError):
        train_heads(x, {"Violence": y}, BACKBONE, limits=TrainingLimits(max_images=99))


def test_positives_from_a_single_group_cannot_be_calibrated() -> None:
    rng = np.random.default_rng(10)
    x, y = _separable(rng, 200)
    groups = ["clip-a" if label else f"still-{i}" for i, label in enumerate(y)]
    with pytest.raises(TrainingError, match="one group"):
        train_heads(x, {"Violence": y}, BACKBONE, groups=groups)
    spread = [f"clip-{i % 4}" if label else f"still-{i}" for i, label in enumerate(y)]
    train_heads(x, {"Violence": y}, BACKBONE, groups=spread)


def test_the_deadline_is_honoured() -> None:
    ticks = iter(float(t) for t in range(10_000))
    deadline = Deadline(5.0, clock=lambda: next(ticks))
    rng = np.random.default_rng(11)
    x, y = _separable(rng, 300)
    with pytest.raises(TrainingDeadlineError, match="5 s"):
        train_heads(x, {"Violence": y}, BACKBONE, deadline=deadline)
    used = next(ticks)
    assert used <= 8  # stopped within a step of the deadline, not after every fit


def _stop_after(calls: int) -> tuple[list[int], object]:
    seen = [0]

    def stopped() -> bool:
        seen[0] += 1
        return seen[0] > calls

    return seen, stopped


@pytest.mark.parametrize("calls", [0, 1, 3, 8])
def test_a_stop_signal_ends_every_training_within_one_check(calls: int) -> None:
    rng = np.random.default_rng(13)
    x, y = _separable(rng, 300)
    classes = ["cat" if v else "dog" for v in y]
    runs = [lambda d: train_heads(x, {"Violence": y, "Drugs": 1 - y}, BACKBONE, deadline=d),
            lambda d: train_classifier(x, classes, BACKBONE, deadline=d),
            lambda d: fit_logistic(Standardiser.fit(x).apply(x), y, 1e-6, 50, d)]
    for run in runs:
        seen, stopped = _stop_after(calls)
        with pytest.raises(TrainingStopped, match="stopped"):
            run(Deadline(3600.0, stopped=stopped))
        assert seen[0] == calls + 1  # nothing checked after the signal: it stopped at once
    never = Deadline(3600.0, stopped=lambda: False)
    assert train_heads(x, {"Violence": y}, BACKBONE, deadline=never).labels == ("Violence",)


def test_max_iterations_bounds_the_solver() -> None:
    rng = np.random.default_rng(12)
    x, y = _separable(rng, 300)
    fit = fit_logistic(Standardiser.fit(x).apply(x), y, 1e-6, 2, Deadline(60))
    assert fit.iterations == 2 and not fit.converged


def _details(labels: tuple[str, ...]) -> Details:
    return Details(end_timestamp="2026-12-07T12:00:00.000000", labels=labels,
                   testing_images=40, training_images=100,
                   version_arn="arn:aws:rekognition:us-east-1:000000000000:project/p/version/v/1")


def test_adapter_summary_has_rekognitions_field_names() -> None:
    rng = np.random.default_rng(13)
    truth = (rng.random(40) < 0.5).astype(float)
    items = [LabelScores("Violence", truth, np.zeros(40), 90 * truth + 5)]
    summary = adapter_summary(items, 50.0, _details(("Violence",)))
    assert set(summary) == {"AggregatedEvaluationResults", "EvaluationDetails",
                            "ContentModeration"}
    assert set(summary["AggregatedEvaluationResults"]) == {"F1Score"}
    assert summary["AggregatedEvaluationResults"]["F1Score"] == 1.0
    assert set(summary["EvaluationDetails"]) == {
        "EvaluationEndTimestamp", "Labels", "NumberOfTestingImages", "NumberOfTrainingImages",
        "ProjectVersionArn"}
    moderation = summary["ContentModeration"]
    assert set(moderation) == {"InputConfidenceThresholdEvalResults",
                               "AllConfidenceThresholdsEvalResults"}
    at = moderation["InputConfidenceThresholdEvalResults"]
    assert set(at) == {"ConfidenceThreshold", "AggregatedEvaluationResults",
                       "LabelEvaluationResults"}
    assert set(at["AggregatedEvaluationResults"]) == {"BaseModel", "Adapter"}
    keys = {"TruePositive", "TrueNegative", "FalsePositive", "FalseNegative"}
    assert set(at["AggregatedEvaluationResults"]["BaseModel"]) == keys
    assert at["AggregatedEvaluationResults"]["BaseModel"]["FalseNegative"] == truth.sum()
    assert [set(row) for row in at["LabelEvaluationResults"]] == [{"Label", "BaseModel",
                                                                   "Adapter"}]
    assert [row["ConfidenceThreshold"] for row in
            moderation["AllConfidenceThresholdsEvalResults"]] == [float(t) for t in SWEEP]
    assert adapter_f1(items, 50.0, base=True) == 0.0
    json.dumps(summary)  # plain JSON types only


def test_custom_labels_summary_has_its_own_field_names() -> None:
    truth = ["cap"] * 6 + ["watch"] * 4
    predicted = ["cap"] * 5 + ["watch"] * 5
    confidences = np.array([[90.0, 10.0]] * 5 + [[20.0, 80.0]] * 5)
    summary = custom_labels_summary(truth, predicted, confidences, ["cap", "watch"],
                                    [50.0, 50.0], _details(("cap", "watch")))
    assert set(summary) == {"Version", "EvaluationDetails", "AggregatedEvaluationResults",
                            "LabelEvaluationResults"}
    assert summary["Version"] == 1
    aggregated = summary["AggregatedEvaluationResults"]
    assert set(aggregated) == {"ConfusionMatrix", "F1Score", "Precision", "Recall"}
    cells = {(c["GroundTruthLabel"], c["PredictedLabel"]): c["Value"]
             for c in aggregated["ConfusionMatrix"]}
    assert cells == {("cap", "cap"): 5 / 6, ("cap", "watch"): 1 / 6, ("watch", "cap"): 0.0,
                     ("watch", "watch"): 1.0}
    rows = summary["LabelEvaluationResults"]
    assert [set(row) for row in rows] == [{"Label", "Metrics", "NumberOfTestingImages"}] * 2
    assert set(rows[0]["Metrics"]) == {"F1Score", "Precision", "Recall", "Threshold"}
    assert rows[0]["Metrics"]["F1Score"] >= rows[1]["Metrics"]["F1Score"]  # sorted by F1
    by_label = {row["Label"]: row for row in rows}
    assert by_label["cap"]["NumberOfTestingImages"] == 6
    assert by_label["cap"]["Metrics"]["Threshold"] == 0.5
    assert by_label["cap"]["Metrics"]["Recall"] == pytest.approx(5 / 6)
    assert aggregated["F1Score"] == pytest.approx(
        np.mean([row["Metrics"]["F1Score"] for row in rows]))


def test_a_classifier_separates_three_classes() -> None:
    rng = np.random.default_rng(14)
    centres = rng.normal(scale=3.0, size=(3, 32))

    def data(n: int) -> tuple[np.ndarray, list[str]]:
        which = rng.integers(0, 3, size=n)
        return centres[which] + rng.normal(size=(n, 32)), [f"c{k}" for k in which]

    x, classes = data(300)
    model = train_classifier(x, classes, BACKBONE)
    assert model.kind == "classifier" and model.labels == ("c0", "c1", "c2")
    test_x, test_classes = data(300)
    assert accuracy(test_classes, predict(model, test_x)) > 0.95
    assert class_confidences(model, test_x).sum(axis=1) == pytest.approx(np.full(300, 100.0))
    assert serial.loads(serial.dumps(model), BACKBONE).kind == "classifier"
    with pytest.raises(ValueError, match="two classes"):
        train_classifier(x, ["c0"] * 300, BACKBONE)


def test_best_threshold_picks_the_highest_f1_cut() -> None:
    truth = np.array([0, 0, 1, 1, 1], dtype=float)
    confidence = np.array([10.0, 40.0, 45.0, 70.0, 90.0])
    assert best_threshold(truth, confidence) == 45.0
    assert accuracy(["a", "b"], ["a", "a"]) == 0.5
    with pytest.raises(ValueError):
        accuracy(["a"], [])


def _sample(ref: str, extra: str = "") -> Sample:
    return Sample(ref, ("a",), f'{{"source-ref":"{ref}"{extra}}}')


def test_calibration_groups_come_from_the_line_or_the_frame_number() -> None:
    frames = [_sample(f"s3://b/clip/frame-{n:06d}.jpg") for n in range(20)]
    groups = calibration_groups(frames)
    assert groups[:8] == ["ref:s3://b/clip/frame-#0.jpg"] * 8
    assert len(set(groups)) == 3  # frames 0-7, 8-15, 16-19
    other = _sample("s3://b/other/frame-000001.jpg")
    assert calibration_group(other) != groups[1]
    # Unnumbered images are groups of one; a line's own "group" wins over the name.
    assert calibration_group(_sample("s3://b/cat.jpg")) == "ref:s3://b/cat.jpg"
    tagged = [_sample(f"s3://b/x{n}.png", ', "group": "take-2"') for n in (1, 90)]
    assert {calibration_group(s) for s in tagged} == {"group:take-2"}
    assert calibration_group(_sample("s3://b/y.png", ', "group": true')) == "ref:s3://b/y.png"



def test_groups_that_cannot_calibrate_a_label_fall_back_to_one_an_image() -> None:
    # Five clips of eight frames: each clip is one group. "classroom" lives in one clip
    # only, so a fold without it has nothing to fit on: each image is then its own group.
    clips = ["head-a", "head-b", "head-c", "classroom", "walking"]
    samples = [_sample(f"s3://b/{clip}/{n:02d}.jpg") for clip in clips for n in range(8)]
    head = np.array([float(s.source_ref.startswith("s3://b/head")) for s in samples])
    room = np.array([float("classroom" in s.source_ref) for s in samples])
    assert training_groups(samples, {"head": head}, 3) == calibration_groups(samples)
    alone = training_groups(samples, {"head": head, "classroom": room}, 3)
    assert len(set(alone)) == len(samples)
    train_heads(np.random.default_rng(3).normal(size=(40, 4)), {"classroom": room}, BACKBONE,
                groups=alone, limits=TrainingLimits(min_per_class=4))
