"""ListFaces with FaceIds and UserId filters: pages at exact multiples, tokens followed."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import photo
from test_paging import pages


@pytest.fixture
def six_faces(rek: Any, collection: str) -> list[str]:
    out = rek.index_faces(CollectionId=collection, QualityFilter="NONE",
                          Image={"Bytes": photo("insightface_wheel/t1.jpg")})
    faces = [r["Face"]["FaceId"] for r in out["FaceRecords"]]
    assert len(faces) == 6
    return faces


def test_list_faces_of_a_user_pages_at_exact_multiples(rek: Any, collection: str,
                                                       six_faces: list[str]) -> None:
    listed = [f["FaceId"] for f in rek.list_faces(CollectionId=collection)["Faces"]]
    # Members spread over the listing (1st, 3rd, 4th, 6th), so a filter applied after the
    # page was cut would show as short or empty pages.
    members = [listed[i] for i in (0, 2, 3, 5)]
    rek.create_user(CollectionId=collection, UserId="u1")
    rek.associate_faces(CollectionId=collection, UserId="u1", FaceIds=members,
                        UserMatchThreshold=0)
    for size, count in ((1, 4), (2, 2), (3, 2), (4, 1), (5, 1)):
        got = pages(rek, "list_faces", "Faces", size, CollectionId=collection, UserId="u1")
        assert [len(p) for p in got] == [min(size, 4 - i * size) for i in range(count)]
        assert [f["FaceId"] for p in got for f in p] == members
        assert all(f["UserId"] == "u1" for p in got for f in p)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_faces(CollectionId=collection, UserId="nobody")


def test_list_faces_by_face_ids_pages_at_exact_multiples(rek: Any, collection: str,
                                                         six_faces: list[str]) -> None:
    listed = [f["FaceId"] for f in rek.list_faces(CollectionId=collection)["Faces"]]
    wanted = [listed[i] for i in (1, 4, 5)]
    missing = "11111111-2222-3333-4444-555555555555"
    for size, count in ((1, 3), (2, 2), (3, 1), (4, 1)):
        got = pages(rek, "list_faces", "Faces", size, CollectionId=collection,
                    FaceIds=[*wanted, missing])
        assert len(got) == count
        assert [f["FaceId"] for p in got for f in p] == wanted  # insertion order, no others
    first = rek.list_faces(CollectionId=collection, FaceIds=wanted, MaxResults=2)
    rest = rek.list_faces(CollectionId=collection, FaceIds=wanted, MaxResults=2,
                          NextToken=first["NextToken"])
    assert [f["FaceId"] for f in first["Faces"] + rest["Faces"]] == wanted
    assert "NextToken" not in rest
