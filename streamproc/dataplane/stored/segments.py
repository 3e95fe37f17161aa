"""Labels over consecutive sampled frames, as segments: one rule for every SEGMENTS listing.

A job kind's result builder (content moderation, labels) hands each sampled frame's labels,
keyed as its listing keys them, to :meth:`OpenSegments.step`. A label seen on the next frame
extends its segment (the end moves; the segment keeps its highest-confidence frame's
label); one missing from a frame closes it; :meth:`OpenSegments.end` closes the rest when
the video ends. No gap is bridged. The builder renders the closed segments in its own shape.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Confident(Protocol):
    """A label with a confidence (ModerationLabel, Label)."""

    @property
    def confidence(self) -> float:
        """Percent, 0 to 100."""
        ...


L = TypeVar("L", bound=Confident)
K = TypeVar("K", bound=Hashable)


@dataclass
class Segment(Generic[L]):
    """One label over consecutive sampled frames (open while its frames keep coming)."""

    label: L  # its highest-confidence frame's label
    start_ms: int
    end_ms: int  # the last frame that carried it

    @property
    def duration_ms(self) -> int:
        """DurationMillis."""
        return self.end_ms - self.start_ms

    def extend(self, label: L, timestamp_ms: int) -> None:
        """One more frame with the label: the end moves, the confidence keeps its max."""
        self.end_ms = timestamp_ms
        if label.confidence > self.label.confidence:
            self.label = label


class OpenSegments(Generic[K, L]):
    """The segments of one launch still open; a launch's builder owns one (one thread)."""

    def __init__(self) -> None:
        self._open: dict[K, Segment[L]] = {}

    def step(self, timestamp_ms: int, labels: Mapping[K, L]) -> list[Segment[L]]:
        """Take one frame's labels; the segments it closes (those it lacks), in opening order."""
        closed = [self._open.pop(key) for key in [k for k in self._open if k not in labels]]
        for key, label in labels.items():
            segment = self._open.get(key)
            if segment is None:
                self._open[key] = Segment(label, timestamp_ms, timestamp_ms)
            else:
                segment.extend(label, timestamp_ms)
        return closed

    def end(self) -> list[Segment[L]]:
        """The segments still open when the video ended (none is open after)."""
        segments, self._open = list(self._open.values()), {}
        return segments
