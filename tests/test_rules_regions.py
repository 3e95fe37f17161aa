"""Which faces a region of interest keeps, and how a session reports to its owner.

Synthetic faces on a 400x200 frame (not square, so X/Y or width/height mix-ups show).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from streamproc.dataplane.live.session import (
    EndKind,
    Output,
    Session,
    SessionEnd,
    SessionPlan,
)
from streamproc.dataplane.regions import (
    Box,
    Point,
    Region,
    in_regions,
    regions_from_wire,
    regions_to_wire,
)
from streamproc.faces.types import Face
from streamproc.ledger import encode
from streamproc.metrics import ProcessorMetrics
from streamproc.processors.commands import UpdateProcessor
from streamproc.processors.spec import ProcessorSpec
from streamproc.storage.collections import CollectionInfo

W, H = 400, 200


def face_at(cx: float, cy: float, half: float = 5.0) -> Face:
    """A face whose box is centred on pixel (cx, cy)."""
    return Face(box=np.array([cx - half, cy - half, cx + half, cy + half]), score=0.9,
                landmarks=np.zeros((5, 2)))


def box(left: float, top: float, width: float, height: float) -> dict[str, Any]:
    return {"BoundingBox": {"Left": left, "Top": top, "Width": width, "Height": height}}


def polygon(*points: tuple[float, float]) -> dict[str, Any]:
    return {"Polygon": [{"X": x, "Y": y} for x, y in points]}


def keeps(cx: float, cy: float, *regions: dict[str, Any]) -> bool:
    """Whether the regions, parsed from their JSON as the API and the store do, keep it."""
    return in_regions(face_at(cx, cy), regions_from_wire(regions), W, H)


def test_no_regions_keep_every_face() -> None:
    assert keeps(1, 1) and keeps(399, 199)
    assert in_regions(face_at(1, 1), [], W, H)


def test_a_box_keeps_faces_whose_centre_is_inside_edges_included() -> None:
    region = box(0.25, 0.5, 0.5, 0.25)  # x 100..300, y 100..150
    assert keeps(200, 125, region)
    for cx, cy in ((100, 125), (300, 125), (200, 100), (200, 150)):  # on each edge
        assert keeps(cx, cy, region), (cx, cy)
    for cx, cy in ((99, 125), (301, 125), (200, 99), (200, 151), (50, 50)):
        assert not keeps(cx, cy, region), (cx, cy)


def test_the_box_uses_the_centre_not_any_overlap() -> None:
    region = box(0.0, 0.0, 0.5, 1.0)  # x 0..200
    assert not in_regions(face_at(210, 100, half=30), regions_from_wire([region]), W, H)
    assert in_regions(face_at(190, 100, half=30), regions_from_wire([region]), W, H)


def test_a_box_scales_by_frame_width_and_height() -> None:
    wide = box(0.0, 0.0, 0.5, 0.2)  # x 0..200, y 0..40 on 400x200
    assert keeps(190, 35, wide)
    assert not keeps(190, 45, wide)  # y scaled by height 200, not by width
    assert not keeps(210, 35, wide)


def test_box_fields_default_to_the_whole_frame_from_the_top_left() -> None:
    assert keeps(399, 199, {"BoundingBox": {"Left": 0.5}})  # width 1.0 reaches past the edge
    assert not keeps(199, 100, {"BoundingBox": {"Left": 0.5}})
    assert keeps(10, 150, {"BoundingBox": {"Top": 0.5}})
    assert not keeps(10, 90, {"BoundingBox": {"Top": 0.5}})
    assert keeps(150, 10, {"BoundingBox": {"Width": 0.4}})
    assert not keeps(170, 10, {"BoundingBox": {"Width": 0.4}})
    assert keeps(10, 70, {"BoundingBox": {"Height": 0.4}})
    assert not keeps(10, 90, {"BoundingBox": {"Height": 0.4}})


def test_a_polygon_keeps_faces_inside_and_on_its_edge() -> None:
    triangle = polygon((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))  # below the diagonal x/W + y/H = 1
    assert keeps(100, 50, triangle)
    assert keeps(200, 100, triangle)  # on the hypotenuse
    assert keeps(0, 100, triangle)  # on the left edge
    assert not keeps(300, 150, triangle)
    assert not keeps(210, 100, triangle)


def test_a_polygon_scales_x_by_width_and_y_by_height() -> None:
    band = polygon((0.5, 0.0), (1.0, 0.0), (1.0, 0.25), (0.5, 0.25))  # x 200..400, y 0..50
    assert keeps(300, 40, band)
    assert not keeps(300, 60, band)
    assert not keeps(190, 40, band)
    assert not keeps(40, 300 / 2, band)


def test_a_concave_polygon_excludes_its_notch() -> None:
    notched = polygon((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.2), (0.0, 1.0))
    assert keeps(20, 150, notched) and keeps(380, 150, notched)
    assert not keeps(200, 150, notched)  # in the notch
    assert keeps(200, 20, notched)


def test_degenerate_polygons_keep_nothing() -> None:
    assert not keeps(100, 50, polygon((0.0, 0.0), (1.0, 1.0)))
    assert not keeps(100, 50, {"Polygon": []})
    assert not keeps(100, 50, {})


def test_missing_polygon_coordinates_are_zero() -> None:
    region = {"Polygon": [{"X": 1.0}, {"Y": 1.0}, {"X": 1.0, "Y": 1.0}]}  # (1,0) (0,1) (1,1)
    assert keeps(350, 150, region)
    assert not keeps(50, 50, region)


def test_any_region_is_enough() -> None:
    left, right = box(0.0, 0.0, 0.25, 1.0), polygon((0.75, 0.0), (1.0, 0.0), (1.0, 1.0),
                                                     (0.75, 1.0))
    assert keeps(50, 100, left, right) and keeps(350, 100, left, right)
    assert not keeps(200, 100, left, right)
    both = {**box(0.0, 0.0, 0.25, 1.0), **polygon((0.75, 0.0), (1.0, 0.0), (1.0, 1.0))}
    assert keeps(50, 100, both) and keeps(390, 50, both)  # one region, either shape
    assert not keeps(200, 100, both)


# ---- parsing: once, at the edge, and the JSON kept byte for byte ---------------------------

def test_the_wire_is_parsed_into_fields_with_its_defaults() -> None:
    assert Region.from_wire({"BoundingBox": {"Left": 0.5}}).box == Box(0.5, 0.0, 1.0, 1.0)
    assert Region.from_wire(box(0.1, 0.2, 0.3, 0.4)).box == Box(0.1, 0.2, 0.3, 0.4)
    assert Region.from_wire({"BoundingBox": {}}).box is None  # an empty box is no box
    assert Region.from_wire({"Polygon": [{"X": 0.5}, {"Y": 0.25}]}).polygon == (
        Point(0.5, 0.0), Point(0.0, 0.25))
    empty = Region.from_wire({})
    assert empty.box is None and empty.polygon == () and empty.wire == {}


def test_the_json_comes_back_exactly_as_sent() -> None:
    sent: list[dict[str, Any]] = [
        {"Polygon": [{"Y": 1, "X": 0}, {"X": 1.0}, {"X": 1, "Y": 1}]},
        {"BoundingBox": {"Top": 0.25, "Left": 0}}, {"BoundingBox": {}}]
    regions = regions_from_wire(sent)
    back = regions_to_wire(regions)
    assert json.dumps(back) == json.dumps(sent)  # key order, ints and omissions kept
    back[0]["Polygon"].clear()
    assert regions_to_wire(regions) == sent  # copies: a caller cannot change the region


def test_regions_made_in_code_render_in_model_order() -> None:
    made = Region(box=Box(left=0.5), polygon=(Point(0.0, 0.0), Point(1.0, 0.0), Point(0.0, 1.0)))
    assert list(made.wire) == ["BoundingBox", "Polygon"]
    assert made.wire["BoundingBox"] == {"Width": 1.0, "Height": 1.0, "Left": 0.5, "Top": 0.0}
    assert made.wire["Polygon"][1] == {"X": 1.0, "Y": 0.0}
    assert Region.from_wire(made.wire) == made


@pytest.mark.parametrize("item", ["BoundingBox", ["BoundingBox"], None, 3])
def test_only_json_objects_are_regions(item: object) -> None:
    """A TypeError, which the ledger's decode turns into "a payload that does not fit"."""
    with pytest.raises(TypeError, match="^a region is a JSON object, not "):
        regions_from_wire([box(0, 0, 1, 1), item])  # type: ignore[list-item]


def _spec(**changes: Any) -> ProcessorSpec:
    return ProcessorSpec(name="cam", arn="arn:p", input_arn="tcp://h:1", output_arn="kafka://k:1/t",
                         collection_id="c", threshold=80.0, role_arn="arn:r", created=1.0,
                         **changes)


def test_a_spec_parses_its_stored_json_and_stores_it_again_unchanged() -> None:
    sent = [{"BoundingBox": {"Left": 0, "Width": 0.5}}]
    from_api = _spec(regions=regions_from_wire(sent))  # the API parses first
    stored = from_api.to_dict()
    assert stored["regions"] == sent and json.dumps(stored["regions"]) == json.dumps(sent)
    assert list(stored) == list(_spec().to_dict())  # the stored keys in the same order
    from_json = ProcessorSpec.from_dict(json.loads(json.dumps(stored)))  # the store, the log
    assert from_json == from_api and isinstance(from_json.regions[0], Region)
    assert from_json.to_dict() == stored and stored["regions"] == sent  # read, not changed
    updated = from_json.with_updates(regions=regions_from_wire([box(0.1, 0.2, 0.3, 0.4)]))
    assert updated.to_dict()["regions"] == [box(0.1, 0.2, 0.3, 0.4)]
    assert updated.with_updates(regions=()).regions == ()
    assert _spec().to_dict()["regions"] == []
    older = {k: v for k, v in stored.items() if k != "regions"}  # a spec stored without them
    assert ProcessorSpec.from_dict(older).regions == ()


def test_a_spec_keeps_what_it_is_given() -> None:
    """No second parse in the constructor: regions are parsed at the edges only."""
    regions = regions_from_wire([box(0.1, 0.2, 0.3, 0.4)])
    spec = _spec(regions=regions)
    assert spec.regions is regions
    assert spec.with_updates(threshold=90.0).regions is regions


def test_an_update_writes_the_regions_json_it_was_parsed_from() -> None:
    sent: list[dict[str, Any]] = [{"Polygon": [{"Y": 1, "X": 0}, {"X": 1.0}, {"X": 1, "Y": 1}]},
                                  {"BoundingBox": {"Top": 0.25, "Left": 0}}]
    update = UpdateProcessor("cam", regions_from_wire(sent), False)
    record = encode(update, "id-1", "node-a")
    assert record == (b'{"kind":"processor.update","id":"id-1","node":"node-a","payload":'
                      b'{"name":"cam","changes":{"regions":' + json.dumps(
                          sent, separators=(",", ":")).encode() + b',"data_sharing":false}}}')
    back = UpdateProcessor.from_payload(json.loads(record)["payload"])
    assert back == update and all(isinstance(r, Region) for r in back.regions or ())
    assert back.changes() == {"regions": regions_from_wire(sent), "data_sharing": False}
    cleared = UpdateProcessor.from_payload({"name": "cam", "changes": {"regions": []}})
    assert cleared.regions == () and cleared.payload() == {"name": "cam",
                                                           "changes": {"regions": []}}
    untouched = UpdateProcessor.from_payload({"name": "cam", "changes": {"data_sharing": True}})
    assert untouched.regions is None and untouched.changes() == {"data_sharing": True}


# ---- sessions ----------------------------------------------------------------------------

class _Events:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.registry = CollectorRegistry()

    def session_changed(self, name: str, generation: int) -> None:
        self.calls.append((name, generation))


def session(regions: tuple[Region, ...] = ()) -> tuple[Session, _Events]:
    info = CollectionInfo("c", "arn:c", 1.0, "test_mfn", 128, "7.0", "digest")
    plan = SessionPlan(name="cam", generation=7, kind="FaceSearch", url="tcp://h:1",
                       url_shown="tcp://h:1", stream_arn="tcp://h:1", collection=info,
                       threshold=80.0, output=Output("k:1", "t"), emit="frame",
                       regions=regions, frame_queue=3)
    events = _Events()
    metrics = ProcessorMetrics.create(events.registry)
    return Session(plan, metrics.sensor("cam"), events), events


def test_a_session_starts_active_with_its_plan() -> None:
    region = Region.from_wire(box(0.0, 0.0, 0.5, 1.0))
    s, events = session((region,))
    assert s.active.is_set() and s.running is False and s.ended is None
    assert s.tracker.update([]) == []
    assert s.regions == (region,) and s.name == "cam"
    assert s.frames.maxsize == 3 and s.frames.policy.name == "DROP_OLDEST"
    assert events.calls == []


def test_frames_beyond_the_queue_are_dropped_and_counted() -> None:
    s, events = session()
    for i in range(5):
        s.frames.put(i)  # type: ignore[arg-type]
    assert len(s.frames) == 3 and s.frames.dropped == 2
    assert events.registry.get_sample_value("streamproc_processor_frames_dropped_total",
                                            {"processor": "cam"}) == 2


def test_the_first_frame_is_reported_once() -> None:
    s, events = session()
    s.report_frame()
    s.report_frame()
    assert s.running and events.calls == [("cam", 7)]


def test_a_deactivated_session_reports_nothing() -> None:
    s, events = session()
    s.deactivate()
    s.report_frame()
    s.fail("late")
    s.crashed("late")
    assert not s.active.is_set() and not s.running and s.ended is None
    assert events.calls == []


@pytest.mark.parametrize(("first", "kind"),
                         [("fail", EndKind.FAILED), ("crashed", EndKind.CRASHED)])
def test_the_first_end_wins_and_is_reported_once(first: str, kind: EndKind) -> None:
    s, events = session()
    s.report_frame()
    getattr(s, first)("the cause")
    s.fail("a consequence")
    s.crashed("another")
    s.deactivate()
    assert s.ended == SessionEnd(kind, "the cause") and not s.active.is_set()
    assert events.calls == [("cam", 7), ("cam", 7)]
    s.report_frame()
    assert events.calls == [("cam", 7), ("cam", 7)]


def test_the_wire_form_given_out_is_a_copy_all_the_way_down() -> None:
    regions = regions_from_wire([{"BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.3,
                                                  "Height": 0.4}}])
    out = regions_to_wire(regions)
    out[0]["BoundingBox"]["Left"] = 0.9
    assert regions_to_wire(regions)[0]["BoundingBox"]["Left"] == 0.1


def test_a_region_that_is_no_object_is_a_type_error_naming_its_type() -> None:
    with pytest.raises(TypeError, match="^a region is a JSON object, not list$"):
        Region.from_wire([1])  # type: ignore[arg-type]
