"""What content-moderation jobs make of the moderation stage's frames: two listings of rows.

Both are built at once, from the :class:`~streamproc.moderation.types.ModerationAnalysis` of
each sampled frame, and kept apart by the rows' listing (GetContentModeration's
AggregateBy picks one; neither is recomputed when a page is read):

- :data:`TIMESTAMPS`: per sampled frame, one ``{Timestamp, ModerationLabel}`` element per
  label at or above the job's MinConfidence, in the engine's order (top levels first);
- :data:`SEGMENTS`: consecutive sampled frames that carry the same label (same Name and
  ParentName, at or above MinConfidence) make one segment, ``{Timestamp, ModerationLabel,
  StartTimestampMillis, EndTimestampMillis, DurationMillis}``, whose label's Confidence is
  the highest of the segment's frames. A sampled frame without the label ends the segment
  (no gap is bridged: the label was not seen there). ``Timestamp`` and
  ``StartTimestampMillis`` are the first frame's timestamp; ``EndTimestampMillis`` is the
  *last frame's* timestamp, not one sampling period later: it claims only what was seen
  (the label may have gone anywhere before the next sample), it never passes the video's
  end, and a segment means the same at any sampling rate. A label seen on one frame is a
  segment of ``DurationMillis`` 0.

A segment is written when it closes: at the first frame without its label, or at the end
of the launch (:meth:`ModerationResults.end_launch`, for the segments still open). So
segment rows are not written in time order; their listing is read by timestamp (the
segment's start), and every row carries its label's Name for SortBy NAME.
"""

from __future__ import annotations

from streamproc.dataplane.stored.segments import OpenSegments, Segment
from streamproc.dataplane.stored.stages import Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.moderation.types import ModerationAnalysis, ModerationLabel, at_least

TIMESTAMPS = "timestamps"  # the rows' listing: one element per label per sampled frame
SEGMENTS = "segments"  # the rows' listing: one element per segment

LabelKey = tuple[str, str]  # (Name, ParentName): what makes a label "the same" across frames


def _segment_row(segment: Segment[ModerationLabel]) -> Result:
    """A segment's element, in the SEGMENTS listing."""
    return Result(segment.start_ms, None, {
        "Timestamp": segment.start_ms, "ModerationLabel": segment.label.wire(),
        "StartTimestampMillis": segment.start_ms, "EndTimestampMillis": segment.end_ms,
        "DurationMillis": segment.duration_ms}, SEGMENTS, segment.label.name)


def frame_labels(analysis: ModerationAnalysis, min_confidence: float
                 ) -> dict[LabelKey, ModerationLabel]:
    """The frame's labels at or above ``min_confidence``, one per key, in the engine's order.

    A label the engine returned twice (it should not) counts once, at its higher confidence.
    """
    out: dict[LabelKey, ModerationLabel] = {}
    for label in at_least(analysis.labels, min_confidence):
        key = (label.name, label.parent)
        held = out.get(key)
        if held is None or label.confidence > held.confidence:
            out[key] = label
    return out


class ModerationResults:
    """Both listings of one launch; open segments are held until they close."""

    needs_embeddings = False

    def __init__(self, min_confidence: float) -> None:
        self._min = min_confidence
        self._open: OpenSegments[LabelKey, ModerationLabel] = OpenSegments()

    def build(self, frame: StoredFrame, analysis: ModerationAnalysis) -> list[Result]:
        """The frame's TIMESTAMPS rows, and the SEGMENTS rows of the labels it lacks."""
        ts = frame.timestamp_ms
        labels = frame_labels(analysis, self._min)
        out = [Result(ts, None, {"Timestamp": ts, "ModerationLabel": label.wire()},
                      TIMESTAMPS, label.name) for label in labels.values()]
        return out + _closed(self._open.step(ts, labels))

    def end_launch(self) -> list[Result]:
        """The segments still open when the video ended."""
        return _closed(self._open.end())


def _closed(segments: list[Segment[ModerationLabel]]) -> list[Result]:
    """Segments' rows, by start then name (deterministic within one write)."""
    return [_segment_row(s) for s in sorted(segments, key=lambda s: (s.start_ms, s.label.name,
                                                                    s.label.parent))]
