"""Check the converted ONNX models against what the originals answered on the same images.

The originals ran in the converter venv (TensorFlow, TFLite); here the converted files run
in onnxruntime, as the daemon runs them. Tolerances hold a margin over what was measured
(SSD boxes within 9.5e-7, scores within 5e-5; the int8 classifier within 7-8 quantisation steps
of 1/256, same top-1): a real conversion fault moves answers far more than that.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

BOX_TOLERANCE = 1e-5
SCORE_TOLERANCE = 1e-4
CLASSIFIER_STEPS = 10  # of the output's quantisation step


class VerifyError(Exception):
    """A converted model that does not answer as its original (the message says how)."""


def probes() -> npt.NDArray[np.uint8]:
    """Probe images: scikit-image's samples (people, animals, objects) and seeded noise."""
    from skimage import data

    # scikit-image ships no types: its sample loaders are untyped calls.
    images = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]  # type: ignore[no-untyped-call]
    noise = np.random.default_rng(26).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    resized = [cv2.resize(i, (320, 320), interpolation=cv2.INTER_AREA) for i in images]
    return np.stack([*resized, noise])


def _session(path: Path) -> object:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def verify(folder: Path, images: npt.NDArray[np.uint8], reference: Path) -> dict[str, float]:
    """The worst differences found; raises :class:`VerifyError` beyond the tolerances."""
    ref = np.load(reference)
    detector = _session(folder / "detector.onnx")
    worst = {"detector_box": 0.0, "detector_score": 0.0, "classifier_steps": 0.0}
    for k, image in enumerate(images):
        boxes, scores, classes, count = detector.run(  # type: ignore[attr-defined]
            None, {"image_tensor:0": image[None]})
        n = int(count[0])
        if n != int(ref["ssd/num_detections:0"][k]) or not np.array_equal(
                classes[0][:n], ref["ssd/detection_classes:0"][k][:n]):
            msg = f"detector: probe {k} finds other objects than the original"
            raise VerifyError(msg)
        worst["detector_box"] = max(worst["detector_box"], float(
            np.abs(boxes[0][:n] - ref["ssd/detection_boxes:0"][k][:n]).max(initial=0)))
        worst["detector_score"] = max(worst["detector_score"], float(
            np.abs(scores[0][:n] - ref["ssd/detection_scores:0"][k][:n]).max(initial=0)))
    classifier = _session(folder / "classifier.onnx")
    name = classifier.get_inputs()[0].name  # type: ignore[attr-defined]
    for k, batch in enumerate(ref["classifier/input"]):
        (out,) = classifier.run(None, {name: batch[None]})  # type: ignore[attr-defined]
        got, want = out[0].astype(int), ref["classifier/scores"][k].astype(int)
        if got.argmax() != want.argmax():
            msg = f"classifier: probe {k} has top-1 {got.argmax()}, the original {want.argmax()}"
            raise VerifyError(msg)
        worst["classifier_steps"] = max(worst["classifier_steps"], float(np.abs(got - want).max()))
    if worst["detector_box"] > BOX_TOLERANCE or worst["detector_score"] > SCORE_TOLERANCE:
        msg = f"detector answers differ from the original's: {worst}"
        raise VerifyError(msg)
    if worst["classifier_steps"] > CLASSIFIER_STEPS:
        msg = f"classifier answers differ from the original's: {worst}"
        raise VerifyError(msg)
    return worst
