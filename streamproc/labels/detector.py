"""The label pack's models behind :class:`~streamproc.labels.types.LabelDetector`.

Two ONNX models: SSD MobileNet v2 (COCO boxes, non-maximum suppression inside the graph) and
EfficientNet-Lite3 (ImageNet classes of the whole image). Each runs in one onnxruntime
session (CUDA first when present, as the face packs do), which is thread-safe, so one
detector serves DetectLabels' request threads and the label job at once. Construction does
no I/O: :meth:`PackDetector.load` checks the pack's files and opens the sessions.

The classifier costs about as much per frame as the detector on a CPU. A label job may
therefore reuse one frame's whole-image classes for the frames after it
(:meth:`PackDetector.detect_frame` with a :class:`WholeImage` held by the label stage); the
boxes are always the frame's own. DetectLabels runs both models on every image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from streamproc.faces.providers import ExecutionOptions
from streamproc.faces.runner import OrtRunner, log_status
from streamproc.labels import labelmap, pack
from streamproc.labels.merge import Hit, merge
from streamproc.labels.types import Box, Instance, Label

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WholeImage:
    """The classifier's hits for one frame: what a later frame may reuse instead of a run."""

    hits: tuple[Hit, ...]


class PackDetector:
    """A label pack folder, loaded: ``detect`` is safe from several threads at once."""

    def __init__(self, folder: Path, options: ExecutionOptions) -> None:
        self._folder = folder
        self._options = options
        self._manifest: pack.PackManifest | None = None
        self._map: labelmap.LabelMap | None = None
        self._detector: OrtRunner | None = None
        self._classifier: OrtRunner | None = None

    def load(self) -> None:
        """Check every file against the manifest, read the map, open and warm both sessions.

        The warm-up run makes onnxruntime allocate and pick its kernels now, so the first
        request does not pay for it.
        """
        manifest = pack.check_pack(self._folder)
        found = labelmap.load((self._folder / pack.LABELMAP).read_text())
        detector = OrtRunner(self._folder / pack.DETECTOR, self._options)
        classifier = OrtRunner(self._folder / pack.CLASSIFIER, self._options)
        detector.load()
        classifier.load()
        for runner in (detector, classifier):
            log_status(runner.status)
        self._manifest, self._map = manifest, found
        self._detector, self._classifier = detector, classifier
        self.detect(np.zeros((64, 64, 3), np.uint8), 100.0)
        logger.info("label pack %s loaded from %s (%d labels)", manifest.model_version,
                    self._folder, len(found.labels))

    @property
    def model_version(self) -> str:
        """LabelModelVersion: names both models and the pack's revision."""
        return self._loaded()[0].model_version

    def detect(self, image: npt.NDArray[np.uint8], min_confidence: float) -> tuple[Label, ...]:
        """Labels at ``min_confidence`` (percent) or above in an H x W x 3 RGB image."""
        return self.detect_frame(image, min_confidence, None)[0]

    def detect_frame(self, image: npt.NDArray[np.uint8], min_confidence: float,
                     held: WholeImage | None, between: Callable[[], object] | None = None
                     ) -> tuple[tuple[Label, ...], WholeImage]:
        """Labels as :meth:`detect`, with the whole-image classes of ``held`` where given.

        ``held`` None runs the classifier on ``image``; either way the classes used come
        back, for the caller to hold for the frames after this one. ``between`` is called
        after the classifier's run, before the detector's: the label stage lets a waiting
        live frame go first there, so it waits for one model call, not two.
        """
        manifest, found, detector, classifier = self._loaded()
        whole = held
        if whole is None:
            whole = WholeImage(tuple(self._classes(image, manifest, found, classifier)))
            if between is not None:
                between()
        hits = self._boxes(image, manifest, found, detector)
        return merge([*hits, *whole.hits], found, min_confidence), whole

    def _loaded(self) -> tuple[pack.PackManifest, labelmap.LabelMap, OrtRunner, OrtRunner]:
        if (self._manifest is None or self._map is None or self._detector is None
                or self._classifier is None):
            msg = f"label pack {self._folder} is not loaded"
            raise RuntimeError(msg)
        return self._manifest, self._map, self._detector, self._classifier

    @staticmethod
    def _boxes(image: npt.NDArray[np.uint8], manifest: pack.PackManifest,
               found: labelmap.LabelMap, runner: OrtRunner) -> list[Hit]:
        # The graph resizes to its own 300 x 300 anyway; resizing first makes that a no-op
        # and the boxes, as ratios of the input, are ratios of the original image too.
        side = manifest.detector_input
        tensor = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)[None]
        boxes, scores, classes, count = runner.run(np.ascontiguousarray(tensor))
        hits = []
        for k in range(int(count[0])):
            name = found.detector.get(int(classes[0][k]))
            if name is None:
                continue
            top, left, bottom, right = (float(np.clip(v, 0.0, 1.0)) for v in boxes[0][k])
            confidence = float(scores[0][k]) * 100
            box = Box(left=left, top=top, width=right - left, height=bottom - top)
            hits.append(Hit(name, confidence, Instance(box, confidence)))
        return hits

    @staticmethod
    def _classes(image: npt.NDArray[np.uint8], manifest: pack.PackManifest,
                 found: labelmap.LabelMap, runner: OrtRunner) -> list[Hit]:
        side = manifest.classifier_input
        tensor = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)[None]
        (scores,) = runner.run(np.ascontiguousarray(tensor))
        probability = scores[0].astype(np.float64) * manifest.classifier_scale
        # Several classes can be one label (every dog breed is Dog): their probabilities add.
        totals: dict[str, float] = {}
        for index, name in found.classifier.items():
            totals[name] = totals.get(name, 0.0) + float(probability[index])
        return [Hit(name, min(total, 1.0) * 100) for name, total in totals.items() if total > 0]
