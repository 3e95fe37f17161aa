"""Collection and face rules as the ledger applies them (collections/rules.py).

Commands go through a LocalLedger into CollectionRules over the harness's real collection
store and tag store: ids taken or not, the model a collection belongs to, the face quota at
its exact edge, and what a deletion takes with it (the tag limit: test_rules_tags.py).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from fakes import OTHER_MODEL, Harness

from streamproc.collections.commands import (
    AddFaces,
    CreateCollection,
    DeleteCollection,
    DeleteFaces,
)
from streamproc.collections.rules import CollectionRules
from streamproc.config import load_config
from streamproc.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.ledger import Appliers, LocalLedger
from streamproc.storage.collections import CollectionInfo, NewFace

MAX_FACES = 3


class Rules:
    """CollectionRules behind a local ledger; ``deleted`` records the on_delete calls."""

    def __init__(self, h: Harness, **settings: Any) -> None:
        self.h = h
        self.deleted: list[tuple[str, float]] = []
        config = load_config(None, {"storage.max_faces_per_collection": MAX_FACES, **settings})
        appliers = Appliers()
        CollectionRules(h.collections, h.tags, h.searcher, config,
                        lambda cid, created: self.deleted.append((cid, created))
                        ).register(appliers)
        self.ledger = LocalLedger(appliers)

    def create(self, collection_id: str, tags: dict[str, str] | None = None,
               model: Any = None) -> CollectionInfo:
        model = model or self.h.model
        info = CollectionInfo(collection_id, f"arn:c/{collection_id}", 12.5, model.pack,
                              model.dim, "7.0", model.recognizer)
        return self.ledger.submit(CreateCollection(info, tags or {}))

    def add(self, collection_id: str, *face_ids: str) -> Any:
        faces = tuple(NewFace(f, f"img-{f}", f"person-{f}",
                              {"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1}, 99.0,
                              np.ones(4, np.float32) / 2) for f in face_ids)
        return self.ledger.submit(AddFaces(collection_id, faces))


@pytest.fixture
def r(h: Harness) -> Rules:
    return Rules(h)


def test_an_id_is_created_once_with_its_tags(r: Rules) -> None:
    info = r.create("c1", {"team": "a"})
    assert (info.collection_id, info.created) == ("c1", 12.5)
    assert r.h.collections.get("c1") == info and r.h.tags.get("arn:c/c1") == {"team": "a"}
    with pytest.raises(ResourceAlreadyExistsException,
                       match="^The collection id: c1 already exists$"):
        r.create("c1")
    r.create("c2")
    assert r.h.tags.get("arn:c/c2") == {}
    assert r.h.collections.list_ids() == ["c1", "c2", "people"]  # "people": the harness's


def test_a_deletion_takes_the_tags_and_tells_the_processors(r: Rules) -> None:
    r.create("c1", {"team": "a"})
    r.create("c2", {"team": "b"})
    assert r.ledger.submit(DeleteCollection("c1")) is None
    assert r.h.collections.get("c1") is None and r.h.tags.get("arn:c/c1") == {}
    assert r.h.tags.get("arn:c/c2") == {"team": "b"}
    assert r.deleted == [("c1", 12.5)]
    for gone in ("c1", "never"):
        with pytest.raises(ResourceNotFoundException,
                           match=f"^The collection id: {gone} does not exist$"):
            r.ledger.submit(DeleteCollection(gone))
    assert r.deleted == [("c1", 12.5)]


def test_the_face_quota_is_exact(r: Rules) -> None:
    r.create("c1")
    r.create("c2")
    stored = r.add("c1", "f1", "f2")
    assert [f.face_id for f in stored] == ["f1", "f2"] and stored[0].confidence == 99.0
    assert (stored[0].image_id, stored[0].external_image_id, stored[0].bbox) == (
        "img-f1", "person-f1", {"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1})
    with pytest.raises(ServiceQuotaExceededException,
                       match=f"^Collection c1 would exceed {MAX_FACES} faces$"):
        r.add("c1", "f3", "f4")
    assert r.h.collections.face_count("c1") == 2  # nothing of a refused batch is added
    r.add("c1", "f3")
    assert r.h.collections.face_count("c1") == MAX_FACES
    with pytest.raises(ServiceQuotaExceededException):
        r.add("c1", "f4")
    r.add("c2", "g1", "g2", "g3")  # the quota is per collection
    assert r.h.collections.face_count("c2") == MAX_FACES


def test_the_collection_quota_is_exact(h: Harness) -> None:
    r = Rules(h, **{"storage.max_collections": 3})  # the harness's "people" is one of them
    r.create("c1", {"team": "a"})
    r.create("c2")
    with pytest.raises(ServiceQuotaExceededException,
                       match="^At most 3 collections: c3 was not created$"):
        r.create("c3", {"team": "b"})
    assert h.collections.get("c3") is None and h.tags.get("arn:c/c3") == {}
    with pytest.raises(ResourceAlreadyExistsException):  # a taken id is still that
        r.create("c2")
    r.ledger.submit(DeleteCollection("c1"))
    assert r.create("c3").collection_id == "c3"  # a deletion frees a place
    assert h.collections.list_ids() == ["c2", "c3", "people"]


def test_faces_go_into_existing_collections_whatever_this_nodes_model(r: Rules) -> None:
    # The model was checked by the node that answered IndexFaces, before appending: the
    # applier decides alike on every node, whatever model each one runs.
    r.create("theirs", model=OTHER_MODEL)
    assert [f.face_id for f in r.add("theirs", "f1")] == ["f1"]
    with pytest.raises(ResourceNotFoundException,
                       match="^The collection id: nobody does not exist$"):
        r.add("nobody", "f1")
    assert r.h.collections.face_count("theirs") == 1


def test_faces_are_deleted_from_existing_collections_only(r: Rules) -> None:
    r.create("c1")
    r.add("c1", "f1", "f2")
    deleted, missing, kept = r.ledger.submit(DeleteFaces("c1", ["f1", "zz"]))
    assert (deleted, missing, kept) == (["f1"], ["zz"], [])
    assert r.h.collections.face_count("c1") == 1
    with pytest.raises(ResourceNotFoundException,
                       match="^The collection id: nobody does not exist$"):
        r.ledger.submit(DeleteFaces("nobody", ["f1"]))


def test_creations_and_deletions_are_logged_for_operators(
        r: Rules, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.collections.rules")
    r.create("c1")
    r.ledger.submit(DeleteCollection("c1"))
    assert [rec.getMessage() for rec in caplog.records] == [
        f"created collection c1 ({r.h.model.pack}, {r.h.model.dim}-d)", "deleted collection c1"]


def test_a_collection_deleted_meanwhile_is_not_found(
        r: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    r.create("c1", {"team": "a"})
    monkeypatch.setattr(r.h.collections, "delete", lambda collection_id: False)  # lost a race
    with pytest.raises(ResourceNotFoundException,
                       match="^The collection id: c1 does not exist$"):
        r.ledger.submit(DeleteCollection("c1"))
    assert r.deleted == [] and r.h.tags.get("arn:c/c1") == {"team": "a"}
