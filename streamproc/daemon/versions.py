"""The project-version parts: the training runner, the serving side, and their backbone.

Only constructs (no thread starts, no model loads here). Training and serving share one
:class:`SharedExtractor`: the backbone is loaded once, by whichever needs it first (the
runner's ``start()`` through :func:`trainer_factory`, usually, so a request rarely waits
for it), and both run the same :class:`~streamproc.moderation.adapter.AdapterModerator`,
so an adapter serves on exactly the inputs it was trained on. The trainer runs behind the
live stream processors (``live``: the data plane; see
:mod:`streamproc.projects.versions_training`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from streamproc.api.images import ImageLoader
from streamproc.config import Config
from streamproc.daemon.training import Trainer, TrainingRunner
from streamproc.ledger import Ledger
from streamproc.moderation.adapter import AdapterModerator
from streamproc.moderation.custom_labels import CustomLabelsModel
from streamproc.moderation.engine import ModerationEngine
from streamproc.moderation.features import FeatureBatch, FeatureExtractor, extractor_for
from streamproc.moderation.files import ModerationModelError
from streamproc.projects.versions_inputs import InputReader
from streamproc.projects.versions_outputs import OutputWriter
from streamproc.projects.versions_training import LiveLoad, VersionTrainer
from streamproc.rekognition.constants import Arns
from streamproc.storage.datasets import DatasetStore
from streamproc.storage.objects import ObjectStore
from streamproc.storage.versions import VersionStore

LOCAL_NODE = "local"  # the node a single daemon trains as


def backbone_of(config: Config) -> Callable[[], str | None]:
    """The identity of the backbone this server's pack gives (None: the pack has none)."""
    def identity() -> str | None:
        try:
            return extractor_for(config.moderation, config.models).identity
        except ModerationModelError:
            return None
    return identity


class SharedExtractor:
    """One feature extractor for the runner's thread and the API's, loaded on first use.

    An onnxruntime session runs from many threads at once; only its loading is guarded.
    """

    def __init__(self, extractor: FeatureExtractor) -> None:
        self._extractor = extractor
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def name(self) -> str:
        """The moderation model it runs (open_nsfw)."""
        return self._extractor.name

    @property
    def identity(self) -> str:
        """The backbone's identity (what a trained version must match)."""
        return self._extractor.identity

    def load(self) -> None:
        """Load the model once (raises ModerationModelError when it cannot be)."""
        with self._lock:
            if not self._loaded:
                self._extractor.load()
                self._loaded = True

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        """Features and open_nsfw scores (loads the model first if nobody has)."""
        self.load()
        return self._extractor.extract(images)


@dataclass(frozen=True)
class Serving:
    """What runs trained versions: adapters over the pack, Custom Labels classifiers."""

    extractor: SharedExtractor  # the backbone, shared with the training runner
    adapters: AdapterModerator
    custom: CustomLabelsModel


def serving_of(config: Config, moderation: ModerationEngine) -> Serving | None:
    """The serving side over the pack's backbone (None: the pack has no open_nsfw)."""
    try:
        extractor = SharedExtractor(extractor_for(config.moderation, config.models))
    except ModerationModelError:
        return None
    return Serving(extractor, AdapterModerator(moderation, extractor),
                   CustomLabelsModel(extractor))


def trainer_factory(config: Config, datasets: DatasetStore, objects: ObjectStore,
                    moderation: ModerationEngine, serving: Serving | None,
                    live: LiveLoad | None = None) -> Callable[[], Trainer]:
    """What the runner calls once at its start: loads the backbone, returns the trainer.

    Without ``serving`` (a pack without open_nsfw) it raises, and every version fails with
    the reason. ``live`` (the data plane) is what the trainer waits for between batches.
    """
    def make() -> Trainer:
        if serving is None:  # extractor_for raises the pack's own reason
            extractor_for(config.moderation, config.models)
            msg = "the moderation pack has no feature extractor"
            raise ModerationModelError(msg)
        extractor = serving.extractor
        extractor.load()
        # Its own loader, not the API's (daemon/parts.py builds that one): the trainer
        # decodes one image at a time, so it adds at most one decode to the API's
        # images.max_concurrent_decodes, and its batches are bounded in bytes.
        loader = ImageLoader(config.images, objects)
        return VersionTrainer(InputReader(datasets, objects, config.projects),
                              OutputWriter(objects, moderation.model_version), extractor,
                              loader.load_object, serving.adapters.inputs, config.projects,
                              live=live, beside_live=config.jobs.batch_frames_beside_live)
    return make


def build_runner(config: Config, versions: VersionStore, datasets: DatasetStore,
                 objects: ObjectStore, moderation: ModerationEngine, ledger: Ledger,
                 node: str, serving: Serving | None, live: LiveLoad | None = None
                 ) -> TrainingRunner:
    """The training runner of this node (not started); ``live``: the data plane to yield to."""
    arns = Arns(config.server.region, config.server.account_id)
    return TrainingRunner(versions, ledger, trainer_factory(config, datasets, objects,
                                                            moderation, serving, live),
                          arns, node,
                          part_bytes=config.projects.dataset_chunk_bytes,
                          deadline_s=config.projects.training_deadline_s)
