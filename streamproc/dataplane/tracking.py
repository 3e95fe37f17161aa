"""A small IoU tracker for per-track output: one event when a person is first matched
(and when the match changes), instead of a record per frame.

Each track keeps the running mean of its faces' embeddings; searching with that mean is
steadier than single frames, where genuine and stranger scores can overlap.
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
    embedding_sum: np.ndarray
    misses: int = 0
    emitted_face_id: str | None = field(default=None)

    @property
    def embedding(self) -> np.ndarray:
        """Unit-length mean embedding of the track."""
        norm = float(np.linalg.norm(self.embedding_sum))
        return self.embedding_sum / max(norm, 1e-12)


class IouTracker:
    """Greedy IoU association between consecutive analysed frames."""

    def __init__(self, min_iou: float = 0.3, max_misses: int = 5) -> None:
        self._min_iou = min_iou
        self._max_misses = max_misses
        self._tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: list[np.ndarray], embeddings: list[np.ndarray]) -> list[Track]:
        """Assign each face to a track (new or continued); returns tracks in face order."""
        free = set(range(len(self._tracks)))
        assigned: list[Track] = []
        for box, emb in zip(boxes, embeddings):
            best, best_iou = None, self._min_iou
            for i in free:
                score = iou(self._tracks[i].box, box)
                if score >= best_iou:
                    best, best_iou = i, score
            if best is None:
                track = Track(self._next_id, box, emb.astype(np.float64))
                self._next_id += 1
                self._tracks.append(track)
            else:
                free.discard(best)
                track = self._tracks[best]
                track.box, track.misses = box, 0
                track.embedding_sum = track.embedding_sum + emb
            assigned.append(track)
        for i in free:
            self._tracks[i].misses += 1
        self._tracks = [t for t in self._tracks if t.misses <= self._max_misses]
        return assigned
