"""A small IoU tracker.

Frame mode uses it to avoid re-embedding a face that is clearly the same one as a moment
ago (detection still runs on every analysed frame; a tracked face is re-embedded at most
every ``embed_interval_s``). Track mode uses it to emit one event when a person is first
matched (and when the match changes), searching with the running mean of the track's
embeddings, which is steadier than single frames where genuine and stranger scores overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    """One person followed across frames."""

    track_id: int
    box: np.ndarray
    misses: int = 0
    latest: np.ndarray | None = field(default=None, repr=False)
    embedded_at: float | None = None
    embedding_sum: np.ndarray | None = field(default=None, repr=False)
    emitted_face_id: str | None = None

    def needs_embedding(self, now: float, interval: float) -> bool:
        """True if the track has no embedding yet or its latest one is too old."""
        # latest, not embedded_at: a reservation (will_embed) whose batch failed must not
        # leave the track without an embedding until the interval has passed.
        return self.latest is None or self.embedded_at is None or \
            now - self.embedded_at >= interval

    def will_embed(self, now: float) -> None:
        """An embedding taken at ``now`` is on its way: later frames of the same batch wait."""
        self.embedded_at = now

    def observe(self, embedding: np.ndarray, now: float) -> None:
        """Record a fresh embedding of this track's face."""
        self.latest, self.embedded_at = embedding, now
        self.embedding_sum = embedding.astype(np.float64) if self.embedding_sum is None \
            else self.embedding_sum + embedding

    @property
    def mean_embedding(self) -> np.ndarray:
        """Unit-length mean of every embedding observed on the track."""
        assert self.embedding_sum is not None
        norm = float(np.linalg.norm(self.embedding_sum))
        return (self.embedding_sum / max(norm, 1e-12)).astype(np.float32)


class IouTracker:
    """Greedy IoU association between consecutive analysed frames."""

    def __init__(self, min_iou: float = 0.3, max_misses: int = 5) -> None:
        self._min_iou = min_iou
        self._max_misses = max_misses
        self._tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: list[np.ndarray]) -> list[Track]:
        """Assign each box to a track (continued or new); returns tracks in box order."""
        free = set(range(len(self._tracks)))
        assigned: list[Track] = []
        for box in boxes:
            best, best_iou = None, self._min_iou
            for i in free:
                score = iou(self._tracks[i].box, box)
                if score >= best_iou:
                    best, best_iou = i, score
            if best is None:
                track = Track(self._next_id, box)
                self._next_id += 1
                self._tracks.append(track)
            else:
                free.discard(best)
                track = self._tracks[best]
                track.box, track.misses = box, 0
            assigned.append(track)
        for i in free:
            self._tracks[i].misses += 1
        self._tracks = [t for t in self._tracks if t.misses <= self._max_misses]
        return assigned
