"""Collections and faces through boto3 against the real daemon and the real test models."""

from __future__ import annotations

import pytest
from conftest import fixture_photo, photo


def test_collection_lifecycle(rek: object) -> None:
    created = rek.create_collection(CollectionId="life-1", Tags={"team": "a"})
    assert created["StatusCode"] == 200
    assert created["CollectionArn"].endswith(":collection/life-1")
    assert created["FaceModelVersion"]
    described = rek.describe_collection(CollectionId="life-1")
    assert described["FaceCount"] == 0
    assert described["CollectionARN"] == created["CollectionArn"]
    assert described["CreationTimestamp"].year >= 2024
    with pytest.raises(rek.exceptions.ResourceAlreadyExistsException):
        rek.create_collection(CollectionId="life-1")
    assert rek.delete_collection(CollectionId="life-1")["StatusCode"] == 200
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_collection(CollectionId="life-1")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_collection(CollectionId="life-1")


def test_list_collections_paginates(rek: object) -> None:
    names = [f"page-{i:02d}" for i in range(7)]
    for name in names:
        rek.create_collection(CollectionId=name)
    try:
        first = rek.list_collections(MaxResults=3)
        assert len(first["CollectionIds"]) == 3 and "NextToken" in first
        assert len(first["FaceModelVersions"]) == 3
        seen = []
        for page in rek.get_paginator("list_collections").paginate(PaginationConfig={
                "PageSize": 3}):
            seen += page["CollectionIds"]
        assert [n for n in seen if n.startswith("page-")] == names
        with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
            rek.list_collections(NextToken="not-a-token")
    finally:
        for name in names:
            rek.delete_collection(CollectionId=name)


def test_detect_faces_finds_six_in_group_photo(rek: object) -> None:
    details = rek.detect_faces(Image={"Bytes": photo("insightface_wheel/t1.jpg")})["FaceDetails"]
    assert len(details) == 6
    areas = [d["BoundingBox"]["Width"] * d["BoundingBox"]["Height"] for d in details]
    assert areas == sorted(areas, reverse=True)
    for d in details:
        box = d["BoundingBox"]
        assert 0 <= box["Left"] < 1 and 0 <= box["Top"] < 1 and 0 < box["Width"] < 0.2
        assert [lm["Type"] for lm in d["Landmarks"]] == [
            "eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"]
        for lm in d["Landmarks"]:
            assert box["Left"] <= lm["X"] <= box["Left"] + box["Width"]
        assert 50 < d["Confidence"] <= 100
        assert set(d["Pose"]) == {"Roll", "Yaw", "Pitch"}
        assert 0 <= d["Quality"]["Brightness"] <= 100 and 0 <= d["Quality"]["Sharpness"] <= 100


def test_same_person_years_apart_is_found_and_impostors_are_not(rek: object,
                                                                  collection: str) -> None:
    for person in ("person_a", "person_b"):
        out = rek.index_faces(CollectionId=collection, Image={"Bytes": fixture_photo(
            f"{person}_1")}, ExternalImageId=person)
        assert len(out["FaceRecords"]) == 1
        face = out["FaceRecords"][0]["Face"]
        assert face["ExternalImageId"] == person and len(face["FaceId"]) == 36
    for person in ("person_a", "person_b"):
        found = rek.search_faces_by_image(CollectionId=collection,
                                          Image={"Bytes": fixture_photo(f"{person}_2")})
        matches = found["FaceMatches"]
        assert [m["Face"]["ExternalImageId"] for m in matches] == [person]
        assert matches[0]["Similarity"] >= 80
    for impostor in ("impostor_1", "impostor_2"):
        found = rek.search_faces_by_image(CollectionId=collection,
                                          Image={"Bytes": fixture_photo(impostor)})
        assert found["FaceMatches"] == []
        assert 0 < found["SearchedFaceBoundingBox"]["Width"] <= 1
        # The impostor is still ranked, just below the bar: a low threshold shows it.
        low = rek.search_faces_by_image(CollectionId=collection, FaceMatchThreshold=0,
                                        Image={"Bytes": fixture_photo(impostor)})
        assert sorted(m["Face"]["ExternalImageId"] for m in low["FaceMatches"]) == [
            "person_a", "person_b"]  # returned, not only below 80 (tests/test_threshold_zero)
        assert all(m["Similarity"] < 80 for m in low["FaceMatches"])


def test_index_faces_max_faces_and_duplicates(rek: object, collection: str) -> None:
    group = {"Bytes": photo("insightface_wheel/t1.jpg")}
    out = rek.index_faces(CollectionId=collection, Image=group, MaxFaces=2,
                          ExternalImageId="group", QualityFilter="NONE")
    assert len(out["FaceRecords"]) == 2
    assert [u["Reasons"] for u in out["UnindexedFaces"]] == [["EXCEEDS_MAX_FACES"]] * 4
    sizes = [r["FaceDetail"]["BoundingBox"]["Width"] * r["FaceDetail"]["BoundingBox"]["Height"]
             for r in out["FaceRecords"]]
    assert sizes == sorted(sizes, reverse=True)
    again = rek.index_faces(CollectionId=collection, Image=group, MaxFaces=2,
                            ExternalImageId="group", QualityFilter="NONE")
    assert {r["Face"]["FaceId"] for r in again["FaceRecords"]} == {
        r["Face"]["FaceId"] for r in out["FaceRecords"]}
    assert rek.describe_collection(CollectionId=collection)["FaceCount"] == 2


def test_list_search_and_delete_faces(rek: object, collection: str) -> None:
    all_six = rek.index_faces(CollectionId=collection,
                              Image={"Bytes": photo("insightface_wheel/t1.jpg")},
                              QualityFilter="NONE")
    ids = [r["Face"]["FaceId"] for r in all_six["FaceRecords"]]
    assert len(ids) == 6
    a1 = rek.index_faces(CollectionId=collection, Image={"Bytes": fixture_photo("person_a_1")},
                         ExternalImageId="a-old")["FaceRecords"][0]["Face"]["FaceId"]
    a2 = rek.index_faces(CollectionId=collection, Image={"Bytes": fixture_photo("person_a_2")},
                         ExternalImageId="a-new")["FaceRecords"][0]["Face"]["FaceId"]
    pages = list(rek.get_paginator("list_faces").paginate(
        CollectionId=collection, PaginationConfig={"PageSize": 3}))
    listed = [f["FaceId"] for p in pages for f in p["Faces"]]
    assert listed == ids + [a1, a2] and len(pages) == 3
    only = rek.list_faces(CollectionId=collection, FaceIds=[a1])["Faces"]
    assert [f["ExternalImageId"] for f in only] == ["a-old"]
    found = rek.search_faces(CollectionId=collection, FaceId=a1)
    assert found["SearchedFaceId"] == a1
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [a2]
    missing = "00000000-0000-0000-0000-000000000000"
    deleted = rek.delete_faces(CollectionId=collection, FaceIds=[a2, missing])
    assert deleted["DeletedFaces"] == [a2]
    assert deleted["UnsuccessfulFaceDeletions"] == [
        {"FaceId": missing, "Reasons": ["FACE_NOT_FOUND"]}]
    assert rek.search_faces(CollectionId=collection, FaceId=a1)["FaceMatches"] == []
    assert rek.describe_collection(CollectionId=collection)["FaceCount"] == 7


def test_compare_faces(rek: object) -> None:
    same = rek.compare_faces(SourceImage={"Bytes": fixture_photo("person_b_1")},
                             TargetImage={"Bytes": fixture_photo("person_b_2")})
    assert len(same["FaceMatches"]) == 1 and same["FaceMatches"][0]["Similarity"] >= 80
    assert same["UnmatchedFaces"] == []
    assert set(same["SourceImageFace"]) == {"BoundingBox", "Confidence"}
    other = rek.compare_faces(SourceImage={"Bytes": fixture_photo("person_b_1")},
                              TargetImage={"Bytes": fixture_photo("impostor_1")})
    assert other["FaceMatches"] == [] and len(other["UnmatchedFaces"]) == 1
    group = rek.compare_faces(SourceImage={"Bytes": fixture_photo("person_a_1")},
                              TargetImage={"Bytes": photo("insightface_wheel/t1.jpg")})
    assert group["FaceMatches"] == [] and len(group["UnmatchedFaces"]) == 6


def test_s3_object_from_local_root(rek: object, collection: str) -> None:
    out = rek.index_faces(CollectionId=collection,
                          Image={"S3Object": {"Bucket": "photos", "Name": "a1.jpg"}})
    assert len(out["FaceRecords"]) == 1
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "missing.jpg"}})
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "../../etc/passwd"}})
    # A key is an opaque string, as in S3: other spellings of a1.jpg are other (missing) keys.
    for name in ("./a1.jpg", "a1.jpg/", "/a1.jpg", "../photos/a1.jpg", "a1.jpg\x00"):
        with pytest.raises((rek.exceptions.InvalidS3ObjectException,
                            rek.exceptions.InvalidParameterException)) as err:
            rek.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": name}})
        assert err.value.response["Error"]["Code"] == (
            "InvalidParameterException" if "\x00" in name else "InvalidS3ObjectException")
    with pytest.raises(rek.exceptions.InvalidParameterException):  # one path segment only
        rek.detect_faces(Image={"S3Object": {"Bucket": "photos/.", "Name": "a1.jpg"}})
