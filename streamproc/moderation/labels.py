"""A pack's label map: model scores -> calibrated taxonomy labels with their ancestors.

Each served label has one rule: the best score among some outputs of one model, through the
rule's monotonic knots. A label is emitted when its model produced any of those outputs (an
image classifier always does; a detector only where it kept a box). Every emitted label brings
its ancestors, each with the larger of its own evidence and its children's confidence, so a
parent is never less confident than a child. Nothing outside the map and those ancestors can
be emitted: that set is the pack's ``served`` labels.
"""

from __future__ import annotations

from collections.abc import Mapping

from streamproc.config.moderation import ModerationPackConfig
from streamproc.faces.confidence import ConfidenceScale
from streamproc.moderation import taxonomy
from streamproc.moderation.types import ModerationLabel

Scores = Mapping[str, float]


class LabelMap:
    """Turns each model's scores for one image into that image's labels."""

    def __init__(self, name: str, pack: ModerationPackConfig) -> None:
        unknown = sorted(label for label in pack.labels if not taxonomy.is_label(label))
        if unknown:
            msg = (f"moderation pack {name!r}: {unknown} not labels of taxonomy "
                   f"v{taxonomy.VERSION}")
            raise ValueError(msg)
        self._rules = [(label, rule.model, tuple(rule.outputs), ConfidenceScale(rule.calibration))
                       for label, rule in pack.labels.items()]
        self.served = served(set(pack.labels))

    def labels(self, scores: Mapping[str, Scores]) -> tuple[ModerationLabel, ...]:
        """``scores``: model name -> that model's scores for the image."""
        found: dict[str, float] = {}
        for label, model, outputs, scale in self._rules:
            given = [scores[model][out] for out in outputs if out in scores.get(model, {})]
            if given:
                found[label] = scale.confidence(max(given))
        return with_ancestors(found)


def with_ancestors(found: Mapping[str, float]) -> tuple[ModerationLabel, ...]:
    """Labels -> their own evidence, as labels with every ancestor, in the engine's order.

    An ancestor's confidence is the larger of its own evidence and its children's: the one
    rule for the pack's label map and for an adapter's labels (:mod:`.adapter`).
    """
    out = dict(found)
    for label, confidence in found.items():
        for parent in taxonomy.ancestors(label):
            out[parent] = max(out.get(parent, 0.0), confidence)
    return tuple(ModerationLabel(name=name, parent=taxonomy.parent_of(name),
                                 level=taxonomy.level_of(name), confidence=out[name])
                 for name in sorted(out, key=_order))


def served(labels: set[str]) -> tuple[str, ...]:
    """What a model emitting ``labels`` may return: those and their ancestors, in order."""
    return tuple(sorted(taxonomy.with_ancestors(labels), key=_order))


def _order(name: str) -> tuple[int, int]:
    """Top levels first, then the taxonomy's own order."""
    return (taxonomy.level_of(name), taxonomy.taxonomy_order(name))
