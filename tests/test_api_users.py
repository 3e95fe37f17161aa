"""Users (CreateUser ... SearchUsersByImage) through boto3 against the real daemon."""

from __future__ import annotations

import io
import uuid
from typing import Any

import numpy as np
import pytest
from conftest import client_for, fixture_photo, make_config, photo
from PIL import Image

from streamproc.daemon import Daemon

MISSING_FACE = "00000000-0000-4000-8000-000000000000"


def index(rek: Any, collection: str, name: str, external: str | None = None) -> str:
    out = rek.index_faces(CollectionId=collection, Image={"Bytes": fixture_photo(name)},
                          MaxFaces=1, ExternalImageId=external or name)
    return out["FaceRecords"][0]["Face"]["FaceId"]


def group_faces(rek: Any, collection: str, copies: int) -> list[str]:
    """6 x ``copies`` distinct faces from the group photo (one ExternalImageId per copy)."""
    ids: list[str] = []
    for i in range(copies):
        out = rek.index_faces(CollectionId=collection, ExternalImageId=f"group-{i}",
                              Image={"Bytes": photo("insightface_wheel/t1.jpg")},
                              QualityFilter="NONE")
        ids += [r["Face"]["FaceId"] for r in out["FaceRecords"]]
    return ids


def grey_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def error(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Message"]


def test_user_lifecycle(rek: Any, collection: str) -> None:
    assert body(rek.create_user(CollectionId=collection, UserId="alice")) == {}
    with pytest.raises(rek.exceptions.ConflictException) as err:
        rek.create_user(CollectionId=collection, UserId="alice")
    assert "alice" in error(err)
    assert rek.describe_collection(CollectionId=collection)["UserCount"] == 1
    assert rek.list_users(CollectionId=collection)["Users"] == [
        {"UserId": "alice", "UserStatus": "CREATED"}]
    assert body(rek.delete_user(CollectionId=collection, UserId="alice")) == {}
    assert rek.list_users(CollectionId=collection)["Users"] == []
    assert rek.describe_collection(CollectionId=collection)["UserCount"] == 0
    with pytest.raises(rek.exceptions.ResourceNotFoundException) as err:
        rek.delete_user(CollectionId=collection, UserId="alice")
    assert "alice" in error(err)
    for call in (lambda: rek.create_user(CollectionId="no-such", UserId="u"),
                 lambda: rek.list_users(CollectionId="no-such"),
                 lambda: rek.delete_user(CollectionId="no-such", UserId="u")):
        with pytest.raises(rek.exceptions.ResourceNotFoundException) as err:
            call()
        assert "no-such" in error(err)


def test_associate_reports_each_face(rek: Any, collection: str) -> None:
    a1, a2 = index(rek, collection, "person_a_1"), index(rek, collection, "person_a_2")
    b1, imp = index(rek, collection, "person_b_1"), index(rek, collection, "impostor_1")
    for user in ("alice", "bob"):
        rek.create_user(CollectionId=collection, UserId=user)
    first = body(rek.associate_faces(CollectionId=collection, UserId="alice", FaceIds=[a1]))
    assert first == {"AssociatedFaces": [{"FaceId": a1}], "UnsuccessfulFaceAssociations": [],
                     "UserStatus": "ACTIVE"}
    rek.associate_faces(CollectionId=collection, UserId="bob", FaceIds=[b1])
    second = rek.associate_faces(CollectionId=collection, UserId="alice",
                                 FaceIds=[a1, a2, b1, imp, MISSING_FACE])
    assert second["AssociatedFaces"] == [{"FaceId": a2}]  # a1 (already alice's) is ignored
    failed = {f["FaceId"]: f for f in second["UnsuccessfulFaceAssociations"]}
    assert failed[b1]["Reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"]
    assert failed[b1]["UserId"] == "bob"
    assert failed[MISSING_FACE]["Reasons"] == ["FACE_NOT_FOUND"]
    assert failed[imp]["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert failed[imp]["Confidence"] < 75
    assert set(failed) == {b1, imp, MISSING_FACE}
    # With a threshold of 0 the impostor is taken: the threshold is what refused it.
    forced = rek.associate_faces(CollectionId=collection, UserId="alice", FaceIds=[imp],
                                 UserMatchThreshold=0)
    assert forced["AssociatedFaces"] == [{"FaceId": imp}]
    faces = {f["FaceId"]: f.get("UserId") for f in rek.list_faces(
        CollectionId=collection)["Faces"]}
    assert faces == {a1: "alice", a2: "alice", b1: "bob", imp: "alice"}
    mine = rek.list_faces(CollectionId=collection, UserId="alice")["Faces"]
    assert {f["FaceId"] for f in mine} == {a1, a2, imp}
    assert rek.list_users(CollectionId=collection)["Users"] == [
        {"UserId": "alice", "UserStatus": "ACTIVE"}, {"UserId": "bob", "UserStatus": "ACTIVE"}]
    with pytest.raises(rek.exceptions.ResourceNotFoundException) as err:
        rek.list_faces(CollectionId=collection, UserId="nobody")
    assert "nobody" in error(err)


def test_unknown_user_and_bad_face_lists(rek: Any, collection: str) -> None:
    face = index(rek, collection, "person_a_1")
    for call in (lambda: rek.associate_faces(CollectionId=collection, UserId="ghost",
                                             FaceIds=[face]),
                 lambda: rek.disassociate_faces(CollectionId=collection, UserId="ghost",
                                                FaceIds=[face])):
        with pytest.raises(rek.exceptions.ResourceNotFoundException) as err:
            call()
        assert "ghost" in error(err)
    rek.create_user(CollectionId=collection, UserId="u")
    too_many = [str(uuid.uuid4()) for _ in range(101)]
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.associate_faces(CollectionId=collection, UserId="u", FaceIds=too_many)
    assert "FaceIds" in error(err) and "100" in error(err)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.associate_faces(CollectionId=collection, UserId="bad user!", FaceIds=[face])


def test_a_user_holds_at_most_100_faces(rek: Any, collection: str) -> None:
    faces = group_faces(rek, collection, 17)  # 102 faces
    assert len(set(faces)) == 102
    rek.create_user(CollectionId=collection, UserId="crowd")
    done = rek.associate_faces(CollectionId=collection, UserId="crowd", FaceIds=faces[:100])
    assert len(done["AssociatedFaces"]) == 100
    with pytest.raises(rek.exceptions.ServiceQuotaExceededException) as err:
        rek.associate_faces(CollectionId=collection, UserId="crowd", FaceIds=faces[100:],
                            UserMatchThreshold=0)
    assert "crowd" in error(err) and "100" in error(err)
    assert len(rek.list_faces(CollectionId=collection, UserId="crowd")["Faces"]) == 100


def test_disassociate_and_delete_user_keep_the_faces(rek: Any, collection: str) -> None:
    a1, a2 = index(rek, collection, "person_a_1"), index(rek, collection, "person_a_2")
    b1 = index(rek, collection, "person_b_1")
    rek.create_user(CollectionId=collection, UserId="alice")
    rek.create_user(CollectionId=collection, UserId="bob")
    rek.associate_faces(CollectionId=collection, UserId="alice", FaceIds=[a1, a2])
    rek.associate_faces(CollectionId=collection, UserId="bob", FaceIds=[b1])
    # DeleteFaces refuses a face a user holds.
    refused = rek.delete_faces(CollectionId=collection, FaceIds=[a1])
    assert refused["DeletedFaces"] == []
    assert refused["UnsuccessfulFaceDeletions"] == [
        {"FaceId": a1, "UserId": "alice", "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}]
    out = rek.disassociate_faces(CollectionId=collection, UserId="alice",
                                 FaceIds=[a1, b1, MISSING_FACE])
    assert out["DisassociatedFaces"] == [{"FaceId": a1}]
    assert out["UserStatus"] == "ACTIVE"
    failed = {f["FaceId"]: f["Reasons"] for f in out["UnsuccessfulFaceDisassociations"]}
    assert failed == {b1: ["ASSOCIATED_TO_A_DIFFERENT_USER"], MISSING_FACE: ["FACE_NOT_FOUND"]}
    again = rek.disassociate_faces(CollectionId=collection, UserId="alice", FaceIds=[a1])
    assert again["DisassociatedFaces"] == [] and again["UnsuccessfulFaceDisassociations"] == []
    last = rek.disassociate_faces(CollectionId=collection, UserId="alice", FaceIds=[a2])
    assert last["UserStatus"] == "CREATED"
    # DeleteUser disassociates the user's faces first; the faces stay in the collection.
    rek.delete_user(CollectionId=collection, UserId="bob")
    faces = {f["FaceId"]: f.get("UserId") for f in rek.list_faces(
        CollectionId=collection)["Faces"]}
    assert faces == {a1: None, a2: None, b1: None}
    rek.associate_faces(CollectionId=collection, UserId="alice", FaceIds=[b1])
    assert rek.delete_faces(CollectionId=collection, FaceIds=[a1])["DeletedFaces"] == [a1]


def test_client_request_token_is_idempotent(rek: Any, collection: str) -> None:
    face = index(rek, collection, "person_a_1")
    rek.create_user(CollectionId=collection, UserId="u", ClientRequestToken="create-1")
    rek.create_user(CollectionId=collection, UserId="u", ClientRequestToken="create-1")
    with pytest.raises(rek.exceptions.IdempotentParameterMismatchException) as err:
        rek.create_user(CollectionId=collection, UserId="v", ClientRequestToken="create-1")
    assert "create-1" in error(err)
    first = body(rek.associate_faces(CollectionId=collection, UserId="u", FaceIds=[face],
                                     ClientRequestToken="assoc-1"))
    rek.disassociate_faces(CollectionId=collection, UserId="u", FaceIds=[face])
    # The retry gets the first answer and changes nothing (the face stays disassociated).
    retry = body(rek.associate_faces(CollectionId=collection, UserId="u", FaceIds=[face],
                                     UserMatchThreshold=75, ClientRequestToken="assoc-1"))
    assert retry == first and first["AssociatedFaces"] == [{"FaceId": face}]
    assert rek.list_faces(CollectionId=collection, UserId="u")["Faces"] == []
    with pytest.raises(rek.exceptions.IdempotentParameterMismatchException):
        rek.associate_faces(CollectionId=collection, UserId="u", FaceIds=[face],
                            UserMatchThreshold=10, ClientRequestToken="assoc-1")
    rek.delete_user(CollectionId=collection, UserId="u", ClientRequestToken="delete-1")
    rek.delete_user(CollectionId=collection, UserId="u", ClientRequestToken="delete-1")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_user(CollectionId=collection, UserId="u")  # botocore: a fresh token


def test_search_users(rek: Any, collection: str) -> None:
    a1, a2 = index(rek, collection, "person_a_1"), index(rek, collection, "person_a_2")
    b1, b2 = index(rek, collection, "person_b_1"), index(rek, collection, "person_b_2")
    imp = index(rek, collection, "impostor_1")
    for user, faces in (("alice", [a1]), ("bob", [b1, b2]), ("empty", [])):
        rek.create_user(CollectionId=collection, UserId=user)
        if faces:
            rek.associate_faces(CollectionId=collection, UserId=user, FaceIds=faces)
    by_face = rek.search_users(CollectionId=collection, FaceId=a2)
    assert by_face["SearchedFace"] == {"FaceId": a2} and "SearchedUser" not in by_face
    assert [m["User"] for m in by_face["UserMatches"]] == [
        {"UserId": "alice", "UserStatus": "ACTIVE"}]
    assert by_face["UserMatches"][0]["Similarity"] >= 80
    assert by_face["FaceModelVersion"]
    assert rek.search_users(CollectionId=collection, FaceId=imp)["UserMatches"] == []
    low = rek.search_users(CollectionId=collection, FaceId=imp, UserMatchThreshold=0,
                           MaxUsers=1)["UserMatches"]
    assert len(low) == 1 and low[0]["Similarity"] < 80
    # By user: other users only (never the user itself), best first.
    by_user = rek.search_users(CollectionId=collection, UserId="bob", UserMatchThreshold=0)
    assert by_user["SearchedUser"] == {"UserId": "bob"}
    assert [m["User"]["UserId"] for m in by_user["UserMatches"]] == ["alice"]
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.search_users(CollectionId=collection)
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.search_users(CollectionId=collection, FaceId=a1, UserId="alice")
    with pytest.raises(rek.exceptions.ResourceNotFoundException) as err:
        rek.search_users(CollectionId=collection, UserId="nobody")
    assert "nobody" in error(err)
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.search_users(CollectionId=collection, UserId="empty")
    assert "empty" in error(err)
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.search_users(CollectionId=collection, FaceId=MISSING_FACE)
    assert MISSING_FACE in error(err)


def test_search_users_by_image(rek: Any, collection: str) -> None:
    a1, b1 = index(rek, collection, "person_a_1"), index(rek, collection, "person_b_1")
    for user, face in (("alice", a1), ("bob", b1)):
        rek.create_user(CollectionId=collection, UserId=user)
        rek.associate_faces(CollectionId=collection, UserId=user, FaceIds=[face])
    found = rek.search_users_by_image(CollectionId=collection,
                                      Image={"Bytes": fixture_photo("person_a_2")})
    assert [m["User"]["UserId"] for m in found["UserMatches"]] == ["alice"]
    assert 0 < found["SearchedFace"]["FaceDetail"]["BoundingBox"]["Width"] < 1
    assert found["UnsearchedFaces"] == []
    stranger = rek.search_users_by_image(CollectionId=collection,
                                         Image={"Bytes": fixture_photo("impostor_2")})
    assert stranger["UserMatches"] == [] and "SearchedFace" in stranger
    group = rek.search_users_by_image(CollectionId=collection,
                                      Image={"Bytes": photo("insightface_wheel/t1.jpg")})
    assert [u["Reasons"] for u in group["UnsearchedFaces"]] == [["FACE_NOT_LARGEST"]] * 5
    # No face is not an error here (unlike SearchFacesByImage): no SearchedFace, no matches.
    blank = rek.search_users_by_image(CollectionId=collection, Image={"Bytes": grey_png()})
    assert blank["UserMatches"] == [] and "SearchedFace" not in blank
    assert blank["UnsearchedFaces"] == []
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.search_users_by_image(CollectionId="no-such",
                                  Image={"Bytes": fixture_photo("person_a_2")})


def test_face_matches_name_their_user(rek: Any, collection: str) -> None:
    a1, a2 = index(rek, collection, "person_a_1"), index(rek, collection, "person_a_2")
    rek.create_user(CollectionId=collection, UserId="alice")
    rek.associate_faces(CollectionId=collection, UserId="alice", FaceIds=[a1])
    matches = rek.search_faces(CollectionId=collection, FaceId=a2)["FaceMatches"]
    assert [(m["Face"]["FaceId"], m["Face"]["UserId"]) for m in matches] == [(a1, "alice")]
    by_image = rek.search_faces_by_image(CollectionId=collection,
                                         Image={"Bytes": fixture_photo("person_a_2")})
    assert {m["Face"].get("UserId") for m in by_image["FaceMatches"]} == {"alice", None}


def test_deleting_the_collection_deletes_its_users(rek: Any) -> None:
    rek.create_collection(CollectionId="users-gone")
    rek.create_user(CollectionId="users-gone", UserId="u")
    rek.delete_collection(CollectionId="users-gone")
    rek.create_collection(CollectionId="users-gone")
    try:
        assert rek.list_users(CollectionId="users-gone")["Users"] == []
        rek.create_user(CollectionId="users-gone", UserId="u")  # no ConflictException
    finally:
        rek.delete_collection(CollectionId="users-gone")


def test_users_survive_a_restart(tmp_path: Any) -> None:
    config = make_config(tmp_path)
    first = Daemon(config)
    first.start()
    try:
        rek = client_for(first.endpoint)
        rek.create_collection(CollectionId="kept")
        a1 = index(rek, "kept", "person_a_1")
        rek.create_user(CollectionId="kept", UserId="alice")
        rek.create_user(CollectionId="kept", UserId="later")
        rek.associate_faces(CollectionId="kept", UserId="alice", FaceIds=[a1],
                            ClientRequestToken="before-restart")
        before = rek.search_users_by_image(CollectionId="kept",
                                           Image={"Bytes": fixture_photo("person_a_2")})
    finally:
        first.stop()
    again = Daemon(config)
    again.start()
    try:
        rek = client_for(again.endpoint)
        assert rek.list_users(CollectionId="kept")["Users"] == [
            {"UserId": "alice", "UserStatus": "ACTIVE"},
            {"UserId": "later", "UserStatus": "CREATED"}]
        after = rek.search_users_by_image(CollectionId="kept",
                                          Image={"Bytes": fixture_photo("person_a_2")})
        assert after["UserMatches"] == before["UserMatches"] != []
        assert rek.list_faces(CollectionId="kept")["Faces"][0]["UserId"] == "alice"
        with pytest.raises(rek.exceptions.IdempotentParameterMismatchException):
            rek.associate_faces(CollectionId="kept", UserId="later", FaceIds=[a1],
                                ClientRequestToken="before-restart")
    finally:
        again.stop()
