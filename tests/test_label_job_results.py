"""What label jobs make of the label stage's frames: filters, MinConfidence, segments, NAME keys.

Model-free (unit tier): :class:`LabelResults` over hand-made :class:`LabelAnalysis` values.
"""

from __future__ import annotations

import numpy as np
import pytest

from streamproc.dataplane.stored.label_results import (
    SEGMENTS,
    TIMESTAMPS,
    LabelResults,
    name_key,
)
from streamproc.dataplane.stored.label_stage import LabelAnalysis
from streamproc.dataplane.stored.stages import Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.labels.filters import NO_FILTERS, LabelFilters
from streamproc.labels.types import Box, Instance, Label
from streamproc.labels.wire import label_wire

PERSON = Label("Person", 91.23456, (Instance(Box(0.1, 0.2, 0.3, 0.4), 91.2),
                                    Instance(Box(0.5, 0.2, 0.1, 0.4), 40.0)),
               categories=("Person Description",))
CAR = Label("Car", 70.0, (Instance(Box(0.0, 0.5, 0.5, 0.5), 70.0),),
            parents=("Vehicle", "Transportation"), aliases=("Automobile",),
            categories=("Vehicles and Automotive",))
VEHICLE = Label("Vehicle", 70.0, parents=("Transportation",),
                categories=("Vehicles and Automotive",))
TREE = Label("Tree", 30.0, categories=("Plants and Flowers",))


def _frame(ts: int) -> StoredFrame:
    return StoredFrame(np.zeros((4, 4, 3), np.uint8), ts, ts / 1000)


def _build(builder: LabelResults, ts: int, *labels: Label) -> list[Result]:
    return builder.build(_frame(ts), LabelAnalysis(labels))


def _listing(results: list[Result], listing: str) -> list[Result]:
    return [r for r in results if r.listing == listing]


def test_a_label_renders_as_rekognitions_label_structure() -> None:
    assert label_wire(CAR) == {
        "Name": "Car", "Confidence": 70.0,
        "Instances": [{"BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.0, "Top": 0.5},
                       "Confidence": 70.0}],
        "Parents": [{"Name": "Vehicle"}, {"Name": "Transportation"}],
        "Aliases": [{"Name": "Automobile"}], "Categories": [{"Name": "Vehicles and Automotive"}]}
    assert "Instances" not in label_wire(CAR, instances=False)
    assert label_wire(PERSON)["Confidence"] == 91.2346  # four decimals, as the other jobs


def test_min_confidence_drops_labels_and_boxes_below_it() -> None:
    rows = _build(LabelResults(50.0, NO_FILTERS), 0, PERSON, CAR, TREE)
    stamped = _listing(rows, TIMESTAMPS)
    assert [r.item["Label"]["Name"] for r in stamped] == ["Person", "Car"]  # pack's order
    person = stamped[0].item
    assert person["Timestamp"] == 0 and set(person) == {"Timestamp", "Label"}
    assert [i["Confidence"] for i in person["Label"]["Instances"]] == [91.2]  # 40 dropped
    low = _listing(_build(LabelResults(0.0, NO_FILTERS), 0, PERSON, TREE), TIMESTAMPS)
    assert [r.item["Label"]["Name"] for r in low] == ["Person", "Tree"]
    assert len(low[0].item["Label"]["Instances"]) == 2
    edge = _build(LabelResults(70.0, NO_FILTERS), 0, CAR)  # at MinConfidence: kept
    assert [r.item["Label"]["Name"] for r in _listing(edge, TIMESTAMPS)] == ["Car"]


def test_filters_apply_before_min_confidence() -> None:
    only_vehicles = LabelFilters(include_categories=frozenset({"Vehicles and Automotive"}))
    rows = _listing(_build(LabelResults(0.0, only_vehicles), 0, PERSON, CAR, VEHICLE, TREE),
                    TIMESTAMPS)
    assert [r.item["Label"]["Name"] for r in rows] == ["Car", "Vehicle"]
    no_car = LabelFilters(include_categories=frozenset({"Vehicles and Automotive"}),
                          exclude=frozenset({"Car"}))
    rows = _listing(_build(LabelResults(0.0, no_car), 0, PERSON, CAR, VEHICLE), TIMESTAMPS)
    assert [r.item["Label"]["Name"] for r in rows] == ["Vehicle"]


def test_a_name_the_pack_gave_twice_counts_once_at_its_higher_confidence() -> None:
    weak = Label("Person", 60.0)
    rows = _listing(_build(LabelResults(50.0, NO_FILTERS), 0, weak, PERSON), TIMESTAMPS)
    assert [(r.item["Label"]["Name"], r.item["Label"]["Confidence"]) for r in rows] == [
        ("Person", 91.2346)]


def test_segments_are_runs_of_consecutive_frames_with_the_label() -> None:
    builder = LabelResults(50.0, NO_FILTERS)
    person_at = {0: 80.0, 200: 95.0, 400: 85.0, 800: 60.0}  # absent at 600
    written: list[Result] = []
    for ts in (0, 200, 400, 600, 800):
        labels = [Label("Person", person_at[ts], PERSON.instances)] if ts in person_at else []
        if ts in (200, 400):
            labels.append(CAR)
        written += _build(builder, ts, *labels)
    written += builder.end_launch()
    segments = _listing(written, SEGMENTS)
    got = [(s.item["Label"]["Name"], s.item["StartTimestampMillis"],
            s.item["EndTimestampMillis"], s.item["DurationMillis"],
            s.item["Label"]["Confidence"]) for s in segments]
    # Written when they close: Person 0-400 and Car 200-400 at 600, the last Person at the end.
    assert got == [("Person", 0, 400, 400, 95.0), ("Car", 200, 400, 200, 70.0),
                   ("Person", 800, 800, 0, 60.0)]
    for s in segments:
        assert s.item["Timestamp"] == s.item["StartTimestampMillis"] == s.timestamp_ms
        assert "Instances" not in s.item["Label"]  # AWS: no instance data per segment
        assert s.name == name_key(s.item["Label"]["Name"], s.item["Label"]["Confidence"])
    assert builder.end_launch() == []  # nothing held twice


def test_the_name_key_groups_names_alphabetically_then_confidence_highest_first() -> None:
    keys = [("Car Wash", 99.0), ("Car", 50.0), ("Car", 99.5), ("Cat", 10.0), ("Car", 0.0),
            ("Car", 100.0), ("Caravan", 80.0)]
    ordered = sorted(keys, key=lambda k: name_key(*k))
    assert ordered == [("Car", 100.0), ("Car", 99.5), ("Car", 50.0), ("Car", 0.0),
                       ("Car Wash", 99.0), ("Caravan", 80.0), ("Cat", 10.0)]
    assert name_key("Car", 12.34564) == name_key("Car", 12.3456)  # the shown confidence


@pytest.mark.parametrize("confidence", [0.0, 0.00004, 50.0, 99.99996, 100.0])
def test_name_keys_have_a_fixed_width(confidence: float) -> None:
    assert len(name_key("X", confidence)) == len("X\t") + 7
