"""Rekognition's moderation taxonomy, version 7, as data: every label with its parent and level.

Three levels: ten top-level (L1) categories, their L2 labels and some L3 labels under those
(shared/reference/moderation.md, from Amazon's developer guide). A label name is unique in the
whole taxonomy, so a name alone says where it sits. DetectModerationLabels returns each found
label with its ancestors (``ParentName`` chains up to an L1 whose parent is ``""``).
"""

from __future__ import annotations

from types import MappingProxyType

VERSION = "7.0"  # ModerationModelVersion on AWS; packs append their own name

# L1 -> {L2 -> (L3, ...)}: the table of moderation.md, in AWS's order.
_TREE: dict[str, dict[str, tuple[str, ...]]] = {
    "Explicit": {
        "Explicit Nudity": ("Exposed Male Genitalia", "Exposed Female Genitalia",
                            "Exposed Buttocks or Anus", "Exposed Female Nipple"),
        "Explicit Sexual Activity": (),
        "Sex Toys": (),
    },
    "Non-Explicit Nudity of Intimate parts and Kissing": {
        "Non-Explicit Nudity": ("Bare Back", "Exposed Male Nipple", "Partially Exposed Buttocks",
                                "Partially Exposed Female Breast", "Implied Nudity"),
        "Obstructed Intimate Parts": ("Obstructed Female Nipple", "Obstructed Male Genitalia"),
        "Kissing on the Lips": (),
    },
    "Swimwear or Underwear": {
        "Female Swimwear or Underwear": (),
        "Male Swimwear or Underwear": (),
    },
    "Violence": {
        "Weapons": (),
        "Graphic Violence": ("Weapon Violence", "Physical Violence", "Self-Harm",
                             "Blood & Gore", "Explosions and Blasts"),
    },
    "Visually Disturbing": {
        "Death and Emaciation": ("Emaciated Bodies", "Corpses"),
        "Crashes": ("Air Crash",),
    },
    "Drugs & Tobacco": {
        "Products": ("Pills",),
        "Drugs & Tobacco Paraphernalia & Use": ("Smoking",),
    },
    "Alcohol": {
        "Alcohol Use": ("Drinking",),
        "Alcoholic Beverages": (),
    },
    "Rude Gestures": {
        "Middle Finger": (),
    },
    "Gambling": {},
    "Hate Symbols": {
        "Nazi Party": (),
        "White Supremacy": (),
        "Extremist": (),
    },
}


def _flatten() -> dict[str, tuple[str, int]]:
    """Each label's (parent, level), built once from the tree."""
    out: dict[str, tuple[str, int]] = {}
    for l1, children in _TREE.items():
        out[l1] = ("", 1)
        for l2, grandchildren in children.items():
            out[l2] = (l1, 2)
            for l3 in grandchildren:
                out[l3] = (l2, 3)
    return out


_LABELS = MappingProxyType(_flatten())
TOP_LEVEL: tuple[str, ...] = tuple(_TREE)
LABELS: frozenset[str] = frozenset(_LABELS)


def is_label(name: str) -> bool:
    """Whether ``name`` is a label of taxonomy v7 (exact spelling)."""
    return name in _LABELS


def _entry(name: str) -> tuple[str, int]:
    try:
        return _LABELS[name]
    except KeyError:
        msg = f"{name!r} is not a label of moderation taxonomy v{VERSION}"
        raise KeyError(msg) from None


def parent_of(name: str) -> str:
    """The label's parent; ``""`` for a top-level category (``ParentName`` on the wire)."""
    return _entry(name)[0]


def level_of(name: str) -> int:
    """``TaxonomyLevel``: 1 for the ten categories, 2 and 3 below them."""
    return _entry(name)[1]


def ancestors(name: str) -> tuple[str, ...]:
    """The label's ancestors, nearest first, ending at its top-level category."""
    chain: list[str] = []
    parent = parent_of(name)
    while parent:
        chain.append(parent)
        parent = parent_of(parent)
    return tuple(chain)


def children_of(name: str) -> tuple[str, ...]:
    """The labels directly under ``name``, in the taxonomy's order."""
    _entry(name)
    return tuple(label for label, (parent, _) in _LABELS.items() if parent == name)


def with_ancestors(names: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    """The labels and every ancestor of each (what a pack serving ``names`` may emit)."""
    out: set[str] = set()
    for name in names:
        out.add(name)
        out.update(ancestors(name))
    return frozenset(out)


def taxonomy_order(name: str) -> int:
    """Position in the taxonomy's own order (a parent before its children)."""
    _entry(name)
    return list(_LABELS).index(name)
