"""Serving trained versions: a version's ARN to its loaded adapter or classifier.

Every request looks its version up first (:meth:`VersionService.find`), so a deleted
version is never served, whatever is cached; the loaded heads are cached per version
(an LRU of ``size``), the entry dropped when a request finds the version gone. A version's
model bytes never change once trained, so a cached entry is the version's as long as the
version (named with its creation time) exists.

Which version serves (the answer AWS gives otherwise):
- an adapter (DetectModerationLabels ``ProjectVersion``): TRAINING_COMPLETED (adapters are
  never started). Still TRAINING_IN_PROGRESS, or TRAINING_FAILED, is
  ResourceNotReadyException: the version exists but has no usable model, as a Custom
  Labels version that is not RUNNING (botocore lists it for DetectModerationLabels); the
  message says which, and for a failed one the training's reason.
- a Custom Labels version (DetectCustomLabels): only RUNNING (ResourceNotReadyException).
- the other feature's version: InvalidParameterException (:class:`VersionFeatureError`);
  a model trained on another backbone: :class:`VersionBackboneError`; damaged model bytes:
  :class:`VersionModelError` (ResourceNotReadyException); no backbone here at all:
  :func:`no_backbone`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from streamproc.errors import ResourceNotReadyException
from streamproc.moderation.adapter import (
    Adapter,
    VersionFeatureError,
    load_adapter,
    no_backbone,
)
from streamproc.moderation.custom_labels import Classifier, load_classifier
from streamproc.projects.types import Feature
from streamproc.projects.versions import Version, VersionStatus
from streamproc.projects.versions_service import VersionService

CACHE_SIZE = 16  # loaded versions kept (heads are a few hundred KiB each)
T = TypeVar("T", Adapter, Classifier)


class VersionModels:
    """Loaded adapters and classifiers by version; safe from many API threads."""

    def __init__(self, versions: VersionService, backbone: Callable[[], str | None],
                 size: int = CACHE_SIZE) -> None:
        self._versions = versions
        self._backbone = backbone
        self._size = size
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, Adapter | Classifier] = OrderedDict()

    def cached(self) -> tuple[str, ...]:
        """The versions whose heads are loaded, least recently used first."""
        with self._lock:
            return tuple(self._loaded)

    def adapter(self, resource_id: str, arn: str) -> Adapter:
        """The adapter ``resource_id`` names (``arn``: its ARN, for the answer)."""
        version = self._find(resource_id)
        _check_feature(version, Feature.CONTENT_MODERATION)
        if version.status is VersionStatus.TRAINING_IN_PROGRESS:
            raise ResourceNotReadyException(
                f"The adapter {version.ref.name} is still being trained")
        if version.status is not VersionStatus.TRAINING_COMPLETED:
            raise ResourceNotReadyException(
                f"The adapter {version.ref.name} has no trained model "
                f"({version.status.value}: {version.message})")
        return self._load(version, Adapter,
                          lambda data, backbone: load_adapter(arn, data, backbone))

    def classifier(self, resource_id: str) -> Classifier:
        """The running Custom Labels model ``resource_id`` names."""
        version = self._find(resource_id)
        _check_feature(version, Feature.CUSTOM_LABELS)
        if version.status is not VersionStatus.RUNNING:
            raise ResourceNotReadyException(
                f"The model {version.ref.name} is not running ({version.status.value}): "
                "start it with StartProjectVersion")
        thresholds = version.outcome.thresholds
        return self._load(version, Classifier,
                          lambda data, backbone: load_classifier(data, backbone, thresholds))

    def _find(self, resource_id: str) -> Version:
        version = self._versions.find(resource_id)
        if version is None:
            with self._lock:  # deleted: its heads go with it
                self._loaded.pop(resource_id, None)
        return self._versions.require(resource_id) if version is None else version

    def _load(self, version: Version, kind: type[T], load: Callable[[bytes, str], T]) -> T:
        key = version.ref.resource_id
        with self._lock:
            held = self._loaded.get(key)
            if isinstance(held, kind):
                self._loaded.move_to_end(key)
                return held
        backbone = self._backbone()
        if backbone is None:
            raise no_backbone()
        data = self._versions.model(version)
        if data is None:
            raise ResourceNotReadyException(f"The version {version.ref.name} has no model")
        # Loaded outside the lock: another request may load it too; the same bytes give
        # the same heads, and the last one kept wins.
        loaded = load(data, backbone)
        with self._lock:
            self._loaded[key] = loaded
            self._loaded.move_to_end(key)
            while len(self._loaded) > self._size:
                self._loaded.popitem(last=False)
        return loaded


def _check_feature(version: Version, wanted: Feature) -> None:
    if version.feature is not wanted:
        other = ("an adapter (Feature CONTENT_MODERATION)"
                 if version.feature is Feature.CONTENT_MODERATION
                 else "a Custom Labels model (Feature CUSTOM_LABELS)")
        raise VersionFeatureError(
            f"The version {version.ref.name} is {other}: this operation needs a version "
            f"of Feature {wanted.value}")
