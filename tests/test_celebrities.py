"""Celebrities without models: the catalog, the gallery's match rule, the job's rows and pages.

The gallery here is a real collection store, user store and search path over 4-d unit
vectors, with the test scale (Similarity = 50 * (cosine + 1)), so the threshold the gallery
applies is the one the searcher computes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import MODEL, OTHER_MODEL, unit

from streamproc.api.job_kinds.celebrities import CelebrityRecognitionWire
from streamproc.celebrities.catalog import (
    Catalog,
    CatalogError,
    CelebrityInfo,
    KnownGender,
    is_celebrity_id,
    load_catalog,
    parse_catalog,
)
from streamproc.celebrities.gallery import Gallery
from streamproc.celebrities.shapes import celebrity, celebrity_detail, info_wire
from streamproc.config import CalibrationKnot, CelebritiesConfig, load_config
from streamproc.dataplane.stored.stages import FaceAnalysis
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.faces.similarity import SimilarityScale
from streamproc.faces.types import Face
from streamproc.jobs.kind import JobKinds
from streamproc.jobs.kinds.celebrities import (
    CELEBRITY_RECOGNITION,
    CelebrityRecognitionJobKind,
    CelebrityRecognitionRequest,
)
from streamproc.jobs.service import JobService, ResultsQuery
from streamproc.rekognition.constants import IDEMPOTENCY_WINDOW_S
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.collections import CollectionInfo, CollectionStore, NewFace
from streamproc.storage.db import Database
from streamproc.storage.jobs import SUCCEEDED, JobStore, ResultRow
from streamproc.storage.objects import ObjectRef
from streamproc.storage.requests import RequestLog
from streamproc.storage.users import UserStore

CATALOG = """
W1:
  name: Woman W
  urls: [https://example.org/w, https://example.org/w2]
  known_gender: Female
M1: {name: Man M}
"""
NEAR_W, NEAR_M = [1, 0.05, 0, 0], [0, 1, 0.05, 0]


# ---- the catalog --------------------------------------------------------------------------
def test_a_catalog_is_read_keyed_by_user_id() -> None:
    catalog = parse_catalog(CATALOG)
    assert catalog.info("W1") == CelebrityInfo(
        "Woman W", ("https://example.org/w", "https://example.org/w2"), KnownGender.FEMALE)
    assert catalog.info("M1") == CelebrityInfo("Man M")
    assert catalog.info("nobody") == CelebrityInfo("nobody")  # named by its UserId
    assert parse_catalog('{"A1": {"name": "A", "known_gender": "Nonbinary"}}').info(
        "A1").known_gender is KnownGender.NONBINARY  # JSON is YAML too
    assert parse_catalog("").entries == {}


@pytest.mark.parametrize(("text", "why"), [
    ("jane-doe: {name: J}", "letters and digits"),  # not a celebrity Id
    ("A1: {name: J, nickname: x}", "nickname"),  # unknown keys are refused
    ("A1: {name: ''}", "name"),
    ("A1: {name: J, known_gender: Robot}", "known_gender"),
    ("A1: {name: J, urls: [" + "x" * 256 + "]}", "255 characters"),
    ("A1: [not, a, mapping]", "A1"),
    ("- a list", "catalog"),
    ("A1: {name: J", "not YAML or JSON"),
])
def test_a_bad_catalog_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(CatalogError, match=why):
        parse_catalog(text)


def test_the_catalog_file_is_read_at_start(tmp_path: Path) -> None:
    path = tmp_path / "stars.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    assert load_catalog(path).info("W1").name == "Woman W"
    assert load_catalog(None) == Catalog({})
    with pytest.raises(CatalogError, match="missing.yaml"):
        load_catalog(tmp_path / "missing.yaml")


def test_celebrity_ids_are_letters_and_digits() -> None:
    assert is_celebrity_id("W1") and is_celebrity_id("a" * 128)
    assert not any(map(is_celebrity_id, ["", "jane-doe", "a.b", "a" * 129, "é1"]))


def test_the_config_section_is_typed() -> None:
    cfg = load_config(None, {"celebrities.gallery": "stars", "celebrities.match_threshold": 90})
    assert cfg.celebrities == CelebritiesConfig(gallery="stars", match_threshold=90.0)
    for bad in ({"celebrities.match_threshold": 101}, {"celebrities.gallery": "a b"},
                {"celebrities.galery": "stars"}):
        with pytest.raises(ValueError, match="celebrities"):
            load_config(None, bad)


# ---- the gallery ----------------------------------------------------------------------------
@dataclass
class World:
    db: Database
    collections: CollectionStore
    users: UserStore
    searcher: FaceSearcher
    model: Any = MODEL

    def gallery(self, gallery: str | None = "stars", threshold: float = 80.0,
                catalog: str = CATALOG) -> Gallery:
        return Gallery(CelebritiesConfig(gallery=gallery, match_threshold=threshold),
                       self.searcher, self.users, parse_catalog(catalog))

    def collection(self, name: str, model: Any = MODEL) -> None:
        assert self.collections.create(CollectionInfo(
            name, f"arn:c/{name}", time.time(), model.pack, model.dim, "7.0", model.recognizer))

    def person(self, collection: str, user_id: str | None, face_id: str,
               vector: list[float]) -> None:
        box = {"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0}
        self.collections.add_faces(collection, [NewFace(face_id, "img", face_id, box, 99.0,
                                                        unit(vector))])
        if user_id is not None:
            if self.users.get(collection, user_id) is None:
                self.users.create(collection, user_id, None)
            self.users.set_faces(collection, user_id, [face_id], [], None)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = Database(tmp_path / "streamproc.db")
    db.open()
    collections = CollectionStore(db)
    collections.load()
    users = UserStore(db, collections, RequestLog(db, IDEMPOTENCY_WINDOW_S))
    scale = SimilarityScale([CalibrationKnot(cosine=-1, similarity=0),
                             CalibrationKnot(cosine=1, similarity=100)])
    made = World(db, collections, users, FaceSearcher(collections, lambda: made.model, scale,
                                                      users))
    yield made
    db.close()


def _stars(world: World) -> None:
    world.collection("stars")
    world.person("stars", "W1", "w-face", [1, 0, 0, 0])
    world.person("stars", "M1", "m-face", [0, 1, 0, 0])


def test_a_face_is_the_most_similar_celebrity_over_the_threshold(world: World) -> None:
    _stars(world)
    w, m, nobody = unit(NEAR_W), unit(NEAR_M), unit([0, 0, 0, 1])
    matches = world.gallery().match([w, m, nobody])
    assert [x and x.celebrity_id for x in matches] == ["W1", "M1", None]
    first = matches[0]
    assert first is not None and first.info.name == "Woman W"
    assert first.confidence == pytest.approx(50 * (1 + float(w[0])), abs=1e-4)  # Similarity
    # The configured threshold is the cut: just above W's Similarity, W is no one.
    above = 50 * (1 + float(w[0])) + 0.01
    assert world.gallery(threshold=above).match([w]) == [None]
    assert world.gallery(threshold=above - 0.02).match([w])[0] is not None


def test_faces_of_no_user_and_users_of_no_celebrity_id_are_not_celebrities(world: World
                                                                           ) -> None:
    world.collection("stars")
    world.person("stars", None, "loose", [1, 0, 0, 0])  # in the gallery, of no user
    world.person("stars", "jane-doe", "jane", [0, 1, 0, 0])  # best match, not an Id
    world.person("stars", "J2", "j2", [0, 1, 0.3, 0])  # next best: this one is reported
    gallery = world.gallery(threshold=60)
    assert gallery.match([unit(NEAR_W)]) == [None]
    found = gallery.match([unit([0, 1, 0, 0])])[0]
    assert found is not None and found.celebrity_id == "J2" and found.info.name == "J2"


def test_no_gallery_or_one_not_created_is_empty_and_another_models_is_refused(world: World
                                                                              ) -> None:
    assert not world.gallery(None).active() and world.gallery(None).match([unit(NEAR_W)]) == [
        None]
    assert not world.gallery("later").active()
    assert world.gallery("later").match([unit(NEAR_W)]) == [None]
    world.collection("theirs", OTHER_MODEL)
    with pytest.raises(InvalidParameterException, match="created with model pack"):
        world.gallery("theirs").active()


def test_celebrity_info_is_for_the_gallerys_users(world: World) -> None:
    _stars(world)
    world.users.create("stars", "X9", None)  # a user with no faces yet: still a celebrity
    gallery = world.gallery()
    assert gallery.info("W1").urls == ("https://example.org/w", "https://example.org/w2")
    assert gallery.info("X9") == CelebrityInfo("X9")
    for unknown in ("Nobody1", "", "jane-doe"):
        with pytest.raises(ResourceNotFoundException, match="celebrity id"):
            gallery.info(unknown)
    with pytest.raises(ResourceNotFoundException):
        world.gallery("later").info("W1")  # no gallery collection yet
    with pytest.raises(ResourceNotFoundException):
        world.gallery(None).info("W1")


# ---- the wire -------------------------------------------------------------------------------
def _face(x: float, vector: list[float] | None) -> Face:
    return Face(np.array([x, 10.0, x + 40.0, 60.0]), 0.99, np.full((5, 2), x + 20.0),
                confidence=99.5, embedding=None if vector is None else unit(vector))


def test_the_shapes_carry_info_and_omit_what_is_unknown(world: World) -> None:
    _stars(world)
    w, m = world.gallery().match([unit(NEAR_W), unit(NEAR_M)])
    assert w is not None and m is not None
    assert info_wire(w.info) == {"Urls": ["https://example.org/w", "https://example.org/w2"],
                                 "Name": "Woman W", "KnownGender": {"Type": "Female"}}
    assert info_wire(m.info) == {"Urls": [], "Name": "Man M"}  # empty Urls, no gender
    image = celebrity(_face(0, None), w, 200, 100)
    assert set(image) == {"Urls", "Name", "Id", "Face", "MatchConfidence", "KnownGender"}
    assert set(image["Face"]) == {"BoundingBox", "Confidence", "Landmarks"}  # no Emotions
    assert image["Face"]["BoundingBox"] == {"Width": 0.2, "Height": 0.5, "Left": 0.0,
                                            "Top": 0.1}
    job = celebrity_detail(_face(0, None), m, 200, 100)
    assert "KnownGender" not in job and job["Id"] == "M1"
    assert job["BoundingBox"] == job["Face"]["BoundingBox"] and job["Confidence"] > 80


# ---- the job kind -----------------------------------------------------------------------------
def _frame(ms: int) -> StoredFrame:
    return StoredFrame(np.zeros((100, 200, 3), np.uint8), ms, ms / 1000)


def test_a_launch_reports_each_recognised_face_named_by_its_id(world: World) -> None:
    _stars(world)
    kind = CelebrityRecognitionJobKind(world.gallery())
    request = CelebrityRecognitionRequest(ObjectRef("vids", "a.mp4"))
    builder = kind.results(request).builder()
    assert builder.needs_embeddings
    faces = [_face(0, NEAR_M), _face(50, [0, 0, 0, 1]), _face(100, None), _face(150, NEAR_W)]
    rows = builder.build(_frame(400), FaceAnalysis(faces, []))
    assert [(r.timestamp_ms, r.name) for r in rows] == [(400, "M1"), (400, "W1")]
    assert rows[0].item["Timestamp"] == 400 and rows[0].item["Celebrity"]["Name"] == "Man M"
    assert rows[1].item["Celebrity"]["BoundingBox"]["Left"] == 0.75


def test_an_empty_gallery_at_launch_embeds_nothing_and_finds_nothing(world: World) -> None:
    kind = CelebrityRecognitionJobKind(world.gallery("later"))
    request = CelebrityRecognitionRequest(ObjectRef("vids", "a.mp4"))
    kind.check(request)  # not an error at Start
    builder = kind.results(request).builder()
    assert not builder.needs_embeddings
    assert builder.build(_frame(0), FaceAnalysis([_face(0, NEAR_W)], [])) == []
    world.collection("theirs", OTHER_MODEL)
    with pytest.raises(InvalidParameterException):
        CelebrityRecognitionJobKind(world.gallery("theirs")).check(request)


def test_the_request_is_stored_and_read_back() -> None:
    wire = CelebrityRecognitionWire()
    request = wire.request({"Video": {"S3Object": {"Bucket": "b", "Name": "v.mp4"}},
                            "JobTag": "t", "NotificationChannel": {
                                "SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:done",
                                "RoleArn": "arn:aws:iam::123456789012:role/r"}})
    stored = request.stored()
    assert stored == {"Video": {"S3Object": {"Bucket": "b", "Name": "v.mp4"}}, "JobTag": "t",
                      "NotificationChannel": {
                          "SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:done",
                          "RoleArn": "arn:aws:iam::123456789012:role/r"}}
    assert CelebrityRecognitionRequest.from_stored(stored) == request


def _rows() -> list[ResultRow]:
    # (time, Id) in the order a launch writes them: timestamp order.
    made = [(0, "W1"), (0, "M1"), (200, "W1"), (400, "M1"), (400, "W1"), (600, "A1")]
    return [ResultRow(seq, t, None, {"Timestamp": t, "Celebrity": {"Id": cid}}, name=cid)
            for seq, (t, cid) in enumerate(made)]


def test_sort_by_timestamp_default_or_id_and_pages(world: World) -> None:
    store = JobStore(world.db)
    kinds = JobKinds([CelebrityRecognitionJobKind(world.gallery())])
    request = CelebrityRecognitionRequest(ObjectRef("vids", "a.mp4"))
    store.insert("job1", CELEBRITY_RECOGNITION, None, request.stored(), time.time())
    attempt = store.launch("job1")
    assert store.add_results("job1", attempt, _rows())
    store.finish("job1", attempt, SUCCEEDED, "", time.time())
    unused: Any = None  # Get reads only the store and the kinds
    service = JobService(store, unused, kinds, unused, unused, unused, unused)

    def pages(sort: str | None, size: int) -> list[tuple[int, str]]:
        out, token = [], None
        while True:
            page = service.get("job1", CELEBRITY_RECOGNITION,
                               ResultsQuery(sort, token, size))
            assert page.sort == (sort or "TIMESTAMP") and len(page.items) <= size
            out += [(i["Timestamp"], i["Celebrity"]["Id"]) for i in page.items]
            token = page.next_token
            if token is None:
                return out

    by_time = [(r.timestamp_ms, r.name) for r in _rows()]
    assert pages(None, 4) == pages("TIMESTAMP", 1) == by_time
    assert pages("ID", 4) == pages("ID", 1) == sorted(by_time, key=lambda x: (x[1], x[0]))
    with pytest.raises(InvalidParameterException, match="SortBy INDEX"):
        service.get("job1", CELEBRITY_RECOGNITION, ResultsQuery("INDEX"))
