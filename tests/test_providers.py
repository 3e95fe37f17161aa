"""Providers say what they do: a GPU asked for on this CPU-only machine is reported, loudly.

CI has the CPU build of onnxruntime, so CUDA and TensorRT requested here really fail to
load; what is checked is what the daemon then reports (log, /health dict, metric, exit).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
from conftest import REPO, SHARED
from prometheus_client import CollectorRegistry

from streamproc.config import load_config
from streamproc.faces.engine import FaceEngine
from streamproc.faces.errors import ProviderUnavailableError
from streamproc.faces.providers import (
    CPU,
    CUDA,
    TENSORRT,
    ExecutionOptions,
    ort_fallback,
    ort_providers,
)
from streamproc.metrics import InferenceMetrics

# What these check is the behaviour without CUDA (CI's onnxruntime is the CPU build).
without_cuda = pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(),
                                  reason="this onnxruntime has CUDA")


def engine(**overrides: Any) -> FaceEngine:
    base = {"models.root": str(SHARED), "models.pack": "test_mfn"}
    e = FaceEngine(load_config(None, {**base, **overrides}).models)
    e.load()
    return e


@without_cuda
def test_cuda_requested_without_it_runs_on_cpu_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="streamproc.faces"):
        report = engine(**{"models.providers": "cuda"}).provider_report()
    assert report["gpu"] is False and report["fallback"] is True
    for model in report["models"]:
        assert model["requested"][0] == CUDA and model["provider"] == CPU
        assert "does not have it" in model["fallback"] and "onnxruntime-gpu" in model["fallback"]
    loud = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert sorted(r.getMessage().split(":")[0] for r in loud) == [
        "GPU NOT IN USE for det_500m.onnx", "GPU NOT IN USE for mobilefacenet_foamliu_128d.onnx"]
    registry = CollectorRegistry()
    InferenceMetrics.create(registry).report(report)
    labels = {"model": "det_500m.onnx", "role": "detector", "provider": CPU, "gpu_fallback": "1"}
    assert registry.get_sample_value("streamproc_inference_provider", labels) == 1.0


@without_cuda
def test_tensorrt_set_for_one_pack_overrides_the_models_default() -> None:
    report = engine(**{"models.providers": "cpu", "models.packs": {"test_mfn": {
        "detector": "det_500m.onnx", "recognizer": "mobilefacenet_foamliu_128d.onnx",
        "calibration": [{"cosine": -1.0, "similarity": 0}, {"cosine": 1.0, "similarity": 100}],
        "execution": {"providers": "tensorrt", "fp16": True}}}}).provider_report()
    for model in report["models"]:
        assert model["requested"] == [TENSORRT, CUDA, CPU]
        assert model["provider"] == CPU and model["fp16"] is False
        assert model["fallback"].startswith(TENSORRT)


@without_cuda
def test_auto_on_a_cpu_build_is_not_a_fallback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="streamproc.faces"):
        report = engine().provider_report()
    assert report["fallback"] is False and report["gpu"] is False
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("det_500m.onnx runs on CPUExecutionProvider" in r.getMessage()
               for r in caplog.records)


@without_cuda
def test_require_gpu_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailableError, match="models.require_gpu is set"):
        engine(**{"models.require_gpu": True})
    config = tmp_path / "gpu.yaml"
    config.write_text(f"models:\n  root: {SHARED}\n  pack: test_mfn\n  providers: cuda\n"
                      f"  require_gpu: true\nstorage:\n  data_dir: {tmp_path / 'data'}\n"
                      "server:\n  port: 0\n")
    run = subprocess.run([sys.executable, "-m", "streamproc", "serve", "--config", str(config)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 2
    cannot = [line for line in run.stderr.splitlines() if "cannot start" in line]
    assert len(cannot) == 1 and "det_500m.onnx runs on CPUExecutionProvider" in cannot[0]
    assert "streamproc ready" not in run.stdout


def test_onnxruntime_provider_options() -> None:
    options = ExecutionOptions(providers="tensorrt", device_id=1, fp16=True,
                               trt_engine_cache_dir=Path("/cache/trt"), trt_workspace_mb=512)
    assert ort_providers(options, [TENSORRT, CUDA, CPU]) == [
        (TENSORRT, {"device_id": "1", "trt_fp16_enable": "True",
                    "trt_max_workspace_size": str(512 * 1024 * 1024),
                    "trt_engine_cache_enable": "True", "trt_engine_cache_path": "/cache/trt"}),
        (CUDA, {"device_id": "1"}), (CPU, {})]
    assert ort_providers(options, [CPU]) == [(CPU, {})]


def test_cuda_compiled_in_but_not_loading_is_a_fallback_even_for_auto() -> None:
    why = ort_fallback("auto", [CUDA, CPU], [CPU], "1.31.1")
    assert why is not None and "did not load" in why and "check_providers" in why
    assert ort_fallback("auto", [CPU], [CPU], "1.32.0") is None
    assert ort_fallback("cuda", [CUDA, CPU], [CUDA, CPU], "1.31.1") is None
    assert ort_fallback([CUDA, CPU], [CPU], [CPU], "1.32.0") is not None


@without_cuda
def test_check_providers_script_reports_what_runs() -> None:
    script = REPO / "scripts" / "check_providers.py"
    report = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert report.returncode == 0
    assert "compiled-in providers:" in report.stdout and "CPUExecutionProvider" in report.stdout
    assert "CUDAExecutionProvider: not compiled in" in report.stdout
    required = subprocess.run([sys.executable, str(script), "--require", "cuda"],
                              capture_output=True, text=True, timeout=120)
    assert required.returncode == 1 and "cuda was required" in required.stderr
    build = subprocess.run([sys.executable, str(script), "--build"],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 1 and "no CUDA provider" in build.stderr
