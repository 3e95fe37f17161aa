"""Content-moderation results (no models): the TIMESTAMPS and SEGMENTS listings a launch builds.

:class:`~streamproc.dataplane.stored.moderation_results.ModerationResults` turns each sampled
frame's :class:`~streamproc.moderation.types.ModerationAnalysis` into rows. The property
tests check the builder against a plain restatement of the documented rules: a TIMESTAMPS
row per label at or above MinConfidence per frame; a SEGMENTS row per maximal run of
consecutive sampled frames carrying a label, written when the run closes (at the first frame
without it, or at the end of the launch), with the run's highest confidence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.dataplane.stored.moderation_results import (
    SEGMENTS,
    TIMESTAMPS,
    ModerationResults,
    frame_labels,
)
from streamproc.dataplane.stored.stages import EndsLaunch, Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel

_PIXELS = np.zeros((2, 2, 3), np.uint8)
# (Name, ParentName, TaxonomyLevel): a small pool, with a parent and child and a name that
# sorts before the others.
_POOL = (("Explicit", "", 1), ("Explicit Nudity", "Explicit", 2), ("Gambling", "", 1),
         ("Alcohol", "", 1))


def _frame(ts: int) -> StoredFrame:
    return StoredFrame(_PIXELS, ts, ts / 1000)


def _label(index: int, confidence: float) -> ModerationLabel:
    name, parent, level = _POOL[index]
    return ModerationLabel(name, parent, level, confidence)


@dataclass
class Built:
    """What a launch of frames gave: rows per frame (index) and at the end."""

    per_frame: list[list[Result]]
    at_end: list[Result]

    def rows(self, listing: str) -> list[Result]:
        return [r for rows in [*self.per_frame, self.at_end] for r in rows
                if r.listing == listing]


def _run(frames: list[tuple[int, list[ModerationLabel]]], min_confidence: float) -> Built:
    builder = ModerationResults(min_confidence)
    per_frame = [builder.build(_frame(ts), ModerationAnalysis(tuple(labels)))
                 for ts, labels in frames]
    return Built(per_frame, builder.end_launch())


_confidence = st.floats(0.0, 100.0, allow_nan=False).map(lambda c: round(c, 2))
_labels = st.lists(st.tuples(st.integers(0, len(_POOL) - 1), _confidence), max_size=5)
_frames = st.lists(_labels, max_size=12).flatmap(lambda labels: st.tuples(
    st.just(labels), st.lists(st.integers(1, 500), min_size=len(labels),
                              max_size=len(labels))))


def _timed(drawn: tuple[list[list[tuple[int, float]]], list[int]]
           ) -> list[tuple[int, list[ModerationLabel]]]:
    """Frames at strictly increasing timestamps (gaps drawn), labels built from the pool."""
    labels, gaps = drawn
    out, ts = [], 0
    for frame, gap in zip(labels, gaps, strict=True):
        out.append((ts, [_label(i, c) for i, c in frame]))
        ts += gap
    return out


def _kept(labels: list[ModerationLabel], min_confidence: float
          ) -> dict[tuple[str, str], ModerationLabel]:
    """The rule restated: labels at or above the minimum, a repeated one at its highest."""
    out: dict[tuple[str, str], ModerationLabel] = {}
    for label in labels:
        if label.confidence < min_confidence:
            continue
        key = (label.name, label.parent)
        if key not in out or label.confidence > out[key].confidence:
            out[key] = label
    return out


@settings(max_examples=300, deadline=None)
@given(_frames, st.sampled_from([0.0, 30.0, 50.0, 99.0]))
def test_timestamps_rows_are_each_frames_labels_at_or_above_min_confidence(
        drawn: tuple[list[list[tuple[int, float]]], list[int]], min_confidence: float) -> None:
    frames = _timed(drawn)
    built = _run(frames, min_confidence)
    for (ts, labels), rows in zip(frames, built.per_frame, strict=True):
        mine = [r for r in rows if r.listing == TIMESTAMPS]
        kept = _kept(labels, min_confidence)
        assert [r.item for r in mine] == [{"Timestamp": ts, "ModerationLabel": label.wire()}
                                          for label in kept.values()]
        assert all((r.timestamp_ms, r.person, r.name) == (ts, None, r.item[
            "ModerationLabel"]["Name"]) for r in mine)
    assert not [r for r in built.at_end if r.listing == TIMESTAMPS]


def _start_and_name(item: dict[str, Any]) -> tuple[int, str]:
    return item["StartTimestampMillis"], item["ModerationLabel"]["Name"]


@settings(max_examples=300, deadline=None)
@given(_frames, st.sampled_from([0.0, 30.0, 50.0, 99.0]))
def test_segments_are_the_maximal_runs_of_each_label_closed_when_they_end(
        drawn: tuple[list[list[tuple[int, float]]], list[int]], min_confidence: float) -> None:
    frames = _timed(drawn)
    built = _run(frames, min_confidence)
    # The rule restated: per label, runs of consecutive frame indices that carry it.
    present: dict[tuple[str, str], list[int]] = defaultdict(list)
    best: dict[tuple[str, str, int], ModerationLabel] = {}
    for index, (_, labels) in enumerate(frames):
        for key, label in _kept(labels, min_confidence).items():
            present[key].append(index)
            best[(*key, index)] = label
    expected: dict[int, list[dict[str, Any]]] = defaultdict(list)  # closing frame -> rows
    for key, indices in present.items():
        runs: list[list[int]] = []
        for i in indices:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            start, end = frames[run[0]][0], frames[run[-1]][0]
            top = max((best[(*key, i)] for i in run), key=lambda label: label.confidence)
            expected[run[-1] + 1].append({
                "Timestamp": start, "ModerationLabel": top.wire(),
                "StartTimestampMillis": start, "EndTimestampMillis": end,
                "DurationMillis": end - start})
    for index, rows in enumerate([*built.per_frame, built.at_end]):
        got = [r.item for r in rows if r.listing == SEGMENTS]
        assert got == sorted(expected.get(index, []), key=_start_and_name)
    for row in built.rows(SEGMENTS):
        item = row.item
        assert item["StartTimestampMillis"] <= item["EndTimestampMillis"]
        assert item["DurationMillis"] == item["EndTimestampMillis"] - item["StartTimestampMillis"]
        assert (row.timestamp_ms, row.person, row.name) == (
            item["StartTimestampMillis"], None, item["ModerationLabel"]["Name"])
    # Every frame-label pair kept is in exactly one segment.
    covered = sum(len(v) for v in present.values())
    assert sum(1 for _ in built.rows(TIMESTAMPS)) == covered


def test_a_label_seen_once_is_a_segment_of_zero_duration_and_a_gap_splits_segments() -> None:
    explicit, gambling = 0, 2
    built = _run([(0, [_label(explicit, 60.0)]),
                  (200, [_label(explicit, 80.0), _label(gambling, 55.0)]),
                  (400, [_label(gambling, 70.0)]),
                  (600, [_label(explicit, 40.0)]),  # below 50: the frame lacks it
                  (800, [_label(explicit, 51.0)])], 50.0)
    segments = [(r.item["ModerationLabel"]["Name"], r.item["StartTimestampMillis"],
                 r.item["EndTimestampMillis"], r.item["DurationMillis"],
                 r.item["ModerationLabel"]["Confidence"]) for r in built.rows(SEGMENTS)]
    assert segments == [("Explicit", 0, 200, 200, 80.0),  # closed at 400, max confidence
                        ("Gambling", 200, 400, 200, 70.0),  # closed at 600
                        ("Explicit", 800, 800, 0, 51.0)]  # open at the end: flushed
    assert [len([r for r in rows if r.listing == SEGMENTS]) for rows in built.per_frame] == [
        0, 0, 1, 1, 0]
    assert [r.item["ModerationLabel"]["Name"] for r in built.at_end] == ["Explicit"]
    assert set(built.rows(SEGMENTS)[0].item) == {  # no ContentTypes
        "Timestamp", "ModerationLabel", "StartTimestampMillis", "EndTimestampMillis",
        "DurationMillis"}
    assert set(built.rows(TIMESTAMPS)[0].item) == {"Timestamp", "ModerationLabel"}


def test_end_launch_flushes_once_and_a_builder_is_an_end_hook() -> None:
    builder = ModerationResults(0.0)
    assert isinstance(builder, EndsLaunch) and builder.needs_embeddings is False
    builder.build(_frame(0), ModerationAnalysis((_label(0, 10.0),)))
    assert len(builder.end_launch()) == 1
    assert builder.end_launch() == []  # nothing held twice


def test_same_name_under_another_parent_is_another_label() -> None:
    a = ModerationLabel("X", "P", 2, 60.0)
    b = ModerationLabel("X", "Q", 2, 70.0)
    kept = frame_labels(ModerationAnalysis((a, b, ModerationLabel("X", "P", 2, 65.0))), 50.0)
    assert kept == {("X", "P"): ModerationLabel("X", "P", 2, 65.0), ("X", "Q"): b}


@pytest.mark.parametrize("min_confidence", [50.0, 50.0001])
def test_min_confidence_is_inclusive(min_confidence: float) -> None:
    built = _run([(0, [_label(0, 50.0)])], min_confidence)
    assert len(built.rows(TIMESTAMPS)) == (1 if min_confidence == 50.0 else 0)
    assert len(built.rows(SEGMENTS)) == len(built.rows(TIMESTAMPS))
