"""What a CreateProjectVersion request asked, as typed values: output, data sets, threshold.

The API parses the request into these once (:func:`OutputTarget.parse` and its kin); the
service, the ledger's commands and the training runner carry them. A version's ``spec``
is still stored, and logged, in the request's own field names (OutputConfig, TrainingData,
TestingData, FeatureConfig): :meth:`stored` writes exactly those bytes, so records and rows
written before these types existed replay unchanged, and ``parse`` reads them back.
A key the request left out stays out (``None`` here), for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamproc.storage.object_keys import ObjectRef

# FeatureConfig.ContentModeration.ConfidenceThreshold when a request gives none (AWS's 50):
# what CreateProjectVersion stores and what training evaluates at.
DEFAULT_CONFIDENCE_THRESHOLD = 50.0


class SpecError(ValueError):
    """A request part that does not fit its type; ``str(error)`` says what is wrong."""


@dataclass(frozen=True)
class OutputTarget:
    """OutputConfig: the bucket and key prefix a training writes its files under."""

    bucket: str
    prefix: str | None = None  # S3KeyPrefix (None: the request gave none)

    def key(self, project: str, version: str, name: str = "") -> str:
        """``{prefix}{project}/{version}/{name}``: where a version's file ``name`` goes."""
        return f"{self.prefix or ''}{project}/{version}/{name}"

    def stored(self) -> dict[str, Any]:
        """OutputConfig as the request gave it."""
        prefix = {} if self.prefix is None else {"S3KeyPrefix": self.prefix}
        return {"S3Bucket": self.bucket, **prefix}

    @classmethod
    def parse(cls, data: dict[str, Any]) -> OutputTarget:
        """An OutputConfig (SpecError: no S3Bucket, which a training needs)."""
        if "S3Bucket" not in data:
            msg = "OutputConfig needs an S3Bucket"
            raise SpecError(msg)
        prefix = data.get("S3KeyPrefix")
        return cls(str(data["S3Bucket"]), None if prefix is None else str(prefix))


@dataclass(frozen=True)
class TrainingInput:
    """TrainingData or TestingData: the manifests named, and (test side) AutoCreate."""

    assets: tuple[ObjectRef, ...] | None = None  # the Assets' manifests (None: no Assets)
    auto_create: bool | None = None  # TestingData.AutoCreate (None: not given)

    @property
    def manifests(self) -> tuple[ObjectRef, ...]:
        """The manifests named (none: the project's dataset is read, or a split)."""
        return self.assets or ()

    @property
    def auto(self) -> bool:
        """Whether the test set is split off the training data (AutoCreate true)."""
        return bool(self.auto_create)

    def stored_assets(self) -> list[dict[str, Any]]:
        """The Assets as the request gave them (``[]`` for none)."""
        return [{"GroundTruthManifest": {"S3Object": _object(ref)}} for ref in self.manifests]

    def stored(self) -> dict[str, Any]:
        """TrainingData / TestingData as the request gave it."""
        out: dict[str, Any] = {}
        if self.assets is not None:
            out["Assets"] = self.stored_assets()
        if self.auto_create is not None:
            out["AutoCreate"] = self.auto_create
        return out

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TrainingInput:
        """A TrainingData / TestingData (SpecError: an asset without Bucket and Name)."""
        assets = data.get("Assets")
        auto = data.get("AutoCreate")
        return cls(None if assets is None else tuple(_asset(a) for a in assets),
                   None if auto is None else bool(auto))


@dataclass(frozen=True)
class AdapterConfig:
    """FeatureConfig.ContentModeration: the threshold an adapter is evaluated at."""

    # Kept as the request gave it (an int stays an int) so the stored bytes do not change.
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD

    def stored(self) -> dict[str, Any]:
        """FeatureConfig as stored (its ConfidenceThreshold always filled in)."""
        return {"ContentModeration": {"ConfidenceThreshold": self.threshold}}

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AdapterConfig:
        """A FeatureConfig; a threshold not given is :data:`DEFAULT_CONFIDENCE_THRESHOLD`."""
        moderation = data.get("ContentModeration") or {}
        return cls(moderation.get("ConfidenceThreshold", DEFAULT_CONFIDENCE_THRESHOLD))


def _asset(asset: dict[str, Any]) -> ObjectRef:
    obj = (asset.get("GroundTruthManifest") or {}).get("S3Object") or {}
    if "Bucket" not in obj or "Name" not in obj:
        msg = "An asset's GroundTruthManifest needs an S3Object with Bucket and Name"
        raise SpecError(msg)
    version = obj.get("Version")
    return ObjectRef(str(obj["Bucket"]), str(obj["Name"]),
                     None if version is None else str(version))


def _object(ref: ObjectRef) -> dict[str, Any]:
    version = {} if ref.version is None else {"Version": ref.version}
    return {"Bucket": ref.bucket, "Name": ref.name, **version}
