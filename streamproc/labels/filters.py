"""GeneralLabels settings: which labels a caller keeps, by name or by category.

One owner for the rule, used by DetectLabels and by the label job alike. Rekognition
applies inclusion filters first (only the names or categories listed), then exclusion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamproc.labels.types import Label


@dataclass(frozen=True)
class LabelFilters:
    """GeneralLabelsSettings, parsed. An empty inclusion list includes every label."""

    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()

    def keeps(self, label: Label) -> bool:
        """Whether ``label`` survives these filters."""
        categories = set(label.categories)
        if self.include and label.name not in self.include:
            return False
        if self.include_categories and not categories & self.include_categories:
            return False
        if label.name in self.exclude:
            return False
        return not categories & self.exclude_categories

    def apply(self, labels: tuple[Label, ...]) -> tuple[Label, ...]:
        """The labels these filters keep, in their order."""
        return tuple(label for label in labels if self.keeps(label))


NO_FILTERS = LabelFilters()

# GeneralLabelsSettings' members (the wire's and the stored form's names), with the field each
# fills.
_KEYS = (("LabelInclusionFilters", "include"), ("LabelExclusionFilters", "exclude"),
         ("LabelCategoryInclusionFilters", "include_categories"),
         ("LabelCategoryExclusionFilters", "exclude_categories"))


def filters_from(general: Mapping[str, Any] | None) -> LabelFilters:
    """GeneralLabelsSettings (the wire's or the stored form: the same names) as filters."""
    general = general or {}
    return LabelFilters(**{attr: frozenset(general.get(key) or ()) for key, attr in _KEYS})


def filters_stored(filters: LabelFilters) -> dict[str, list[str]]:
    """GeneralLabels in the stored form: each non-empty list, sorted (order means nothing)."""
    return {key: sorted(getattr(filters, attr)) for key, attr in _KEYS if getattr(filters, attr)}
