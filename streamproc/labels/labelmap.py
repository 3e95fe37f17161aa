"""The label map: model class -> Rekognition label, with its parents, aliases, categories.

Made once by the converter from :mod:`streamproc.labels.taxonomy` and the classifier's class
list, written into the pack as ``labelmap.json``, and read back from there at load: the pack
carries the map its models were verified with. :func:`check` holds the rules a map must keep
(every parent is a label, a parent's parents are its child's too, every class names a label).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from streamproc.labels.taxonomy import COCO, IMAGENET, IMAGENET_DOGS, LABELS

FORMAT = 1


class LabelMapError(ValueError):
    """A label map that breaks a rule (the message says which)."""


@dataclass(frozen=True)
class LabelInfo:
    """What the map says about one label name."""

    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelMap:
    """Label names and the two models' classes that are those labels."""

    labels: dict[str, LabelInfo]
    detector: dict[int, str]  # SSD class id -> label
    classifier: dict[int, str]  # classifier output index -> label

    def info(self, name: str) -> LabelInfo:
        """The entry of ``name`` (a label of this map)."""
        return self.labels[name]

    def to_json(self) -> dict[str, Any]:
        """The ``labelmap.json`` document."""
        return {"format": FORMAT,
                "labels": {name: {"parents": list(i.parents), "aliases": list(i.aliases),
                                  "categories": list(i.categories)}
                           for name, i in self.labels.items()},
                "detector": {str(k): v for k, v in sorted(self.detector.items())},
                "classifier": {str(k): v for k, v in sorted(self.classifier.items())}}


def from_json(doc: dict[str, Any]) -> LabelMap:
    """A map read from ``labelmap.json``, checked."""
    if not isinstance(doc, dict):
        msg = "labelmap.json is not a JSON object"
        raise LabelMapError(msg)
    if doc.get("format") != FORMAT:
        msg = f"labelmap.json has format {doc.get('format')!r}; this streamproc reads {FORMAT}"
        raise LabelMapError(msg)
    try:
        labels = {name: LabelInfo(tuple(e["parents"]), tuple(e["aliases"]),
                                  tuple(e["categories"]))
                  for name, e in doc["labels"].items()}
        found = LabelMap(labels, {int(k): v for k, v in doc["detector"].items()},
                         {int(k): v for k, v in doc["classifier"].items()})
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A map of another shape (another streamproc's, or edited): one error, not a traceback.
        msg = f"labelmap.json is not a label map of this shape ({type(exc).__name__}: {exc})"
        raise LabelMapError(msg) from None
    check(found)
    return found


def load(text: str) -> LabelMap:
    """:func:`from_json` of a file's text."""
    return from_json(json.loads(text))


def build(classifier_classes: list[str]) -> LabelMap:
    """The map for a classifier whose outputs are ``classifier_classes`` (ImageNet's names).

    Each class is matched by its first synonym; a taxonomy name the list lacks is an error,
    so a different class list cannot silently map nothing.
    """
    first = [name.split(",")[0].strip() for name in classifier_classes]
    index = {name: i for i, name in enumerate(first)}
    classifier: dict[int, str] = {}
    for name, label in IMAGENET.items():
        if name not in index:
            msg = f"the classifier's class list has no {name!r}"
            raise LabelMapError(msg)
        classifier[index[name]] = label
    low, high, low_name, high_name = IMAGENET_DOGS
    if first[low:low + 1] != [low_name] or first[high:high + 1] != [high_name]:
        msg = f"the classifier's dog breeds are not classes {low}-{high}"
        raise LabelMapError(msg)
    classifier.update(dict.fromkeys(range(low, high + 1), "Dog"))
    labels = {name: LabelInfo(*entry) for name, entry in LABELS.items()}
    found = LabelMap(labels, dict(COCO), classifier)
    check(found)
    return found


def taxonomy_digest() -> str:
    """SHA-256 of everything :func:`build` makes a map from (and of the map's format).

    The converter records it in the manifest; a pack whose digest is not this streamproc's
    was made from another taxonomy, so its labels are not the ones this version answers.
    """
    doc = {"format": FORMAT, "labels": {k: list(map(list, v)) for k, v in LABELS.items()},
           "coco": {str(k): v for k, v in COCO.items()}, "imagenet": dict(IMAGENET),
           "dogs": list(IMAGENET_DOGS)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def differs_from_taxonomy(found: LabelMap) -> str | None:
    """Why ``found`` is not a map of this taxonomy (labels, detector classes), else None."""
    labels = {name: LabelInfo(*entry) for name, entry in LABELS.items()}
    if found.labels != labels:
        changed = {name for name, _ in set(found.labels.items()) ^ set(labels.items())}
        return f"labels differ: {', '.join(sorted(changed)[:5])}"
    if found.detector != dict(COCO):
        return "detector classes differ"
    if set(found.classifier.values()) != {*IMAGENET.values(), "Dog"}:
        return "classifier labels differ"
    return None


def check(found: LabelMap) -> None:
    """Raise :class:`LabelMapError` unless the map keeps its rules."""
    for name, info in found.labels.items():
        for parent in info.parents:
            if parent not in found.labels:
                msg = f"{name}: parent {parent!r} is not a label"
                raise LabelMapError(msg)
            if missing := set(found.labels[parent].parents) - set(info.parents):
                msg = f"{name}: lacks its parent {parent}'s parents {sorted(missing)}"
                raise LabelMapError(msg)
        if name in info.parents:
            msg = f"{name} is its own parent"
            raise LabelMapError(msg)
    for kind, classes in (("detector", found.detector), ("classifier", found.classifier)):
        for key, name in classes.items():
            if name not in found.labels:
                msg = f"{kind} class {key} maps to {name!r}, which is not a label"
                raise LabelMapError(msg)
