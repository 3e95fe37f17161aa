"""Settings observed where they take effect: in the records a running processor writes.

Real daemon, real tansu broker, live ffmpeg streams, boto3. Every resource is named after
the test, so the session-wide daemon and broker never mix two tests' records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from streams import (
    BOTH,
    MAN,
    WOMAN,
    Records,
    create,
    enrol,
    matched_names,
    remove_processor,
    wait_status,
)

from streamproc.daemon import Daemon
from streamproc.tools.demo import clip_frames

LEFT_OF = 200 / 480  # in the two-person clip the woman is left of x=200 px
pytestmark = pytest.mark.slow


class Scene:
    """One test's collection and processor, named after the test, removed afterwards."""

    def __init__(self, rek: Any, bootstrap: str, name: str) -> None:
        self.rek, self.bootstrap, self.name = rek, bootstrap, name
        self.processors: list[str] = []
        self.collections: list[str] = []

    def collection(self) -> str:
        self.rek.create_collection(CollectionId=self.name)
        self.collections.append(self.name)
        return self.name

    def start(self, url: str, **extra: Any) -> None:
        """Create the processor (output: a topic of its name) and start it."""
        create(self.rek, self.name, url, self.name, self.name, **extra)
        self.processors.append(self.name)
        self.rek.start_stream_processor(Name=self.name)

    def records(self) -> Records:
        return Records(self.bootstrap, self.name)

    def read(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """At least ``count`` records (fewer if the timeout passes first)."""
        records = self.records()
        try:
            return records.wait_for(lambda rs: len(rs) >= count, timeout)
        finally:
            records.close()

    def remove(self) -> None:
        for name in self.processors:
            remove_processor(self.rek, name)
        for collection in self.collections:
            try:
                self.rek.delete_collection(CollectionId=collection)
            except self.rek.exceptions.ResourceNotFoundException:
                pass


@pytest.fixture
def scene(rek: Any, broker: Any, request: pytest.FixtureRequest) -> Iterator[Scene]:
    name = f"{request.node.name[5:25].replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    made = Scene(rek, broker.bootstrap, name)
    yield made
    made.remove()


def _counter(daemon: Daemon, metric: str, name: str) -> float:
    return daemon.registry.get_sample_value(f"streamproc_processor_{metric}_total",
                                            {"processor": name}) or 0.0


def _centres(record: dict[str, Any]) -> list[float]:
    return [centre for centre, _ in matched_names(record)]


def _crop_jpeg(jpeg: bytes, left: int, right: int) -> bytes:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    ok, out = cv2.imencode(".jpg", image[:, left:right])
    assert ok
    return out.tobytes()


def test_a_threshold_below_80_is_raised_to_80_in_the_records(
        rek: Any, broker: Any, live: Any, scene: Scene) -> None:
    # W enrolled once from her own clip: in the two-person clip her face scores 50-80
    # against it on most frames (a different camera and pose), M's never reaches 50.
    collection = scene.collection()
    assert enrol(rek, collection, WOMAN, "woman-W", every=12) >= 1
    # The same faces, searched through the API at 50: matches between 50 and 80 exist.
    low = []
    for jpeg in clip_frames(BOTH, 10):
        out = rek.search_faces_by_image(CollectionId=collection, FaceMatchThreshold=50,
                                        Image={"Bytes": _crop_jpeg(jpeg, 0, 200)})
        low += [m["Similarity"] for m in out["FaceMatches"] if m["Similarity"] < 80]
    assert len(low) >= 3, low
    stream = live(BOTH)
    scene.start(stream.url, Settings={"FaceSearch": {"CollectionId": collection,
                                                     "FaceMatchThreshold": 50}})
    records = scene.records()
    try:
        got = records.wait_for(lambda rs: sum(
            1 for r in rs for c in _centres(r) if c < LEFT_OF) >= 25, 90)
    finally:
        records.close()
    left = [f for r in got for f in r["FaceSearchResponse"]
            if (f["DetectedFace"]["BoundingBox"]["Left"]
                + f["DetectedFace"]["BoundingBox"]["Width"] / 2) < LEFT_OF]
    assert len(left) >= 25  # her face was searched in every one of these records ...
    similarities = [m["Similarity"] for f in left for m in f["MatchedFaces"]]
    assert all(s >= 80 for s in similarities), similarities  # ... never below 80


def test_credentials_in_the_input_url_never_reach_the_records(
        rek: Any, live: Any, scene: Scene) -> None:
    enrol(rek, scene.collection(), MAN, "man-M", every=12)
    stream = live(BOTH)
    scene.start(f"tcp://admin:hunter2pw@{stream.host}:{stream.port}?token=t0kenvalue")
    got = scene.read(5)
    assert len(got) >= 5
    arns = {r["InputInformation"]["KinesisVideo"]["StreamArn"] for r in got}
    assert arns == {f"tcp://***:***@{stream.host}:{stream.port}?token=***"}
    text = repr(got)
    assert "hunter2pw" not in text and "t0kenvalue" not in text and "admin" not in text
    assert any(n == "man-M" for r in got for _, n in matched_names(r))  # it really ran


def test_regions_follow_updates_of_a_running_processor(
        rek: Any, daemon: Daemon, live: Any, scene: Scene) -> None:
    scene.collection()
    scene.start(live(BOTH).url)
    name = scene.name
    records = scene.records()
    # Records are ordered: those emitted after the change took effect come after the
    # count of records emitted when the call returned (plus a frame or two in flight).
    slack = 10

    def window(count: int) -> list[dict[str, Any]]:
        start = int(_counter(daemon, "records_emitted", name)) + slack
        return records.wait_for(lambda rs: len(rs) >= start + count, 60)[start:start + count]

    try:
        assert wait_status(rek, name, {"RUNNING"})["Status"] == "RUNNING"
        before = window(10)
        shown = [_centres(r) for r in before]
        assert any(c > LEFT_OF for centres in shown for c in centres), shown  # both seen
        rek.update_stream_processor(Name=name, RegionsOfInterestForUpdate=[
            {"BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 0.4, "Height": 1.0}}])
        assert rek.describe_stream_processor(Name=name)["Status"] == "RUNNING"
        inside = window(15)
        shown = [_centres(r) for r in inside]
        assert len(inside) == 15 and all(shown), shown
        assert all(c < 0.4 for centres in shown for c in centres), shown  # the man is gone
        rek.update_stream_processor(Name=name, ParametersToDelete=["RegionsOfInterest"])
        shown = [_centres(r) for r in window(15)]
        assert sum(1 for centres in shown for c in centres if c > LEFT_OF) >= 5, shown  # back
    finally:
        records.close()


def test_a_polygon_region_selects_the_faces_inside_it(
        rek: Any, live: Any, scene: Scene) -> None:
    enrol(rek, scene.collection(), MAN, "man-M", every=12)
    # A pentagon over the right part of the frame (the man), not a box.
    polygon = [{"X": 0.45, "Y": 0.0}, {"X": 1.0, "Y": 0.0}, {"X": 1.0, "Y": 1.0},
               {"X": 0.6, "Y": 1.0}, {"X": 0.45, "Y": 0.5}]
    scene.start(live(BOTH).url, RegionsOfInterest=[{"Polygon": polygon}])
    got = scene.read(15)
    assert len(got) >= 15
    faces = [n for r in got for n in matched_names(r)]
    assert all(centre > 0.45 for centre, _ in faces)  # never the woman on the left
    assert sum(1 for _, name in faces if name == "man-M") >= 10  # the man, matched


def test_track_mode_emits_once_per_person_and_again_when_the_match_changes(
        rek: Any, daemon: Daemon, live: Any, scene: Scene) -> None:
    collection = scene.collection()
    frames = clip_frames(BOTH, 10)

    def index(name: str, frame: int, left: int, right: int) -> str:
        out = rek.index_faces(CollectionId=collection, ExternalImageId=name, MaxFaces=1,
                              Image={"Bytes": _crop_jpeg(frames[frame], left, right)})
        return out["FaceRecords"][0]["Face"]["FaceId"]

    # Only the man is known: the woman is tracked too, but an unmatched track is never
    # written. (She turns away and back, so her track restarts; his stays one track.)
    first = index("man-1", 0, 200, 480)
    scene.start(live(BOTH).url, Tags={"streamproc:emit": "track"})
    records = scene.records()

    def analysed_more(count: int) -> None:
        """Wait until the processor analysed ``count`` more frames (events, not time)."""
        target = _counter(daemon, "frames_analysed", scene.name) + count
        records.wait_for(
            lambda _: _counter(daemon, "frames_analysed", scene.name) >= target, 60)
        assert _counter(daemon, "frames_analysed", scene.name) >= target

    def best(record: dict[str, Any]) -> str:
        (face,) = record["FaceSearchResponse"]  # one tracked person per record
        return face["MatchedFaces"][0]["Face"]["FaceId"]

    try:
        records.wait_for(lambda rs: len(rs) >= 1, 60)
        analysed_more(20)  # ~4 s of video: frame mode would have written ~20 records
        records.poll()
        # One record for the tracked man, when first matched.
        assert [best(r) for r in records.items] == [first]
        # His match changes: the face he matched is deleted (no match: nothing is
        # written), then another face of his is indexed (a new best match: one record).
        rek.delete_faces(CollectionId=collection, FaceIds=[first])
        analysed_more(10)
        records.poll()
        assert len(records.items) == 1
        second = index("man-2", 2, 200, 480)
        records.wait_for(lambda rs: len(rs) >= 2, 30)
        analysed_more(15)
        records.poll()
        assert [best(r) for r in records.items] == [first, second]
    finally:
        records.close()
