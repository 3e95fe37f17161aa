"""GeneralLabels filters: inclusion by name or category first, then exclusion."""

from __future__ import annotations

from streamproc.labels.filters import NO_FILTERS, LabelFilters
from streamproc.labels.types import Label

PERSON = Label("Person", 99.0, categories=("Person Description",))
CAR = Label("Car", 90.0, parents=("Vehicle", "Transportation"),
            categories=("Vehicles and Automotive",))
CUP = Label("Cup", 80.0, categories=("Kitchen and Dining",))
ALL = (PERSON, CAR, CUP)


def test_no_filters_keep_everything_in_order() -> None:
    assert NO_FILTERS.apply(ALL) == ALL


def test_inclusion_by_name_keeps_only_those_named() -> None:
    assert LabelFilters(include=frozenset({"Car", "Cup"})).apply(ALL) == (CAR, CUP)


def test_inclusion_by_category_keeps_labels_in_any_named_category() -> None:
    kept = LabelFilters(include_categories=frozenset({"Kitchen and Dining"})).apply(ALL)
    assert kept == (CUP,)


def test_exclusion_by_name_and_by_category() -> None:
    assert LabelFilters(exclude=frozenset({"Person"})).apply(ALL) == (CAR, CUP)
    by_category = LabelFilters(exclude_categories=frozenset({"Vehicles and Automotive"}))
    assert by_category.apply(ALL) == (PERSON, CUP)


def test_exclusion_wins_over_inclusion() -> None:
    both = LabelFilters(include=frozenset({"Car", "Cup"}), exclude=frozenset({"Cup"}))
    assert both.apply(ALL) == (CAR,)
    mixed = LabelFilters(include_categories=frozenset({"Vehicles and Automotive"}),
                         exclude=frozenset({"Car"}))
    assert mixed.apply(ALL) == ()


def test_a_label_without_categories_fails_a_category_inclusion() -> None:
    bare = Label("Thing", 70.0)
    assert not LabelFilters(include_categories=frozenset({"Person Description"})).keeps(bare)
    assert LabelFilters(exclude_categories=frozenset({"Person Description"})).keeps(bare)
