"""From model hits to Rekognition labels: one label per name, parents added as labels.

Both models can name the same label (the detector a box of ``Cat``, the classifier the whole
image as a tabby): they become one ``Cat`` at the higher confidence, with the detector's
instances. Every ancestor is then a label of its own, as DetectLabels answers (``Car`` brings
``Vehicle`` and ``Transportation``), at the highest confidence of the children that name it,
and without instances: a parent's box would only repeat its child's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streamproc.labels.labelmap import LabelMap
from streamproc.labels.types import Instance, Label


@dataclass(frozen=True)
class Hit:
    """One model's finding: a label name, its confidence (percent), a box where it has one."""

    name: str
    confidence: float
    instance: Instance | None = None


def merge(hits: Iterable[Hit], labels: LabelMap, min_confidence: float) -> tuple[Label, ...]:
    """Labels at ``min_confidence`` or above, highest confidence first (ties by name)."""
    best: dict[str, float] = {}
    boxes: dict[str, list[Instance]] = {}
    for hit in hits:
        if hit.confidence < min_confidence:
            continue
        best[hit.name] = max(best.get(hit.name, 0.0), hit.confidence)
        if hit.instance is not None:
            boxes.setdefault(hit.name, []).append(hit.instance)
    for name, confidence in list(best.items()):
        for parent in labels.info(name).parents:
            best[parent] = max(best.get(parent, 0.0), confidence)
    out = []
    for name, confidence in best.items():
        info = labels.info(name)
        instances = sorted(boxes.get(name, ()), key=lambda i: -i.confidence)
        out.append(Label(name, confidence, tuple(instances), info.parents, info.aliases,
                         info.categories))
    out.sort(key=lambda label: (-label.confidence, label.name))
    return tuple(out)
