"""The ``Label`` structure as Rekognition writes it: one owner, for DetectLabels and the job.

It sits with the labels (below the API and the data plane) because both the API's
DetectLabels handler and the label job's result builder render it.
"""

from __future__ import annotations

from typing import Any

from streamproc.labels.types import Box, Label


def _box(box: Box) -> dict[str, float]:
    return {"Width": round(box.width, 6), "Height": round(box.height, 6),
            "Left": round(box.left, 6), "Top": round(box.top, 6)}


def label_wire(label: Label, instances: bool = True) -> dict[str, Any]:
    """The ``Label`` structure; its Instances left out where ``instances`` is False.

    Confidences to four decimals, boxes to six, as the other operations round them.
    """
    out: dict[str, Any] = {"Name": label.name, "Confidence": round(label.confidence, 4)}
    if instances:
        out["Instances"] = [{"BoundingBox": _box(i.box), "Confidence": round(i.confidence, 4)}
                            for i in label.instances]
    out["Parents"] = [{"Name": p} for p in label.parents]
    out["Aliases"] = [{"Name": a} for a in label.aliases]
    out["Categories"] = [{"Name": c} for c in label.categories]
    return out
