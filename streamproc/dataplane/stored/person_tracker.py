"""The person tracker of person-tracking jobs: one stable track per person across sampled frames.

Each sampled frame's person boxes (ratios of the frame, x1 y1 x2 y2) are matched to the live
tracks in passes, each an optimal assignment (Hungarian, ``scipy``):

1. by IoU against each track's *predicted* box (its last box moved by its velocity for every
   sampled frame since it was last seen), pairs below ``min_iou`` refused. This pass runs as
   DeepSORT's matching cascade: first over the tracks seen on the last frame, then over those
   missed once, twice, ... each on the boxes still free. In one assignment over all tracks a
   lost track's stale box ties with (or beats) a live track's prediction, so someone walking
   past a hidden, still person would take the hidden one's Index;
2. the boxes and tracks left over, by position and size (re-identification after a short
   occlusion, when IoU is 0 because the person moved while hidden): the centre distance in
   units of the track's height, pairs further than ``reid_distance`` or whose heights differ
   by more than ``max_size_ratio`` refused.

A track unmatched for more than ``max_misses`` sampled frames ends; a box left unmatched
starts a track. A track is *confirmed* once it was matched on ``min_hits`` frames, and only
then gets its ``index``, numbered from 0 in the order tracks are confirmed (on one frame, in
the order they started): a single-frame false detection never takes an Index (the results
builder holds a track's rows until then).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# scipy comes with scikit-image (a dependency, which requires it); it ships no type stubs.
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

Boxes = npt.NDArray[np.float64]  # (n, 4): x1, y1, x2, y2 as ratios of the frame
_NEVER = 1e9  # the cost of a refused pair (never chosen below the threshold check)
# One pass of the matching: (boxes, tracks) -> the (box, track) pairs it accepts.
_Pairing = Callable[[Boxes, list["PersonTrack"]], list[tuple[int, int]]]


@dataclass(frozen=True)
class TrackerSettings:
    """How boxes are associated across sampled frames (``jobs.person_tracking``)."""

    min_iou: float = 0.3
    max_misses: int = 5
    min_hits: int = 2
    reid_distance: float = 0.6
    max_size_ratio: float = 1.5


@dataclass
class PersonTrack:
    """One person followed across sampled frames."""

    track_id: int  # in order of creation (tentative tracks included)
    box: npt.NDArray[np.float64]
    velocity: npt.NDArray[np.float64]  # box change per sampled frame (smoothed)
    hits: int = 1
    misses: int = 0
    index: int | None = None  # Person.Index, once confirmed

    def predicted(self) -> npt.NDArray[np.float64]:
        """Where the box should be now, ``misses + 1`` sampled frames after it was seen."""
        return self.box + self.velocity * (self.misses + 1)

    def observe(self, box: npt.NDArray[np.float64]) -> None:
        """Matched again: the box, the smoothed velocity, the hit count."""
        step = (box - self.box) / (self.misses + 1)
        self.velocity = 0.5 * self.velocity + 0.5 * step
        self.box, self.misses, self.hits = box, 0, self.hits + 1


def iou_matrix(a: Boxes, b: Boxes) -> npt.NDArray[np.float64]:
    """IoU of every box of ``a`` with every box of ``b``, shape (len(a), len(b))."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _assign(cost: npt.NDArray[np.float64], limit: float) -> list[tuple[int, int]]:
    """The lowest-cost (row, column) pairs, those costing more than ``limit`` dropped."""
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= limit]


class PersonTracker:
    """Tracks of one launch (state per launch: a builder owns one)."""

    def __init__(self, settings: TrackerSettings) -> None:
        self._s = settings
        self._tracks: list[PersonTrack] = []
        self._next_id = 0
        self._next_index = 0

    def update(self, boxes: Boxes) -> list[PersonTrack]:
        """Match one sampled frame's boxes; returns each box's track, in box order."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        owner: dict[int, PersonTrack] = {}
        free = list(range(len(boxes)))
        for age in sorted({t.misses for t in self._tracks}):  # the most recently seen first
            free = self._match(self._by_iou, boxes, free,
                               [t for t in self._tracks if t.misses == age], owner)
        free = self._match(self._by_position, boxes, free, self._unmatched(owner), owner)
        for track in self._unmatched(owner):
            track.misses += 1
        for i, track in owner.items():
            track.observe(boxes[i])
        self._tracks = [t for t in self._tracks if t.misses <= self._s.max_misses]
        for i in free:
            owner[i] = self._start(boxes[i])
        for track in sorted(owner.values(), key=lambda t: t.track_id):  # first seen, first
            if track.index is None and track.hits >= self._s.min_hits:
                track.index, self._next_index = self._next_index, self._next_index + 1
        return [owner[i] for i in range(len(boxes))]

    def alive(self, track_id: int) -> bool:
        """Whether the track still runs (seen lately enough to be matched again)."""
        return any(t.track_id == track_id for t in self._tracks)

    def _unmatched(self, owner: dict[int, PersonTrack]) -> list[PersonTrack]:
        taken = {t.track_id for t in owner.values()}
        return [t for t in self._tracks if t.track_id not in taken]

    @staticmethod
    def _match(pairs: _Pairing, boxes: Boxes, free: list[int], tracks: list[PersonTrack],
               owner: dict[int, PersonTrack]) -> list[int]:
        """Pair the ``free`` boxes with ``tracks`` into ``owner``; returns the boxes left."""
        matched = pairs(boxes[free], tracks)
        for b, t in matched:
            owner[free[b]] = tracks[t]
        used = {b for b, _ in matched}
        return [i for k, i in enumerate(free) if k not in used]

    def _start(self, box: npt.NDArray[np.float64]) -> PersonTrack:
        track = PersonTrack(self._next_id, box, np.zeros(4))
        self._next_id += 1
        self._tracks.append(track)
        return track

    def _by_iou(self, boxes: Boxes, tracks: list[PersonTrack]) -> list[tuple[int, int]]:
        if not tracks or not len(boxes):
            return []
        overlap = iou_matrix(boxes, np.array([t.predicted() for t in tracks]))
        return _assign(np.where(overlap >= self._s.min_iou, 1.0 - overlap, _NEVER),
                       1.0 - self._s.min_iou)

    def _by_position(self, boxes: Boxes, tracks: list[PersonTrack]) -> list[tuple[int, int]]:
        if not tracks or not len(boxes):
            return []
        predicted = np.array([t.predicted() for t in tracks])
        centres_b = (boxes[:, :2] + boxes[:, 2:]) / 2
        centres_t = (predicted[:, :2] + predicted[:, 2:]) / 2
        heights_b = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
        heights_t = np.maximum(predicted[:, 3] - predicted[:, 1], 1e-6)
        distance = np.linalg.norm(centres_b[:, None] - centres_t[None], axis=2) / heights_t
        ratio = np.maximum(heights_b[:, None] / heights_t, heights_t / heights_b[:, None])
        ok = (distance <= self._s.reid_distance) & (ratio <= self._s.max_size_ratio)
        return _assign(np.where(ok, distance, _NEVER), self._s.reid_distance)
