"""Detection batched across streams gives the faces of per-frame detection.

Per frame runs the published SCRFD graph one image per call; batched runs the graph given a
batch axis in memory (graphs.batch_scrfd) on batches of frames from different clips, of one
or of several sizes. Boxes must agree within 1 px and scores within 1e-3 (in practice they
are bit-identical: each image's slice of the batched outputs is computed exactly as alone).
"""

from __future__ import annotations

import hashlib
from typing import Any

import av
import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SHARED, VIDEO

from streamproc.config import load_config
from streamproc.faces.engine import FaceEngine, ModelPackError
from streamproc.faces.graphs import GraphRewriteError, batch_scrfd
from streamproc.faces.types import Face

CLIPS = ["classroom.mp4", "face-demographics-walking.mp4",
         "head-pose-face-detection-female-and-male.mp4", "head-pose-face-detection-male.mp4"]
EXTRA_PACK = {"detector": "../extra/det_2.5g.onnx",
              "recognizer": "../test_mfn/mobilefacenet_foamliu_128d.onnx",
              "calibration": [{"cosine": -1.0, "similarity": 0.0},
                              {"cosine": 1.0, "similarity": 100.0}]}


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Every 2nd frame of four shared clips, interleaved as several streams would arrive."""
    per_clip = []
    for clip in CLIPS:
        with av.open(str(VIDEO / clip)) as container:
            per_clip.append([f.to_ndarray(format="bgr24")
                             for f in container.decode(video=0)][::2])
    mixed = [clip[i] for i in range(max(map(len, per_clip))) for clip in per_clip
             if i < len(clip)]
    assert len(mixed) > 90
    return mixed


def engine(mode: str, pack: str = "test_mfn", **extra: Any) -> FaceEngine:
    overrides = {"models.root": str(SHARED), "models.pack": pack,
                 "models.detect_batching": mode, "models.packs": {"extra": EXTRA_PACK}}
    e = FaceEngine(load_config(None, {**overrides, **extra}).models)
    e.load()
    return e


def assert_same_faces(expected: list[list[Face]], got: list[list[Face]]) -> int:
    assert len(expected) == len(got)
    total = 0
    for a, b in zip(expected, got, strict=True):
        assert len(a) == len(b)
        for fa, fb in zip(a, b, strict=True):
            assert np.abs(fa.box - fb.box).max() <= 1.0
            assert np.abs(fa.landmarks - fb.landmarks).max() <= 1.0
            assert abs(fa.score - fb.score) <= 1e-3
            assert fa.pose == fb.pose and fa.quality == fb.quality
        total += len(a)
    return total


@pytest.mark.parametrize("pack", ["test_mfn", "extra"])
def test_batched_detection_equals_per_frame(frames: list[np.ndarray], pack: str) -> None:
    per_frame, batched = engine("per_frame", pack), engine("batched", pack)
    assert per_frame.detector.settings.max_batch == 1
    assert batched.detector.settings.max_batch == 32
    expected = [per_frame.detect(image) for image in frames]
    got = []
    for start in range(0, len(frames), 8):  # the analyzer's batch_frames
        got += batched.detect_many(frames[start:start + 8])
    assert assert_same_faces(expected, got) > 100  # the clips have faces to compare


def test_batches_of_different_frame_sizes(frames: list[np.ndarray]) -> None:
    """Streams of several resolutions in one batch: each size is letterboxed as alone."""
    per_frame, batched = engine("per_frame"), engine("batched")
    factors = [1.0, 1.7, 0.6, 2.3, 1.3, 0.8]
    sized = [cv2.resize(im, (int(im.shape[1] * f), int(im.shape[0] * f)))
             for im, f in zip(frames[:48], factors * 8, strict=True)]
    expected = [per_frame.detect(image) for image in sized]
    got = batched.detect_many(sized)
    assert assert_same_faces(expected, got) > 50


def test_rewritten_graph_outputs_are_per_image_outputs() -> None:
    path = SHARED / "models" / "test_mfn" / "det_500m.onnx"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    original = onnx.load(str(path))
    batched = batch_scrfd(original)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # file untouched
    assert batched.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    one = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    many = ort.InferenceSession(batched.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 160, 224)).astype(np.float32)
    outputs = many.run(None, {"input.1": x})
    for i in range(3):
        for alone, slice_ in zip(one.run(None, {"input.1": x[i:i + 1]}), outputs, strict=True):
            np.testing.assert_array_equal(alone, slice_[i])


def test_graphs_without_the_scrfd_heads_are_refused() -> None:
    recogniser = onnx.load(str(SHARED / "models" / "test_mfn" / "mobilefacenet_foamliu_128d.onnx"))
    with pytest.raises(GraphRewriteError, match="output"):
        batch_scrfd(recogniser)
    # A pack whose "detector" cannot be batched: detect_batching batched refuses to start.
    pack = {**EXTRA_PACK, "detector": "../test_mfn/mobilefacenet_foamliu_128d.onnx"}
    overrides = {"models.root": str(SHARED), "models.pack": "extra",
                 "models.packs": {"extra": pack}}
    with pytest.raises(ModelPackError, match="cannot batch"):
        FaceEngine(load_config(None, {**overrides, "models.detect_batching": "batched"}
                               ).models).load()


def test_auto_batches_only_where_it_pays(frames: list[np.ndarray]) -> None:
    """On this CPU auto detects one frame per call (bench_stages: batching was slower)."""
    auto = engine("auto")
    assert auto.provider_report()["detect_batch"] == 1
    assert len(auto.detect_many(frames[:5])) == 5
