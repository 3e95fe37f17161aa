"""DetectModerationLabels with a Custom Moderation adapter: one model run per image.

The adapter path runs the :class:`~.features.FeatureExtractor` (open_nsfw with its pooled
tensor exposed), hands its open_nsfw scores to the engine as ``known`` scores, so the
engine runs only the pack's other models (none for the default pack), and reads the base
labels through the pack's own label map. The adapter's heads then score the features.

How an adapter changes the base labels (:func:`adapted`):
- an adapter label's Confidence is the adapter's calibrated one, not the base model's;
- its descendants keep the base model's Confidence, capped at the adapter's, so an adapter
  that says "not Explicit" also lowers the base model's Explicit subtree below the
  caller's MinConfidence, and a parent is never less confident than its child;
- its ancestors follow the engine's rule (:func:`.labels.with_ancestors`): at least as
  confident as it, never lowered by it (AWS trains adapters on top-level labels, which
  have no ancestors);
- every other label keeps the base model's Confidence. MinConfidence applies after.

A head's extra input is the base model's Confidence of its label / 100 (0 where the pack
does not emit it): :meth:`AdapterInputs.base_scores`, the one definition that training
(the runner) and serving share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ResourceNotReadyException,
)
from streamproc.moderation import taxonomy
from streamproc.moderation.features import FeatureBatch
from streamproc.moderation.labels import served, with_ancestors
from streamproc.moderation.models import Scores
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel, at_least
from streamproc.training import serial
from streamproc.training.errors import BackboneMismatchError, HeadFormatError
from streamproc.training.heads import TrainedHeads

ADAPTER = "adapter"  # TrainedHeads.kind of a Custom Moderation adapter


def no_adapters(arn: str) -> ResourceNotFoundException:
    """What a ProjectVersion gets where no adapters are served.

    One message for every path: DetectModerationLabels, StartMediaAnalysisJob, a launch.
    """
    return ResourceNotFoundException(
        f"No such project version exists: {arn} (this server has no Custom Moderation adapters)")


def no_backbone() -> InvalidParameterException:
    """What serving or starting any project version gets where the pack has no backbone.

    The one rule: without a feature extractor no head can be applied (and loading one
    could not check which backbone it was trained on). StartProjectVersion FAILS the
    version with its message; DetectModerationLabels and DetectCustomLabels answer it.
    """
    return InvalidParameterException(
        "This server's moderation pack has no feature extractor (open_nsfw): project "
        "versions cannot be served here")


class VersionModelError(ResourceNotReadyException):
    """A version whose stored model bytes cannot be read (damaged, or another format).

    ResourceNotReadyException, which botocore lists for DetectModerationLabels and
    DetectCustomLabels: the version exists but has no usable model, as one whose training
    failed. StartProjectVersion FAILS such a version with the same message.
    """

    def __init__(self, error: HeadFormatError) -> None:
        super().__init__(f"The project version's model cannot be read ({error}): train a "
                         "new version")


class VersionBackboneError(InvalidParameterException):
    """A project version trained on another backbone than the one this server runs.

    InvalidParameterException, as a collection made by another face model is refused; the
    message says which backbones and what to do (train a new version).
    """

    def __init__(self, error: BackboneMismatchError) -> None:
        self.trained, self.running = error.trained, error.running
        super().__init__(str(error))


class VersionFeatureError(InvalidParameterException):
    """A version of the other feature: a Custom Labels model where an adapter is needed."""


def load_heads(data: bytes, backbone: str, kind: str) -> TrainedHeads:
    """A stored version's heads, refused unless trained on ``backbone`` as a ``kind``.

    Raises :class:`VersionBackboneError`, :class:`VersionFeatureError`, and
    :class:`VersionModelError` for damaged bytes: the one place a stored model's bytes
    become a modelled error.
    """
    try:
        heads = serial.loads(data, backbone)
    except BackboneMismatchError as error:
        raise VersionBackboneError(error) from error
    except HeadFormatError as error:
        raise VersionModelError(error) from error
    if heads.kind != kind:
        msg = (f"this project version's model is of kind {heads.kind!r}, not {kind!r}: "
               "it belongs to a project of the other Feature")
        raise VersionFeatureError(msg)
    return heads


@dataclass(frozen=True)
class Adapter:
    """A trained adapter ready to serve: its ProjectVersion ARN and its heads."""

    arn: str
    heads: TrainedHeads


def load_adapter(arn: str, data: bytes, backbone: str) -> Adapter:
    """The adapter of version ``arn`` from its stored bytes (see :func:`load_heads`)."""
    return Adapter(arn, load_heads(data, backbone, ADAPTER))


class FeatureSource(Protocol):
    """The feature extractor as the adapter path uses it (a fake in unit tests)."""

    @property
    def name(self) -> str:
        """The moderation model it runs (its scores replace that model's run)."""

    @property
    def identity(self) -> str:
        """What a head must have been trained on (``TrainedHeads.backbone``)."""

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        """Features and open_nsfw scores of every image, in one model run per batch."""


class ScoredModerator(Protocol):
    """The engine as the adapter path uses it: scores, some given, then labels."""

    @property
    def model_version(self) -> str:
        """``ModerationModelVersion`` of the base pack."""

    @property
    def served(self) -> tuple[str, ...]:
        """The labels the base pack can emit."""

    def scores_many(self, images: Sequence[np.ndarray],
                    known: Mapping[str, Sequence[Scores]] | None = None
                    ) -> list[dict[str, Scores]]:
        """Every image's scores; models in ``known`` are not run."""

    def labels_of(self, scores: dict[str, Scores]) -> ModerationAnalysis:
        """One image's base labels from its scores."""


@dataclass(frozen=True)
class AdapterInputs:
    """What one run gives per image: backbone features and the base model's labels."""

    features: np.ndarray  # n x 1024, float32
    base: tuple[ModerationAnalysis, ...]

    def base_scores(self, labels: Sequence[str]) -> dict[str, np.ndarray]:
        """Label -> the base model's Confidence / 100 per image (0 where not emitted)."""
        return {label: np.array([_confidence(analysis.labels, label) / 100.0
                                 for analysis in self.base]) for label in labels}


def _confidence(labels: Sequence[ModerationLabel], name: str) -> float:
    return next((label.confidence for label in labels if label.name == name), 0.0)


def adapted(base: ModerationAnalysis, confidences: Mapping[str, float]) -> ModerationAnalysis:
    """The base labels with the adapter's Confidences applied (the module's rules)."""
    found = {label.name: label.confidence for label in base.labels}
    # Deepest first: an adapted label then bounds its whole subtree, adapted children too.
    for name in sorted(confidences, key=taxonomy.level_of, reverse=True):
        cap = float(confidences[name])
        for other in found:
            if name in taxonomy.ancestors(other):
                found[other] = min(found[other], cap)
        found[name] = cap
    return ModerationAnalysis(labels=with_ancestors(found))


@dataclass(frozen=True)
class AdapterResult:
    """DetectModerationLabels' answer with an adapter, at or above MinConfidence."""

    labels: tuple[ModerationLabel, ...]
    model_version: str  # ModerationModelVersion: the base pack
    project_version: str  # ProjectVersion: the adapter's ARN

    def wire(self) -> dict[str, object]:
        """The response body (ModerationLabels, ModerationModelVersion, ProjectVersion)."""
        return {"ModerationLabels": [label.wire() for label in self.labels],
                "ModerationModelVersion": self.model_version,
                "ProjectVersion": self.project_version}


class AdapterModerator:
    """Base labels and an adapter's labels from one model run per image; no I/O."""

    def __init__(self, engine: ScoredModerator, extractor: FeatureSource) -> None:
        self._engine = engine
        self._extractor = extractor

    @property
    def backbone(self) -> str:
        """The running backbone: an adapter trained on another is refused."""
        return self._extractor.identity

    @property
    def model_version(self) -> str:
        """``ModerationModelVersion`` of the base pack."""
        return self._engine.model_version

    def served_with(self, adapter: TrainedHeads) -> tuple[str, ...]:
        """The labels emitted with ``adapter``: the base pack's, its labels and ancestors."""
        return served(set(self._engine.served) | set(adapter.labels))

    def inputs(self, images: Sequence[np.ndarray]) -> AdapterInputs:
        """Features and base labels of every image (training and serving both use this)."""
        batch = self._extractor.extract(images)
        known = {self._extractor.name: batch.model_scores()}
        scores = self._engine.scores_many(images, known)
        return AdapterInputs(batch.features, tuple(self._engine.labels_of(s) for s in scores))

    def analyse_many(self, images: Sequence[np.ndarray], adapter: TrainedHeads
                     ) -> list[ModerationAnalysis]:
        """Every image's labels with the adapter applied, at any confidence."""
        if adapter.backbone != self.backbone:
            raise VersionBackboneError(BackboneMismatchError(adapter.backbone, self.backbone))
        if not images:
            return []
        seen = self.inputs(images)
        heads = adapter.confidences(seen.features, seen.base_scores(adapter.labels))
        return [adapted(base, {label: float(values[i]) for label, values in heads.items()})
                for i, base in enumerate(seen.base)]

    def detect(self, image: np.ndarray, adapter: Adapter, min_confidence: float
               ) -> AdapterResult:
        """One image's DetectModerationLabels result with ``adapter``."""
        (analysis,) = self.analyse_many([image], adapter.heads)
        return AdapterResult(tuple(at_least(analysis.labels, min_confidence)),
                             self.model_version, adapter.arn)


class WithAdapter:
    """A :class:`~.types.Moderator` that applies one adapter (for jobs and stages)."""

    def __init__(self, moderator: AdapterModerator, adapter: Adapter) -> None:
        self._moderator = moderator
        self.adapter = adapter

    @property
    def model_version(self) -> str:
        """``ModerationModelVersion`` of the base pack (ProjectVersion is ``adapter.arn``)."""
        return self._moderator.model_version

    @property
    def served(self) -> tuple[str, ...]:
        """The base pack's labels, the adapter's and their ancestors."""
        return self._moderator.served_with(self.adapter.heads)

    def analyse_many(self, images: Sequence[np.ndarray]) -> list[ModerationAnalysis]:
        """Every image's labels with the adapter applied, at any confidence."""
        return self._moderator.analyse_many(images, self.adapter.heads)
