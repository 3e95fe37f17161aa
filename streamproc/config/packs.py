"""Model packs: their files, pre-processing, execution and calibration; the built-in ones."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from streamproc.config.base import Section
from streamproc.config.calibration import (
    CalibrationKnot,
    ConfidenceKnot,
    default_confidence,
    increasing,
)

ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"] | list[str]


class ExecutionConfig(Section):
    """How one pack's models execute on the accelerator; unset fields take ``models.*``."""

    providers: ProviderChoice | None = Field(
        None, description="Overrides models.providers for this pack.")
    device_id: int | None = Field(None, ge=0, description="GPU index; null = models.device_id.")
    fp16: bool = Field(
        False, description="Half precision: TensorRT (trt_fp16_enable) and the torch backend on "
        "CUDA. The CUDA provider alone runs the graphs as stored (fp32).")
    trt_engine_cache_dir: Path | None = Field(
        None, description="TensorRT engine cache; null = rebuild the engines at every start.")
    trt_workspace_mb: int = Field(2048, gt=0, description="TensorRT builder workspace (MiB).")


class PackConfig(Section):
    """A model pack: an SCRFD detector and an ArcFace-style recogniser, plus calibration."""

    detector: str = Field(description="Detector file name inside the pack folder.")
    recognizer: str = Field(description="Recogniser file name inside the pack folder.")
    det_input_size: tuple[int, int] | None = Field(
        None, description="Fixed detector input (w, h); null = fit each image's aspect.")
    det_max_side: int = Field(640, ge=32, description="Longest detector input side (null size).")
    det_upscale: bool = Field(False, description="Enlarge images smaller than det_max_side.")
    det_mean: float = Field(127.5, description="Detector input mean.")
    det_std: float = Field(128.0, description="Detector input std.")
    det_strides: tuple[int, ...] = Field((8, 16, 32), description="SCRFD feature strides.")
    det_anchors: int = Field(2, ge=1, description="Anchors per location.")
    det_batch: int = Field(32, ge=1, description="Largest detector batch (batched detection).")
    rec_mean: float = Field(127.5, description="Recogniser input mean (0 for raw pixels).")
    rec_std: float = Field(127.5, description="Recogniser input std (1 for raw pixels).")
    rec_input_size: int = Field(112, description="Aligned face crop side in pixels.")
    rec_batch: int = Field(8, ge=1, description="Largest recogniser batch (8 was fastest "
                           "per face on the 2-core CPU: benchmarks/bench_stages.py).")
    session_options: dict[str, str] = Field(
        default_factory=dict, description="onnxruntime session config entries."
    )
    execution: ExecutionConfig = Field(
        default_factory=ExecutionConfig, description="Providers, GPU and precision.")
    face_model_version: str = Field(
        "7.0", pattern=r"^[0-9.]+$", description="Reported as FaceModelVersion.")
    calibration: list[CalibrationKnot] = Field(
        description="Monotonic (cosine, Similarity) knots; Similarity 80 = confident match."
    )
    confidence: list[ConfidenceKnot] = Field(
        default_factory=default_confidence,
        description="Monotonic (detector score, Confidence) knots; clear faces >= 99.")

    @field_validator("calibration")
    @classmethod
    def _monotonic(cls, knots: list[CalibrationKnot]) -> list[CalibrationKnot]:
        increasing([(k.cosine, k.similarity) for k in knots], "calibration")
        return knots

    @field_validator("confidence")
    @classmethod
    def _monotonic_confidence(cls, knots: list[ConfidenceKnot]) -> list[ConfidenceKnot]:
        increasing([(k.score, k.confidence) for k in knots], "confidence")
        return knots


def _knots(*pairs: tuple[float, float]) -> list[CalibrationKnot]:
    return [CalibrationKnot(cosine=c, similarity=s) for c, s in pairs]


# Knots for the 128-d test packs come from the photos in shared/data (docs/models.md:
# Similarity calibration).
_TEST_CALIBRATION = _knots((-1.0, 0.0), (0.0, 20.0), (0.25, 50.0), (0.40, 80.0), (0.60, 95.0),
                           (1.0, 100.0))
# ArcFace (w600k) packs: same-person cosines sit well above 0.3, impostors below 0.2.
_ARCFACE_CALIBRATION = _knots((-1.0, 0.0), (0.0, 20.0), (0.15, 50.0), (0.30, 80.0), (0.50, 95.0),
                              (1.0, 100.0))


def default_packs() -> dict[str, PackConfig]:
    """Packs known out of the box; config may add or override any of them."""
    return {
        "test_mfn": PackConfig(detector="det_500m.onnx",
                               recognizer="mobilefacenet_foamliu_128d.onnx",
                               calibration=_TEST_CALIBRATION),
        "test_sface": PackConfig(detector="det_500m.onnx",
                                 recognizer="sface_2021dec_int8bq_ortfix.onnx",
                                 rec_mean=0.0, rec_std=1.0,
                                 session_options={"session.disable_quant_qdq": "1"},
                                 calibration=_TEST_CALIBRATION),
        "buffalo_l": PackConfig(detector="det_10g.onnx", recognizer="w600k_r50.onnx",
                                calibration=_ARCFACE_CALIBRATION),
        "buffalo_s": PackConfig(detector="det_500m.onnx", recognizer="w600k_mbf.onnx",
                                calibration=_ARCFACE_CALIBRATION),
        "buffalo_sc": PackConfig(detector="det_500m.onnx", recognizer="w600k_mbf.onnx",
                                 calibration=_ARCFACE_CALIBRATION),
        # glintr100 is an ArcFace-loss ResNet-100 (Glint360K): the ArcFace knots apply.
        "antelopev2": PackConfig(detector="scrfd_10g_bnkps.onnx", recognizer="glintr100.onnx",
                                 calibration=_ARCFACE_CALIBRATION),
    }
