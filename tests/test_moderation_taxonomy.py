"""Moderation taxonomy v7 as data: its shape, parents, levels and ancestors. No model."""

from __future__ import annotations

import pytest

from streamproc.moderation import taxonomy

L1 = ["Explicit", "Non-Explicit Nudity of Intimate parts and Kissing", "Swimwear or Underwear",
      "Violence", "Visually Disturbing", "Drugs & Tobacco", "Alcohol", "Rude Gestures",
      "Gambling", "Hate Symbols"]


def test_ten_top_level_categories_in_aws_order() -> None:
    assert list(taxonomy.TOP_LEVEL) == L1
    assert all(taxonomy.level_of(name) == 1 and taxonomy.parent_of(name) == "" for name in L1)


def test_every_parent_exists_one_level_up() -> None:
    for name in taxonomy.LABELS:
        parent = taxonomy.parent_of(name)
        if parent:
            assert parent in taxonomy.LABELS
            assert taxonomy.level_of(name) == taxonomy.level_of(parent) + 1
        else:
            assert name in L1


def test_label_counts_per_level() -> None:
    levels = [taxonomy.level_of(name) for name in taxonomy.LABELS]
    assert (levels.count(1), levels.count(2), levels.count(3)) == (10, 20, 22)


@pytest.mark.parametrize(("name", "chain"), [
    ("Exposed Female Nipple", ("Explicit Nudity", "Explicit")),
    ("Exposed Male Nipple", ("Non-Explicit Nudity",
                             "Non-Explicit Nudity of Intimate parts and Kissing")),
    ("Air Crash", ("Crashes", "Visually Disturbing")),
    ("Drinking", ("Alcohol Use", "Alcohol")),
    ("Female Swimwear or Underwear", ("Swimwear or Underwear",)),
    ("Gambling", ()),
])
def test_ancestors_nearest_first(name: str, chain: tuple[str, ...]) -> None:
    assert taxonomy.ancestors(name) == chain
    assert taxonomy.with_ancestors({name}) == frozenset({name, *chain})


def test_children_and_order() -> None:
    assert taxonomy.children_of("Explicit") == (
        "Explicit Nudity", "Explicit Sexual Activity", "Sex Toys")
    assert taxonomy.children_of("Gambling") == ()
    assert taxonomy.taxonomy_order("Explicit") < taxonomy.taxonomy_order("Explicit Nudity")


@pytest.mark.parametrize("name", ["explicit", "Nudity", "Rude Gesture", ""])
def test_unknown_names_are_refused(name: str) -> None:
    assert not taxonomy.is_label(name)
    with pytest.raises(KeyError, match="not a label of moderation taxonomy v7.0"):
        taxonomy.parent_of(name)
