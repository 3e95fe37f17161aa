"""The project-version parts: the training runner and what it trains with, built and wired.

Only constructs (no thread starts, no model loads here): the runner's ``start()`` loads
the backbone once, on the daemon's start, through :func:`trainer_factory`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from streamproc.api.images import ImageLoader
from streamproc.config import Config
from streamproc.daemon.training import Trainer, TrainingRunner
from streamproc.ledger import Ledger
from streamproc.moderation.engine import ModerationEngine
from streamproc.moderation.features import extractor_for
from streamproc.moderation.files import ModerationModelError
from streamproc.projects.versions_inputs import InputReader
from streamproc.projects.versions_outputs import OutputWriter
from streamproc.projects.versions_training import VersionTrainer, top_level
from streamproc.rekognition.constants import Arns
from streamproc.storage.datasets import DatasetStore
from streamproc.storage.object_keys import ObjectRef
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


def trainer_factory(config: Config, datasets: DatasetStore, objects: ObjectStore,
                    moderation: ModerationEngine) -> Callable[[], Trainer]:
    """What the runner calls once at its start: loads the backbone, returns the trainer."""
    def make() -> Trainer:
        extractor = extractor_for(config.moderation, config.models)
        extractor.load()
        loader = ImageLoader(config.images, objects)

        def read(ref: ObjectRef) -> np.ndarray:
            return loader.load({"S3Object": {"Bucket": ref.bucket, "Name": ref.name}},
                               "source-ref")

        def base(images: Sequence[np.ndarray]) -> list[dict[str, float]]:
            return [top_level({label.name: label.confidence for label in found.labels})
                    for found in moderation.analyse_many(images)]

        return VersionTrainer(InputReader(datasets, objects, config.projects),
                              OutputWriter(objects, moderation.model_version), extractor,
                              read, base, config.projects)
    return make


def build_runner(config: Config, versions: VersionStore, datasets: DatasetStore,
                 objects: ObjectStore, moderation: ModerationEngine, ledger: Ledger,
                 node: str) -> TrainingRunner:
    """The training runner of this node (not started)."""
    arns = Arns(config.server.region, config.server.account_id)
    return TrainingRunner(versions, ledger, trainer_factory(config, datasets, objects,
                                                            moderation), arns, node,
                          part_bytes=config.projects.dataset_chunk_bytes)
