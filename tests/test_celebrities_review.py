"""Celebrities, the review's findings: the gallery's policy resource, the search depth, the
caps and clamps, a catalog the server refuses cleanly, and the constants kept in step.

Model-free, over the same real stores and search path as ``test_celebrities.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import unit
from prometheus_client import CollectorRegistry
from test_celebrities import NEAR_W, World, _face, _stars, world  # noqa: F401

from streamproc.api.access import AccessControl
from streamproc.api.resources import GALLERY_OPERATIONS, request_resources
from streamproc.celebrities.catalog import CatalogError, load_catalog, parse_catalog
from streamproc.celebrities.gallery import CelebrityMatch
from streamproc.celebrities.service import CelebrityService
from streamproc.celebrities.shapes import celebrity, celebrity_detail
from streamproc.config import CelebritiesConfig, load_config
from streamproc.errors import AccessDeniedException
from streamproc.faces.types import Face
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import (
    DEFAULT_USER_THRESHOLD,
    MAX_CELEBRITY_FACES,
    Arns,
)

COLL = "arn:aws:rekognition:us-east-1:000000000000:collection/"
PARAMS: dict[str, dict[str, Any]] = {
    "RecognizeCelebrities": {"Image": {"Bytes": b"x"}},
    "GetCelebrityInfo": {"Id": "W1"},
    "StartCelebrityRecognition": {"Video": {"S3Object": {"Bucket": "b", "Name": "v.mp4"}}},
    "GetCelebrityRecognition": {"JobId": "j" * 64},
}


# ---- the gallery's collection is a policy resource ---------------------------------------
def _access(tmp_path: Path, gallery: str | None, denied: str) -> AccessControl:
    (tmp_path / "keys.yaml").write_text("AK1: secret\n")
    (tmp_path / "policies.yaml").write_text(json.dumps({"AK1": {"Statement": [
        {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "rekognition:*", "Resource": COLL + denied}]}}))
    auth = load_config(None, {"auth.enabled": True,
                              "auth.access_keys_file": str(tmp_path / "keys.yaml"),
                              "auth.policy_file": str(tmp_path / "policies.yaml")}).auth
    access = AccessControl(auth, Arns("us-east-1", "000000000000", gallery),
                           ApiMetrics.create(CollectorRegistry()))
    access.load()
    return access


@pytest.mark.parametrize("operation", sorted(PARAMS))
def test_a_deny_on_the_gallery_collection_holds_for_the_celebrity_operations(
        tmp_path: Path, operation: str) -> None:
    assert operation in GALLERY_OPERATIONS
    access = _access(tmp_path, "stars", "stars")
    with pytest.raises(AccessDeniedException, match=f"on resource: {COLL}stars with an "
                       "explicit deny"):
        access.authorize("AK1", operation, PARAMS[operation])
    # A Deny on another collection, or no gallery configured: only * is judged.
    _access(tmp_path, "stars", "other").authorize("AK1", operation, PARAMS[operation])
    _access(tmp_path, None, "stars").authorize("AK1", operation, PARAMS[operation])


def test_the_gallery_is_touched_only_by_the_celebrity_operations() -> None:
    arns = Arns("us-east-1", "000000000000", "stars")
    assert request_resources("DetectFaces", {}, arns) == ["*"]
    assert request_resources("RecognizeCelebrities", {}, arns) == ["*", COLL + "stars"]
    # Another region's ARNs keep the gallery (the request's region writes them).
    assert arns.for_region("eu-west-1").gallery == "stars"


# ---- the search -------------------------------------------------------------------------------
def test_users_that_cannot_be_celebrities_do_not_hide_one(world: World) -> None:  # noqa: F811
    world.collection("stars")
    for i in range(12):  # more than one round of candidates, all nearer than C1
        world.person("stars", f"fan-{i}", f"fan{i}", [0, 1, 0.01 * i, 0])
    world.person("stars", "C1", "c1", [0, 1, 0.5, 0])
    found = world.gallery(threshold=60).match([unit([0, 1, 0, 0])])[0]
    assert found is not None and found.celebrity_id == "C1"
    # Over the threshold only fans: the search ends, no one.
    assert world.gallery(threshold=99.9).match([unit([0, 1, 0, 0])]) == [None]


def test_the_most_similar_of_two_qualifying_users_wins(world: World) -> None:  # noqa: F811
    world.collection("stars")
    world.person("stars", "A1", "a1", [1, 0, 0, 0])
    world.person("stars", "B1", "b1", [1, 0.3, 0, 0])
    gallery = world.gallery(threshold=60)
    near_a, near_b = unit([1, 0.02, 0, 0]), unit([1, 0.28, 0, 0])
    assert [m and m.celebrity_id for m in gallery.match([near_a, near_b])] == ["A1", "B1"]


def test_a_gallery_deleted_between_check_and_search_is_empty(world: World) -> None:  # noqa: F811
    _stars(world)
    gallery = world.gallery()
    assert gallery.active()
    assert world.collections.delete("stars")
    assert gallery.search([unit(NEAR_W)]) == [None]


# ---- the image operation's cap and one check ------------------------------------------------
class _Engine:
    """Finds ``count`` faces, largest first (the engine's order); embedding is a no-op."""

    def __init__(self, count: int, vector: list[float]) -> None:
        self.faces = [Face(np.array([0.0, 0.0, 200.0 - i, 200.0 - i]), 0.9, np.zeros((5, 2)),
                           confidence=99.0, embedding=unit(vector)) for i in range(count)]

    def detect(self, image: np.ndarray) -> list[Face]:
        return list(self.faces)

    def embed(self, image: np.ndarray, faces: list[Face]) -> None:
        assert all(f.embedding is not None for f in faces)


class _Counting:
    """A searcher that counts the gallery checks (the searcher's own included)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.checks = inner, 0

    def check(self, collection_id: str) -> Any:
        self.checks += 1
        return self.inner.check(collection_id)

    def search_users(self, *args: Any) -> Any:
        return self.inner.search_users(*args)


def test_recognize_keeps_the_64_largest_faces_and_checks_the_gallery_once(
        world: World) -> None:  # noqa: F811
    _stars(world)
    engine = _Engine(MAX_CELEBRITY_FACES + 6, NEAR_W)
    counting = _Counting(world.searcher)
    gallery = world.gallery()
    gallery._searcher = counting  # type: ignore[assignment]  # count what the gallery asks
    found = CelebrityService(gallery, engine).recognize(  # type: ignore[arg-type]
        np.zeros((300, 300, 3), np.uint8))
    assert MAX_CELEBRITY_FACES == 64
    kept = [face for face, _ in found.celebrities] + found.unrecognized
    assert kept == engine.faces[:64]
    assert counting.checks == 1


def test_confidences_are_clamped_to_percent() -> None:
    face = _face(0, None)
    for given, wire in ((100.4, 100.0), (-0.2, 0.0), (87.12345678, 87.123457)):
        match = CelebrityMatch("W1", parse_catalog("").info("W1"), given)
        assert celebrity(face, match, 200, 100)["MatchConfidence"] == wire
        assert celebrity_detail(face, match, 200, 100)["Confidence"] == wire


def test_match_threshold_defaults_to_the_user_search_default() -> None:
    assert CelebritiesConfig().match_threshold == DEFAULT_USER_THRESHOLD


# ---- a bad catalog is named cleanly ----------------------------------------------------------
def test_a_bad_catalog_names_the_problem_without_pydantic_internals(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as bad:
        parse_catalog("A1: {name: J, nickname: x}\nB-2: {name: K}")
    text = str(bad.value)
    assert "_File" not in text and "errors.pydantic.dev" not in text and "Value error" not in text
    assert "A1.nickname" in text or "letters and digits" in text
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("A1: {name: Jos\xe9}\n".encode("latin-1"))
    with pytest.raises(CatalogError, match="latin1.yaml: not UTF-8"):
        load_catalog(latin)
