"""The torch backend runs the same ONNX packs as onnxruntime, with the same results.

Stated tolerance: every raw output within 1e-4 + 1e-4 x |onnxruntime's| (measured: below
1e-5 on all four models); through the engine, boxes within 1 px, scores within 1e-3 and
embeddings at cosine >= 0.9999 to onnxruntime's. Runs on CPU (CI installs PyTorch's CPU
build); on a GPU machine the same module runs on cuda (benchmarks/bench_gpu.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import av
import numpy as np
import onnx
import pytest
from conftest import SHARED, VIDEO
from onnx import TensorProto, helper

from streamproc.config import load_config
from streamproc.faces.engine import FaceEngine
from streamproc.faces.errors import ProviderUnavailableError
from streamproc.faces.graphs import batch_scrfd
from streamproc.faces.providers import ExecutionOptions
from streamproc.faces.runner import OrtRunner

torch = pytest.importorskip("torch", reason="the torch backend needs streamproc[torch]")
from streamproc.faces.torch_graph import OnnxModule  # noqa: E402
from streamproc.faces.torch_runner import TorchRunner  # noqa: E402

MODELS = SHARED / "models"
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    images = []
    for clip in ("classroom.mp4", "head-pose-face-detection-female-and-male.mp4"):
        with av.open(str(VIDEO / clip)) as container:
            images += [f.to_ndarray(format="bgr24") for f in container.decode(video=0)][::6]
    return images


def engine(backend: str, pack: str = "test_mfn", **extra: Any) -> FaceEngine:
    overrides = {"models.root": str(SHARED), "models.pack": pack, "models.backend": backend,
                 "models.detect_batching": "batched", **extra}
    e = FaceEngine(load_config(None, overrides).models)
    e.load()
    return e


@pytest.mark.parametrize(("path", "shape", "batched", "scale"), [
    ("test_mfn/det_500m.onnx", (3, 3, 288, 480), True, 1.0),
    ("extra/det_2.5g.onnx", (2, 3, 320, 320), True, 1.0),
    ("test_mfn/mobilefacenet_foamliu_128d.onnx", (5, 3, 112, 112), False, 1.0),
    ("test_sface/sface_2021dec_int8bq_ortfix.onnx", (5, 3, 112, 112), False, 127.5),
])
def test_raw_outputs_match_onnxruntime(path: str, shape: tuple[int, ...], batched: bool,
                                       scale: float) -> None:
    transform = batch_scrfd if batched else None
    session = {"session.disable_quant_qdq": "1"} if "sface" in path else None
    ort_runner = OrtRunner(MODELS / path, ExecutionOptions(providers="cpu"), session, transform)
    torch_runner = TorchRunner(MODELS / path, ExecutionOptions(providers="cpu"), transform)
    ort_runner.load()
    torch_runner.load()
    rng = np.random.default_rng(1)
    x = ((rng.random(shape, dtype=np.float32) * 2 - 1) * scale + (scale - 1)).astype(np.float32)
    expected, got = ort_runner.run(x), torch_runner.run(x)
    assert len(expected) == len(got)
    for a, b in zip(expected, got, strict=True):
        assert a.shape == b.shape and b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pack", ["test_mfn", "test_sface"])
def test_engine_results_match_onnxruntime(frames: list[np.ndarray], pack: str) -> None:
    ort_engine, torch_engine = engine("onnxruntime", pack), engine("torch", pack)
    assert torch_engine.provider_report()["models"][0]["provider"] == "torch:cpu"
    assert torch_engine.dim == ort_engine.dim == 128
    expected, got = ort_engine.detect_many(frames), torch_engine.detect_many(frames)
    faces = 0
    for image, a, b in zip(frames, expected, got, strict=True):
        assert len(a) == len(b)
        for fa, fb in zip(a, b, strict=True):
            assert np.abs(fa.box - fb.box).max() <= 1.0 and abs(fa.score - fb.score) <= 1e-3
        ort_engine.embed(image, a)
        torch_engine.embed(image, b)
        for fa, fb in zip(a, b, strict=True):
            assert fa.embedding is not None and fb.embedding is not None
            assert float(fa.embedding @ fb.embedding) >= 0.9999
        faces += len(a)
    assert faces > 30


@cpu_only
def test_cuda_asked_of_torch_without_a_gpu_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="streamproc.faces"):
        report = engine("torch", **{"models.providers": "cuda"}).provider_report()
    for model in report["models"]:
        assert model["requested"] == ["torch:cuda:0", "torch:cpu"]
        assert model["provider"] == "torch:cpu" and "is_available() is False" in model["fallback"]
    assert len([r for r in caplog.records if "GPU NOT IN USE" in r.getMessage()]) == 2
    with pytest.raises(ProviderUnavailableError, match="torch:cpu"):
        engine("torch", **{"models.require_gpu": True})


@cpu_only
def test_fp16_is_cuda_only() -> None:
    runner = TorchRunner(MODELS / "test_mfn" / "mobilefacenet_foamliu_128d.onnx",
                         ExecutionOptions(fp16=True))
    runner.load()
    assert runner.status.fp16 is False
    assert runner.run(np.zeros((1, 3, 112, 112), np.float32))[0].dtype == np.float32


def test_unsupported_ops_are_named(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(NotImplementedError, match="Softmax"):
        OnnxModule(model)
    path = tmp_path / "softmax.onnx"
    onnx.save(model, str(path))
    with pytest.raises(NotImplementedError, match="Softmax"):
        TorchRunner(path).load()
