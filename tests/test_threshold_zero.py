"""A threshold of exactly 0 returns the impostors (a falsy 0 is never read as "use 80").

Every search here runs against faces of *other* people: at the default threshold nothing
comes back; at 0 every one of them does, with its low Similarity, up to MaxFaces. So a
``threshold or 80`` anywhere between boto3 and the search makes these tests fail.
"""

from __future__ import annotations

from typing import Any

from conftest import fixture_photo, photo

from streamproc.api.job_kinds.faces import FaceSearchWire
from streamproc.jobs.kinds.faces import FaceSearchRequest
from streamproc.storage.objects import ObjectRef

OTHERS = ("person_a_1", "person_b_1", "impostor_2")  # none is impostor_1


def _index(rek: Any, collection: str, names: tuple[str, ...]) -> dict[str, str]:
    """Index one face per photo; FaceId -> photo name."""
    ids = {}
    for name in names:
        out = rek.index_faces(CollectionId=collection, Image={"Bytes": fixture_photo(name)},
                              MaxFaces=1, ExternalImageId=name)
        ids[out["FaceRecords"][0]["Face"]["FaceId"]] = name
    return ids


def _low_and_ordered(matches: list[dict[str, Any]]) -> list[float]:
    sims = [m["Similarity"] for m in matches]
    assert all(0 <= s < 80 for s in sims), sims
    assert sims == sorted(sims, reverse=True), sims
    return sims


def test_search_faces_by_image_at_0_returns_every_other_person(rek: Any, collection: str
                                                                ) -> None:
    _index(rek, collection, OTHERS)
    stranger = {"Bytes": fixture_photo("impostor_1")}
    assert rek.search_faces_by_image(CollectionId=collection, Image=stranger)[
        "FaceMatches"] == []
    low = rek.search_faces_by_image(CollectionId=collection, Image=stranger,
                                    FaceMatchThreshold=0)["FaceMatches"]
    assert sorted(m["Face"]["ExternalImageId"] for m in low) == sorted(OTHERS)
    _low_and_ordered(low)
    two = rek.search_faces_by_image(CollectionId=collection, Image=stranger,
                                    FaceMatchThreshold=0, MaxFaces=2)["FaceMatches"]
    assert [m["Face"]["FaceId"] for m in two] == [m["Face"]["FaceId"] for m in low[:2]]


def test_search_faces_at_0_returns_every_other_face_but_itself(rek: Any, collection: str
                                                               ) -> None:
    ids = _index(rek, collection, (*OTHERS, "impostor_1"))
    searched = next(f for f, name in ids.items() if name == "impostor_1")
    assert rek.search_faces(CollectionId=collection, FaceId=searched)["FaceMatches"] == []
    low = rek.search_faces(CollectionId=collection, FaceId=searched, FaceMatchThreshold=0)
    assert low["SearchedFaceId"] == searched
    assert {m["Face"]["FaceId"] for m in low["FaceMatches"]} == set(ids) - {searched}
    _low_and_ordered(low["FaceMatches"])
    one = rek.search_faces(CollectionId=collection, FaceId=searched, FaceMatchThreshold=0,
                           MaxFaces=1)["FaceMatches"]
    assert [m["Face"]["FaceId"] for m in one] == [low["FaceMatches"][0]["Face"]["FaceId"]]


def test_compare_faces_at_0_matches_every_target_face(rek: Any) -> None:
    source = {"Bytes": fixture_photo("impostor_1")}
    target = {"Bytes": fixture_photo("person_a_1")}
    default = rek.compare_faces(SourceImage=source, TargetImage=target)
    assert default["FaceMatches"] == [] and len(default["UnmatchedFaces"]) == 1
    low = rek.compare_faces(SourceImage=source, TargetImage=target, SimilarityThreshold=0)
    assert len(low["FaceMatches"]) == 1 and low["UnmatchedFaces"] == []
    _low_and_ordered(low["FaceMatches"])
    group = rek.compare_faces(SourceImage=source, SimilarityThreshold=0,
                              TargetImage={"Bytes": photo("insightface_wheel/t1.jpg")})
    assert len(group["FaceMatches"]) == 6 and group["UnmatchedFaces"] == []
    _low_and_ordered(group["FaceMatches"])


def test_search_users_at_0_returns_every_other_user(rek: Any, collection: str) -> None:
    ids = _index(rek, collection, (*OTHERS, "impostor_1"))
    users = {name: face for face, name in ids.items() if name != "impostor_1"}
    for name, face in users.items():
        user = name.replace("_", "-")
        rek.create_user(CollectionId=collection, UserId=user)
        rek.associate_faces(CollectionId=collection, UserId=user, FaceIds=[face])
    stranger = {"Bytes": fixture_photo("impostor_1")}
    everyone = {n.replace("_", "-") for n in users}
    assert rek.search_users_by_image(CollectionId=collection, Image=stranger)[
        "UserMatches"] == []
    low = rek.search_users_by_image(CollectionId=collection, Image=stranger,
                                    UserMatchThreshold=0)["UserMatches"]
    assert {m["User"]["UserId"] for m in low} == everyone
    _low_and_ordered(low)
    searched = next(f for f, name in ids.items() if name == "impostor_1")
    by_face = rek.search_users(CollectionId=collection, FaceId=searched,
                               UserMatchThreshold=0)["UserMatches"]
    assert {m["User"]["UserId"] for m in by_face} == everyone
    _low_and_ordered(by_face)
    by_user = rek.search_users(CollectionId=collection, UserId="person-a-1",
                               UserMatchThreshold=0, MaxUsers=1)["UserMatches"]
    assert len(by_user) == 1 and by_user[0]["User"]["UserId"] != "person-a-1"


def test_a_face_search_job_keeps_a_threshold_of_0() -> None:
    """StartFaceSearch does not raise a low threshold (only stream processors do)."""
    wire = {"Video": {"S3Object": {"Bucket": "b", "Name": "v.mp4"}}, "CollectionId": "c",
            "FaceMatchThreshold": 0}
    request = FaceSearchWire().request(wire)
    assert request.threshold == 0.0
    assert request.stored()["FaceMatchThreshold"] == 0.0
    assert FaceSearchRequest.from_stored(request.stored()).threshold == 0.0
    assert request != FaceSearchRequest(ObjectRef("b", "v.mp4"), collection_id="c")
