"""open_nsfw as a frozen backbone: the 1024-d pooled tensor and the nsfw score, in one run.

Adapters and Custom Labels classifiers (:mod:`streamproc.training`) are heads on these
features. The pooled tensor ``Reshape:0`` (global average pool of the last ResNet block,
flattened; the input of ``fc_nsfw/MatMul``) is not a graph output, so :meth:`load` adds it
as one in memory before opening the session; the file on disk is untouched and still
checked against its pinned SHA-256. Images are BGR uint8 HxWx3, as the engine takes them.

:attr:`FeatureExtractor.identity` names the model file (its pinned SHA-256, which
:meth:`load` verifies), the tensor and the pre-processing, so a head trained on these
features can refuse to run on any other backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from streamproc.config import ModelsConfig
from streamproc.config.moderation import ModerationConfig, OpenNsfwModel
from streamproc.faces.providers import ExecutionOptions
from streamproc.faces.runner import OrtRunner
from streamproc.moderation.engine import execution_options
from streamproc.moderation.files import ModelFile, ModerationModelError, locate, verify
from streamproc.moderation.models import Scores
from streamproc.moderation.open_nsfw import preprocess

POOLED = "Reshape:0"
DIMENSIONS = 1024
SCORES = "outputs"  # [sfw, nsfw] softmax
# Bump when open_nsfw.preprocess changes what the model sees: heads trained before then
# are refused instead of silently running on shifted features.
PREPROCESSING_VERSION = 1


@dataclass(frozen=True)
class FeatureBatch:
    """Per image: the pooled features (n x 1024, float32) and open_nsfw's nsfw score."""

    features: np.ndarray
    nsfw: np.ndarray

    def model_scores(self) -> list[Scores]:
        """open_nsfw's scores per image as the engine's label map reads them (``known``)."""
        # The output is a two-way softmax, so sfw is the complement of nsfw.
        return [{"sfw": 1.0 - float(score), "nsfw": float(score)} for score in self.nsfw]


def with_pooled_output(graph: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with ``Reshape:0`` added as a second output (in memory)."""
    if POOLED not in {out for node in graph.graph.node for out in node.output}:
        msg = f"open_nsfw graph has no tensor {POOLED}; is this open_nsfw?"
        raise ModerationModelError(msg)
    if POOLED not in {out.name for out in graph.graph.output}:
        graph.graph.output.append(onnx.helper.make_tensor_value_info(
            POOLED, onnx.TensorProto.FLOAT, ["N", DIMENSIONS]))
    return graph


class FeatureExtractor:
    """open_nsfw with its pooled tensor exposed; construction does no I/O."""

    def __init__(self, pack: str, name: str, config: OpenNsfwModel,
                 options: ExecutionOptions) -> None:
        self.pack, self.name, self.config = pack, name, config
        self._options = options
        self._runner: OrtRunner | None = None
        self._outputs: tuple[int, int] = (0, 1)

    @property
    def identity(self) -> str:
        """Model file SHA-256, tensor and pre-processing version, as one string."""
        jpeg = "jpeg" if self.config.jpeg_roundtrip else "nojpeg"
        return (f"open_nsfw:sha256={self.config.sha256}:tensor={POOLED}:"
                f"preprocess=yahoo-{PREPROCESSING_VERSION}-{jpeg}")

    def load(self) -> ModelFile:
        """Find and verify the file, open the session with the extra output (once)."""
        found = locate(self.pack, self.name, self.config)
        if self._runner is None:
            verify(self.pack, found)
            runner = OrtRunner(found.path, self._options, transform=with_pooled_output)
            runner.load()
            names = [out.name for out in runner.session.get_outputs()]
            self._outputs = (names.index(SCORES), names.index(POOLED))
            self._runner = runner
        return found

    def extract(self, images: Sequence[np.ndarray]) -> FeatureBatch:
        """Features and nsfw scores of every image; one session run per ``batch`` images."""
        if self._runner is None:
            msg = f"feature extractor {self.name} is not loaded"
            raise RuntimeError(msg)
        scores, pooled = self._outputs
        features, nsfw = [], []
        for start in range(0, len(images), self.config.batch):
            chunk = images[start:start + self.config.batch]
            tensor = np.stack([preprocess(image, self.config.jpeg_roundtrip)
                               for image in chunk])
            outputs = self._runner.run(tensor)
            features.append(np.asarray(outputs[pooled], dtype=np.float32).reshape(
                len(chunk), DIMENSIONS))
            nsfw.append(np.asarray(outputs[scores], dtype=np.float64).reshape(
                len(chunk), 2)[:, 1])
        if not features:
            return FeatureBatch(np.zeros((0, DIMENSIONS), np.float32), np.zeros(0))
        return FeatureBatch(np.concatenate(features), np.concatenate(nsfw))


def extractor_for(config: ModerationConfig, models: ModelsConfig,
                  name: str = "open_nsfw") -> FeatureExtractor:
    """The extractor over moderation model ``name`` (an open_nsfw kind), not loaded."""
    model = config.models.get(name)
    if not isinstance(model, OpenNsfwModel):
        msg = f"moderation model {name!r} is not an open_nsfw model; features need one"
        raise ModerationModelError(msg)
    return FeatureExtractor(config.pack, name, model, execution_options(config, models))
