"""Runs inside the converter venv (TensorFlow + tf2onnx), never in the daemon's.

``python worker.py SSD_GRAPH CLASSIFIER_TFLITE PROBES.npz OUT_DIR`` converts both source
models to ONNX and records what the *originals* answer on the probe images, so the caller
(:mod:`streamproc.tools.labelpack.verify`, in streamproc's own venv) can check the converted
models against them with the runtime the daemon uses. Only the standard library, NumPy,
TensorFlow and tf2onnx are imported: this file is run as a script, not as part of streamproc.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

SSD_INPUT = "image_tensor:0"
SSD_OUTPUTS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0",
               "num_detections:0")
OPSET = 13


def _ssd(graph_path: Path, probes: np.ndarray, out: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import tf2onnx  # type: ignore[import-untyped, import-not-found, unused-ignore]

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_path.read_bytes())
    reference: dict[str, list[np.ndarray]] = {name: [] for name in SSD_OUTPUTS}
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            for probe in probes:
                values = session.run(list(SSD_OUTPUTS), {SSD_INPUT: probe[None]})
                for name, value in zip(SSD_OUTPUTS, values, strict=True):
                    reference[name].append(value[0])
    tf2onnx.convert.from_graph_def(graph_def, input_names=[SSD_INPUT],
                                   output_names=list(SSD_OUTPUTS), opset=OPSET,
                                   output_path=str(out))
    return {f"ssd/{name}": np.stack(values) for name, values in reference.items()}


def _classifier(tflite_path: Path, probes: np.ndarray, out: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf
    import tf2onnx

    interpreter = tf.lite.Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    (source,) = interpreter.get_input_details()
    (sink,) = interpreter.get_output_details()
    height, width = int(source["shape"][1]), int(source["shape"][2])
    scores = []
    for probe in probes:
        image = tf.image.resize(probe[None], (height, width), method="bilinear")
        batch = np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8)
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        scores.append((batch[0], interpreter.get_tensor(sink["index"])[0]))
    tf2onnx.convert.from_tflite(str(tflite_path), opset=OPSET, output_path=str(out))
    return {"classifier/input": np.stack([s[0] for s in scores]),
            "classifier/scores": np.stack([s[1] for s in scores]),
            "classifier/scale": np.array(sink["quantization"][0], dtype=np.float64)}


def _versions() -> dict[str, Any]:
    import onnx  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import tensorflow as tf
    import tf2onnx

    return {"python": sys.version.split()[0], "numpy": np.__version__,
            "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__, "opset": OPSET}


def main(argv: list[str]) -> int:
    """Convert, record the originals' answers and the tool versions into OUT_DIR."""
    ssd, classifier, probes_file, out_dir = (Path(a) for a in argv)
    probes = np.load(probes_file)["probes"]
    reference = _ssd(ssd, probes, out_dir / "detector.onnx")
    reference.update(_classifier(classifier, probes, out_dir / "classifier.onnx"))
    np.savez(out_dir / "reference.npz", **reference)  # type: ignore[arg-type]
    (out_dir / "tools.json").write_text(json.dumps(_versions(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
