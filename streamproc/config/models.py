"""Where the model packs live, how they run, and the QualityFilter levels."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from streamproc.config.base import Section
from streamproc.config.packs import PackConfig, ProviderChoice, default_packs


class QualityLevel(Section):
    """Minimum face quality for one QualityFilter level (docs/models.md: Quality filter)."""

    min_confidence: float = Field(ge=0, le=100, description="Confidence below: LOW_CONFIDENCE.")
    min_face_px: int = Field(ge=0, description="Shorter box side below: SMALL_BOUNDING_BOX.")
    min_brightness: float = Field(ge=0, le=100, description="Below: LOW_BRIGHTNESS.")
    min_sharpness: float = Field(ge=0, le=100, description="Below: LOW_SHARPNESS.")
    max_abs_yaw: float = Field(ge=0, le=180, description="|Yaw| above: EXTREME_POSE.")
    max_pitch_down: float = Field(ge=0, le=180, description="Pitch below -this: EXTREME_POSE.")
    max_pitch_up: float = Field(ge=0, le=180, description="Pitch above: EXTREME_POSE.")


def _level(confidence: float, face_px: int, brightness: float, sharpness: float,
           yaw: float, down: float, up: float) -> QualityLevel:
    return QualityLevel(min_confidence=confidence, min_face_px=face_px,
                        min_brightness=brightness, min_sharpness=sharpness,
                        max_abs_yaw=yaw, max_pitch_down=down, max_pitch_up=up)


QUALITY_LEVELS = frozenset({"LOW", "AUTO", "MEDIUM", "HIGH"})


def default_quality() -> dict[str, QualityLevel]:
    """QualityFilter levels; AUTO is the one IndexFaces uses by default.

    Pose limits follow Rekognition's guidance for faces to index (yaw within 45 degrees,
    at most 30 down and 45 up) with margins for a 5-point estimate; 40 px is its minimum
    face size for images up to 1920x1080, 50 px its recommended one.
    """
    return {
        "LOW": _level(50, 20, 5, 10, yaw=75, down=60, up=60),
        "AUTO": _level(90, 40, 10, 20, yaw=55, down=40, up=50),
        "MEDIUM": _level(95, 50, 15, 35, yaw=45, down=30, up=45),
        "HIGH": _level(98, 64, 20, 55, yaw=30, down=25, up=30),
    }


class ModelsConfig(Section):
    """Where the model packs live and how they run."""

    def label_pack_folder(self) -> Path:
        """Where the label pack is: ``label_pack``, else ``ROOT/labels-pack``."""
        folder = self.label_pack or Path(self.root) / "labels-pack"
        return folder.expanduser()

    root: Path = Field(Path("~/.insightface"), description="insightface root: ROOT/models/PACK.")
    pack: str = Field("buffalo_l", description="Pack the daemon loads.")
    backend: Literal["onnxruntime", "torch"] = Field(
        "onnxruntime", description="onnxruntime, or PyTorch running the same ONNX graphs "
        "(extra streamproc[torch]) where onnxruntime-gpu is not available.")
    auto_pull: bool = Field(
        False, description="Download a missing pack at start-up (printing its licence). Off: "
        "nothing downloads unless the operator runs `streamproc models pull`.")
    mirror: str | None = Field(
        None, description="URL or folder holding PACK.zip archives, used by `models pull` and "
        "auto_pull instead of insightface's release URLs.")
    providers: ProviderChoice = Field(
        "auto", description="auto = CUDA first when onnxruntime has it, else CPU.")
    device_id: int = Field(0, ge=0, description="GPU index for CUDA / TensorRT / torch.")
    require_gpu: bool = Field(
        False, description="Refuse to start (exit 2) unless the models run on a GPU.")
    detect_batching: Literal["auto", "batched", "per_frame"] = Field(
        "auto", description="Detect the frames of several streams in one call; auto = "
        "batched on a GPU, per frame on CPU (measured faster there).")
    intra_op_threads: int = Field(0, ge=0, description="onnxruntime threads per session; 0=auto.")
    label_pack: Path | None = Field(
        None, description="Folder of the label pack (DetectLabels, label jobs) that `streamproc "
        "models convert labels` makes; null = ROOT/labels-pack under `root`. No pack there: "
        "label operations answer that none is installed.")
    det_score_threshold: float = Field(0.5, ge=0, le=1, description="Detector score cut-off.")
    nms_threshold: float = Field(0.4, ge=0, le=1, description="Detector NMS IoU.")
    packs: dict[str, PackConfig] = Field(
        default_factory=default_packs,
        description="Face packs by name; entries here add to or replace the built-in packs.")
    quality: dict[str, QualityLevel] = Field(
        default_factory=default_quality, description="QualityFilter levels LOW/AUTO/MEDIUM/HIGH.")

    @field_validator("quality")
    @classmethod
    def _all_levels(cls, levels: dict[str, QualityLevel]) -> dict[str, QualityLevel]:
        # A missing level would silently filter nothing (like NONE).
        if set(levels) != QUALITY_LEVELS:
            msg = f"quality needs exactly the levels {sorted(QUALITY_LEVELS)}"
            raise ValueError(msg)
        return levels
