"""What label jobs make of the label stage's frames: two listings of ``LabelDetection`` rows.

Both are built at once from each sampled frame's :class:`~.label_stage.LabelAnalysis`, after
the job's GeneralLabels filters (:class:`~streamproc.labels.filters.LabelFilters`) and its
MinConfidence, and kept apart by the rows' listing (GetLabelDetection's AggregateBy picks
one; neither is recomputed when a page is read):

- :data:`TIMESTAMPS`: per sampled frame, one ``{Timestamp, Label}`` element per label, in
  the pack's order (confidence, highest first), with its Instances at or above MinConfidence;
- :data:`SEGMENTS`: consecutive sampled frames that carry the same label Name make one
  segment, ``{Timestamp, Label, StartTimestampMillis, EndTimestampMillis, DurationMillis}``,
  its Label's Confidence the highest of its frames and no Instances (AWS: "If aggregating by
  SEGMENTS, information about detected instances isn't returned"). As for content
  moderation, a sampled frame without the label ends the segment, ``Timestamp`` is its start
  and ``EndTimestampMillis`` its *last frame's* timestamp (a label seen once: Duration 0).

Every row carries a NAME sort key (:func:`name_key`): the label's Name, then its Confidence,
highest first, as GetLabelDetection's SortBy NAME orders ("Within each label group, the
array element are sorted by detection confidence"), then time.
"""

from __future__ import annotations

from streamproc.dataplane.stored.label_stage import LabelAnalysis
from streamproc.dataplane.stored.segments import OpenSegments, Segment
from streamproc.dataplane.stored.stages import Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.labels.filters import LabelFilters
from streamproc.labels.types import Label
from streamproc.labels.wire import label_wire

TIMESTAMPS = "timestamps"  # the rows' listing: one element per label per sampled frame
SEGMENTS = "segments"  # the rows' listing: one element per segment
_SCALE = 10_000  # confidences are shown to 4 decimals; the sort key uses the same


def name_key(name: str, confidence: float) -> str:
    """The NAME order's key: Name, then Confidence descending (fixed-width digits).

    A tab sorts before every character a label name holds, so "Car" keeps its rows together
    before "Car Wash"'s; rows of one name and confidence stay in time order.
    """
    inverted = 100 * _SCALE - round(confidence * _SCALE)
    return f"{name}\t{inverted:07d}"


def kept(analysis: LabelAnalysis, filters: LabelFilters, min_confidence: float
         ) -> tuple[Label, ...]:
    """The frame's labels a job keeps: filtered, at MinConfidence, their Instances too.

    The stage asked the pack for everything at its floor; a box below MinConfidence is
    dropped as the pack would drop it had it been asked at MinConfidence. A name the pack
    returned twice (it should not) counts once, at its higher confidence.
    """
    out: dict[str, Label] = {}
    for label in filters.apply(analysis.labels):
        if label.confidence < min_confidence:
            continue
        held = out.get(label.name)
        if held is None or label.confidence > held.confidence:
            boxes = tuple(i for i in label.instances if i.confidence >= min_confidence)
            out[label.name] = Label(label.name, label.confidence, boxes, label.parents,
                                    label.aliases, label.categories)
    return tuple(out.values())


def _segment_row(segment: Segment[Label]) -> Result:
    """A segment's element, in the SEGMENTS listing (no Instances, as AWS documents)."""
    label = segment.label
    return Result(segment.start_ms, None, {
        "Timestamp": segment.start_ms, "Label": label_wire(label, instances=False),
        "StartTimestampMillis": segment.start_ms, "EndTimestampMillis": segment.end_ms,
        "DurationMillis": segment.duration_ms}, SEGMENTS, name_key(label.name, label.confidence))


class LabelResults:
    """Both listings of one launch; open segments are held until they close."""

    needs_embeddings = False

    def __init__(self, min_confidence: float, filters: LabelFilters) -> None:
        self._min = min_confidence
        self._filters = filters
        self._open: OpenSegments[str, Label] = OpenSegments()

    def build(self, frame: StoredFrame, analysis: LabelAnalysis) -> list[Result]:
        """The frame's TIMESTAMPS rows, and the SEGMENTS rows of the labels it lacks."""
        ts = frame.timestamp_ms
        labels = {label.name: label for label in kept(analysis, self._filters, self._min)}
        out = [Result(ts, None, {"Timestamp": ts, "Label": label_wire(label)}, TIMESTAMPS,
                      name_key(label.name, label.confidence)) for label in labels.values()]
        return out + _closed(self._open.step(ts, labels))

    def end_launch(self) -> list[Result]:
        """The segments still open when the video ended."""
        return _closed(self._open.end())


def _closed(segments: list[Segment[Label]]) -> list[Result]:
    """Segments' rows, by start then name (deterministic within one write)."""
    return [_segment_row(s) for s in sorted(segments, key=lambda s: (s.start_ms, s.label.name))]
