"""What person-tracking jobs make of the person stage's frames: ``Persons`` elements.

Per sampled frame, the pack's person boxes at or above ``min_confidence`` go through the
launch's :class:`~.person_tracker.PersonTracker`; each tracked person becomes one
``{Timestamp, Person{Index, BoundingBox, Face}}`` element, its ``Index`` the track's (stable
across timestamps, from 0 in the order persons are confirmed). ``Face`` is the frame's face
that lies inside the person's box (its centre inside, most of its area inside; a face goes to
at most one person, the one whose box is smallest, as the nearer of two overlapping people is
the one whose face shows), left out when none does.

A track's rows are held until it is confirmed (``min_hits`` frames), then written with its
Index; the rows of a track that ends unconfirmed are dropped. So rows are not written in time
order, not even one timestamp's persons in Index order: the TIMESTAMP listing is read by
timestamp then person index, INDEX by person index then timestamp.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streamproc.dataplane.stored.person_stage import PersonAnalysis
from streamproc.dataplane.stored.person_tracker import PersonTrack, PersonTracker, TrackerSettings
from streamproc.dataplane.stored.stages import Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.faces.types import Face
from streamproc.labels.types import Instance
from streamproc.rekognition.shapes import face_detail

_INSIDE = 0.6  # the share of a face's area that must lie in the person's box


def _ratio_box(instance: Instance) -> np.ndarray:
    b = instance.box
    return np.array([b.left, b.top, b.left + b.width, b.top + b.height], dtype=np.float64)


def _bounding_box(box: np.ndarray) -> dict[str, float]:
    x1, y1, x2, y2 = (float(np.clip(v, 0.0, 1.0)) for v in box)
    return {"Width": round(x2 - x1, 6), "Height": round(y2 - y1, 6),
            "Left": round(x1, 6), "Top": round(y1, 6)}


def faces_of(persons: list[np.ndarray], faces: tuple[Face, ...], width: int, height: int
             ) -> list[Face | None]:
    """Each person's face (ratio boxes in ``persons``; pixel boxes in ``faces``), or None."""
    out: list[Face | None] = [None] * len(persons)
    by_size = sorted(range(len(persons)),
                     key=lambda i: float(np.prod(persons[i][2:] - persons[i][:2])))
    scale = np.array([width, height, width, height], dtype=np.float64)
    for face in faces:
        fx1, fy1, fx2, fy2 = (face.box / scale).tolist()
        cx, cy, area = (fx1 + fx2) / 2, (fy1 + fy2) / 2, max((fx2 - fx1) * (fy2 - fy1), 1e-12)
        for i in by_size:
            x1, y1, x2, y2 = persons[i].tolist()
            inter = max(0.0, min(x2, fx2) - max(x1, fx1)) * max(0.0, min(y2, fy2) - max(y1, fy1))
            if out[i] is None and x1 <= cx <= x2 and y1 <= cy <= y2 \
                    and inter / area >= _INSIDE:
                out[i] = face
                break
    return out


class PersonResults:
    """``Persons`` of one launch: its tracker, and the rows of tracks not yet confirmed."""

    needs_embeddings = False

    def __init__(self, settings: TrackerSettings, min_confidence: float) -> None:
        self._tracker = PersonTracker(settings)
        self._min = min_confidence
        self._held: dict[int, list[tuple[int, dict[str, Any]]]] = {}  # track id -> rows

    def build(self, frame: StoredFrame, analysis: PersonAnalysis) -> list[Result]:
        """The frame's confirmed persons, and the held rows of those confirmed just now."""
        ts = frame.timestamp_ms
        height, width = frame.image.shape[:2]
        boxes = [_ratio_box(p) for p in analysis.persons if p.confidence >= self._min]
        tracks = self._tracker.update(np.array(boxes).reshape(-1, 4))
        out: list[Result] = []
        for box, track, face in zip(boxes, tracks, faces_of(boxes, analysis.faces, width,
                                                            height), strict=True):
            person: dict[str, Any] = {"BoundingBox": _bounding_box(box)}
            if face is not None:
                person["Face"] = face_detail(face, width, height)
            self._held.setdefault(track.track_id, []).append((ts, person))
            if track.index is not None:
                out += self._release(track)
        live = {t.track_id for t in tracks}
        for track_id in [k for k in self._held if k not in live and not self._alive(k)]:
            del self._held[track_id]  # ended unconfirmed: a false detection
        return out

    def _alive(self, track_id: int) -> bool:
        return self._tracker.alive(track_id)

    def _release(self, track: PersonTrack) -> list[Result]:
        index = track.index
        assert index is not None
        rows = self._held.pop(track.track_id, [])
        return [Result(ts, index, {"Timestamp": ts, "Person": {"Index": index, **person}})
                for ts, person in rows]
