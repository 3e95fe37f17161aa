"""Wire handlers on fakes: which parameters reach the services, what the wire gets back.

No daemon: each handler is called with a validated request dict and a fake service that
records its calls and returns canned domain objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fakes import Harness

from streamproc.api import collection_handlers as ch
from streamproc.api import processor_handlers as ph
from streamproc.api import tag_handlers as th
from streamproc.api import user_handlers as uh
from streamproc.api.context import RequestContext, request_context
from streamproc.collections.images import Comparison
from streamproc.collections.membership import FaceOutcome, Membership
from streamproc.collections.service import IndexResult, digest
from streamproc.collections.user_search import ImageUserSearch
from streamproc.dataplane.regions import Region, regions_from_wire
from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.faces.types import Face, Pose, Quality
from streamproc.ledger import Appliers, LocalLedger
from streamproc.rekognition.constants import MAX_TAGS, Arns, UserStatus
from streamproc.search.searcher import SearchHit, UserHit
from streamproc.storage.collections import CollectionInfo, StoredFace
from streamproc.storage.usertable import UserRecord
from streamproc.tags.rules import TagKeys, TagRules
from streamproc.tags.service import TagService

ARNS = Arns("eu-west-1", "123456789012")
CTX = RequestContext(ARNS)
PIXELS = np.zeros((200, 400, 3), np.uint8)  # height 200, width 400
INFO = CollectionInfo("c1", "arn:c1", 1.5, "test_mfn", 128, "7.0", "d")


class Recorder:
    """Any method call is recorded; ``returns[name]`` is what it returns."""

    def __init__(self, **returns: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.returns = returns

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def method(*args: Any) -> Any:
            self.calls.append((name, args))
            return self.returns.get(name)
        return method


def face(x: float = 40.0) -> Face:
    return Face(box=np.array([x, 20.0, x + 100.0, 120.0]), score=0.9,
                landmarks=np.array([[x + 10, 40.0]] * 5), confidence=99.5,
                pose=Pose(1.0, 2.0, 3.0), quality=Quality(50.0, 60.0))


def stored(face_id: str = "f1", user: str | None = None, ext: str | None = "ext") -> StoredFace:
    return StoredFace(1, face_id, "img", ext, {"Width": 0.5}, 99.0, user)


def services(collections: Recorder | None = None, images: Recorder | None = None
             ) -> tuple[ch.Services, Recorder]:
    loader = Recorder(load=PIXELS)
    return ch.Services(collections or Recorder(), images or Recorder(), loader,  # type: ignore
                       "7.0"), loader


# ---- collections ----------------------------------------------------------------------------

def test_collection_lifecycle_handlers() -> None:
    col = Recorder(create_collection=INFO, describe_collection=(INFO, 3, 2))
    s, _ = services(col)
    assert ch.create_collection(s, {"CollectionId": "c1"}, CTX) == {
        "StatusCode": 200, "FaceModelVersion": "7.0",
        "CollectionArn": "arn:aws:rekognition:eu-west-1:123456789012:collection/c1"}
    ch.create_collection(s, {"CollectionId": "c1", "Tags": {"a": "b"}}, CTX)
    assert ch.delete_collection(s, {"CollectionId": "c1"}, CTX) == {"StatusCode": 200}
    assert ch.describe_collection(s, {"CollectionId": "c1"}, CTX) == {
        "FaceCount": 3, "FaceModelVersion": "7.0", "UserCount": 2, "CreationTimestamp": 1.5,
        "CollectionARN": "arn:aws:rekognition:eu-west-1:123456789012:collection/c1"}
    assert col.calls == [("create_collection", ("c1", {})),
                         ("create_collection", ("c1", {"a": "b"})),
                         ("delete_collection", ("c1",)), ("describe_collection", ("c1",))]


@pytest.mark.parametrize("token", [None, "next"])
def test_list_collections(token: str | None) -> None:
    col = Recorder(list_collections=([INFO], token))
    s, _ = services(col)
    out = ch.list_collections(s, {"NextToken": "t", "MaxResults": 3}, CTX)
    assert out["CollectionIds"] == ["c1"] and out["FaceModelVersions"] == ["7.0"]
    assert out.get("NextToken") == token and ("NextToken" in out) == (token is not None)
    assert col.calls == [("list_collections", ("t", 3))]
    ch.list_collections(s, {}, CTX)
    assert col.calls[-1] == ("list_collections", (None, None))


def test_index_faces_passes_its_options_and_reports_both_lists() -> None:
    result = IndexResult(400, 200, [(stored(), face())], [(["LOW_SHARPNESS"], face(200.0))])
    col = Recorder(index_faces=result)
    s, loader = services(col)
    out = ch.index_faces(s, {"CollectionId": "c1", "Image": {"Bytes": b"jpeg"},
                             "ExternalImageId": "ext", "MaxFaces": 2,
                             "QualityFilter": "HIGH"}, CTX)
    assert loader.calls == [("load", ({"Bytes": b"jpeg"},))]
    name, args = col.calls[0]
    assert name == "index_faces" and args[0] == "c1" and args[1] is PIXELS
    assert args[2:] == (digest(b"jpeg"), "ext", 2, "HIGH")
    assert out["FaceModelVersion"] == "7.0"
    (record,) = out["FaceRecords"]
    assert record["Face"]["FaceId"] == "f1" and record["Face"]["ExternalImageId"] == "ext"
    assert record["Face"]["IndexFacesModelVersion"] == "7.0"
    assert record["FaceDetail"]["BoundingBox"] == {"Width": 0.25, "Height": 0.5,
                                                   "Left": 0.1, "Top": 0.1}
    (skipped,) = out["UnindexedFaces"]
    assert skipped["Reasons"] == ["LOW_SHARPNESS"]
    assert skipped["FaceDetail"]["BoundingBox"]["Left"] == 0.5
    ch.index_faces(s, {"CollectionId": "c1", "Image": {"S3Object": {"Name": "k", "Bucket": "b"}}},
                   CTX)
    args = col.calls[1][1]
    assert args[2] == digest(repr(sorted({"Name": "k", "Bucket": "b"}.items())).encode())
    assert args[3:] == (None, None, "AUTO")


@pytest.mark.parametrize("token", [None, "next"])
def test_list_faces(token: str | None) -> None:
    col = Recorder(list_faces=([stored("f1", user="u1"), stored("f2", ext=None)], token))
    s, _ = services(col)
    out = ch.list_faces(s, {"CollectionId": "c1", "NextToken": "t", "MaxResults": 2,
                            "FaceIds": ["f1"], "UserId": "u1"}, CTX)
    assert col.calls == [("list_faces", ("c1", "t", 2, ["f1"], "u1"))]
    assert [f["FaceId"] for f in out["Faces"]] == ["f1", "f2"]
    assert out["Faces"][0]["UserId"] == "u1" and "UserId" not in out["Faces"][1]
    assert "ExternalImageId" not in out["Faces"][1]
    assert out["Faces"][0]["IndexFacesModelVersion"] == "7.0"
    assert out["FaceModelVersion"] == "7.0" and out.get("NextToken") == token
    ch.list_faces(s, {"CollectionId": "c1"}, CTX)
    assert col.calls[-1] == ("list_faces", ("c1", None, None, None, None))


def test_delete_faces_reports_each_face_not_deleted() -> None:
    col = Recorder(delete_faces=(["f1"], ["f9"], [stored("f2", user="u1")]))
    s, _ = services(col)
    assert ch.delete_faces(s, {"CollectionId": "c1", "FaceIds": ["f1", "f2", "f9"]}, CTX) == {
        "DeletedFaces": ["f1"], "UnsuccessfulFaceDeletions": [
            {"FaceId": "f2", "UserId": "u1", "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]},
            {"FaceId": "f9", "Reasons": ["FACE_NOT_FOUND"]}]}
    assert col.calls == [("delete_faces", ("c1", ["f1", "f2", "f9"]))]


def test_search_handlers() -> None:
    hits = [SearchHit(91.23456789, stored("f1")), SearchHit(85.0, stored("f2"))]
    col = Recorder(search_faces=hits, search_faces_by_image=(face(), hits[:1]))
    s, loader = services(col)
    out = ch.search_faces(s, {"CollectionId": "c1", "FaceId": "f0", "MaxFaces": 5,
                              "FaceMatchThreshold": 70.0}, CTX)
    assert col.calls[0] == ("search_faces", ("c1", "f0", 5, 70.0))
    assert out["SearchedFaceId"] == "f0" and out["FaceModelVersion"] == "7.0"
    assert [(m["Similarity"], m["Face"]["FaceId"]) for m in out["FaceMatches"]] == [
        (91.234568, "f1"), (85.0, "f2")]
    assert {m["Face"]["IndexFacesModelVersion"] for m in out["FaceMatches"]} == {"7.0"}
    ch.search_faces(s, {"CollectionId": "c1", "FaceId": "f0"}, CTX)
    assert col.calls[1] == ("search_faces", ("c1", "f0", None, None))
    out = ch.search_faces_by_image(s, {"CollectionId": "c1", "Image": {"Bytes": b"x"},
                                       "MaxFaces": 3, "FaceMatchThreshold": 60.0,
                                       "QualityFilter": "LOW"}, CTX)
    assert col.calls[2][1][0] == "c1" and col.calls[2][1][2:] == (3, 60.0, "LOW")
    assert col.calls[2][1][1] is PIXELS and loader.calls == [("load", ({"Bytes": b"x"},))]
    assert out["SearchedFaceBoundingBox"] == {"Width": 0.25, "Height": 0.5, "Left": 0.1,
                                              "Top": 0.1}
    assert out["SearchedFaceConfidence"] == 99.5 and out["FaceModelVersion"] == "7.0"
    assert [m["Face"]["FaceId"] for m in out["FaceMatches"]] == ["f1"]
    ch.search_faces_by_image(s, {"CollectionId": "c1", "Image": {"Bytes": b"x"}}, CTX)
    assert col.calls[3][1][2:] == (None, None, "NONE")


def test_detect_and_compare_faces() -> None:
    comparison = Comparison(face(), [(97.1234567, face(200.0))], [face(300.0)])
    images = Recorder(detect_faces=[face(), face(200.0)], compare_faces=comparison)
    s, loader = services(images=images)
    out = ch.detect_faces(s, {"Image": {"Bytes": b"x"}}, CTX)
    assert loader.calls == [("load", ({"Bytes": b"x"},))]
    assert images.calls == [("detect_faces", (PIXELS,))]
    assert [d["BoundingBox"]["Left"] for d in out["FaceDetails"]] == [0.1, 0.5]
    assert out["FaceDetails"][0]["Pose"] == {"Roll": 1.0, "Yaw": 2.0, "Pitch": 3.0}
    out = ch.compare_faces(s, {"SourceImage": {"Bytes": b"s"}, "TargetImage": {"Bytes": b"t"},
                               "SimilarityThreshold": 90.0, "QualityFilter": "HIGH"}, CTX)
    assert loader.calls[1:] == [("load", ({"Bytes": b"s"}, "SourceImage")),
                                ("load", ({"Bytes": b"t"}, "TargetImage"))]
    assert images.calls[1] == ("compare_faces", (PIXELS, PIXELS, 90.0, "HIGH"))
    assert out["SourceImageFace"] == {"BoundingBox": {"Width": 0.25, "Height": 0.5,
                                                      "Left": 0.1, "Top": 0.1},
                                      "Confidence": 99.5}
    (match,) = out["FaceMatches"]
    assert match["Similarity"] == 97.123457
    assert set(match["Face"]) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
    assert match["Face"]["BoundingBox"]["Left"] == 0.5
    (unmatched,) = out["UnmatchedFaces"]
    assert unmatched["BoundingBox"]["Left"] == 0.75 and "Pose" in unmatched
    ch.compare_faces(s, {"SourceImage": {"Bytes": b"s"}, "TargetImage": {"Bytes": b"t"}}, CTX)
    assert images.calls[2][1][2:] == (None, "NONE")


# ---- users --------------------------------------------------------------------------------

def user_api(users: Recorder | None = None, searches: Recorder | None = None
             ) -> uh.UserApi:
    return uh.UserApi(users or Recorder(), searches or Recorder(),  # type: ignore[arg-type]
                      Recorder(load=PIXELS), "7.0")  # type: ignore[arg-type]


def test_user_lifecycle_and_listing() -> None:
    users = Recorder(list_users=([UserRecord(1, "u1", 1.0, 0), UserRecord(2, "u2", 1.0, 3)],
                                 "next"))
    api = user_api(users)
    assert uh.create_user(api, {"CollectionId": "c1", "UserId": "u1",
                                "ClientRequestToken": "tok"}, CTX) == {}
    assert uh.delete_user(api, {"CollectionId": "c1", "UserId": "u1"}, CTX) == {}
    uh.delete_user(api, {"CollectionId": "c1", "UserId": "u2", "ClientRequestToken": "t2"}, CTX)
    out = uh.list_users(api, {"CollectionId": "c1", "NextToken": "t", "MaxResults": 2}, CTX)
    assert out == {"Users": [{"UserId": "u1", "UserStatus": "CREATED"},
                             {"UserId": "u2", "UserStatus": "ACTIVE"}], "NextToken": "next"}
    users.returns["list_users"] = ([], None)
    assert uh.list_users(api, {"CollectionId": "c1"}, CTX) == {"Users": []}
    assert users.calls == [("create_user", ("c1", "u1", "tok")),
                           ("delete_user", ("c1", "u1", None)),
                           ("delete_user", ("c1", "u2", "t2")),
                           ("list_users", ("c1", "t", 2)), ("list_users", ("c1", None, None))]


def test_associate_and_disassociate_report_each_face() -> None:
    result = Membership(["f1"], [FaceOutcome("f2", ["LOW_MATCH_CONFIDENCE"], confidence=40.5),
                                 FaceOutcome("f3", ["ASSOCIATED_TO_A_DIFFERENT_USER"], "u9")],
                        UserStatus.ACTIVE)
    users = Recorder(associate_faces=result, disassociate_faces=result)
    api = user_api(users)
    out = uh.associate_faces(api, {"CollectionId": "c1", "UserId": "u1", "FaceIds": ["f1"],
                                   "UserMatchThreshold": 70.0, "ClientRequestToken": "t"}, CTX)
    assert out == {"AssociatedFaces": [{"FaceId": "f1"}], "UserStatus": "ACTIVE",
                   "UnsuccessfulFaceAssociations": [
                       {"FaceId": "f2", "Reasons": ["LOW_MATCH_CONFIDENCE"], "Confidence": 40.5},
                       {"FaceId": "f3", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
                        "UserId": "u9"}]}
    out = uh.disassociate_faces(api, {"CollectionId": "c1", "UserId": "u1", "FaceIds": ["f1"]},
                                CTX)
    assert set(out) == {"DisassociatedFaces", "UnsuccessfulFaceDisassociations", "UserStatus"}
    assert users.calls == [("associate_faces", ("c1", "u1", ["f1"], 70.0, "t")),
                           ("disassociate_faces", ("c1", "u1", ["f1"], None))]
    uh.associate_faces(api, {"CollectionId": "c1", "UserId": "u1", "FaceIds": ["f1"]}, CTX)
    assert users.calls[-1][1][3:] == (None, None)
    uh.disassociate_faces(api, {"CollectionId": "c1", "UserId": "u1", "FaceIds": ["f2"],
                                "ClientRequestToken": "t3"}, CTX)
    assert users.calls[-1] == ("disassociate_faces", ("c1", "u1", ["f2"], "t3"))


def test_user_searches() -> None:
    hits = [UserHit(88.1234567, UserRecord(1, "u1", 1.0, 2))]
    found = ImageUserSearch(400, 200, face(), hits, [(["SMALL_BOUNDING_BOX"], face(300.0))])
    searches = Recorder(search_users=hits, search_users_by_image=found)
    api = user_api(searches=searches)
    out = uh.search_users(api, {"CollectionId": "c1", "FaceId": "f1",
                                "UserMatchThreshold": 50.0, "MaxUsers": 3}, CTX)
    assert out == {"UserMatches": [{"Similarity": 88.123457,
                                    "User": {"UserId": "u1", "UserStatus": "ACTIVE"}}],
                   "FaceModelVersion": "7.0", "SearchedFace": {"FaceId": "f1"}}
    out = uh.search_users(api, {"CollectionId": "c1", "UserId": "u1"}, CTX)
    assert out["SearchedUser"] == {"UserId": "u1"} and "SearchedFace" not in out
    assert searches.calls[:2] == [("search_users", ("c1", "f1", None, 50.0, 3)),
                                  ("search_users", ("c1", None, "u1", None, None))]
    out = uh.search_users_by_image(api, {"CollectionId": "c1", "Image": {"Bytes": b"x"},
                                         "UserMatchThreshold": 60.0, "MaxUsers": 2,
                                         "QualityFilter": "HIGH"}, CTX)
    assert searches.calls[2][1][:2] == ("c1", PIXELS) and searches.calls[2][1][2:] == (
        60.0, 2, "HIGH")
    assert api.loader.calls == [("load", ({"Bytes": b"x"},))]  # type: ignore[attr-defined]
    assert out["SearchedFace"]["FaceDetail"]["BoundingBox"]["Left"] == 0.1
    assert out["UnsearchedFaces"][0]["Reasons"] == ["SMALL_BOUNDING_BOX"]
    assert out["UnsearchedFaces"][0]["FaceDetails"]["BoundingBox"]["Left"] == 0.75
    assert out["FaceModelVersion"] == "7.0" and len(out["UserMatches"]) == 1
    searches.returns["search_users_by_image"] = ImageUserSearch(400, 200)
    out = uh.search_users_by_image(api, {"CollectionId": "c1", "Image": {"Bytes": b"x"}}, CTX)
    assert "SearchedFace" not in out and out["UserMatches"] == []
    assert searches.calls[3][1][2:] == (None, None, "NONE")


# ---- tags ---------------------------------------------------------------------------------

class Tags:
    def __init__(self) -> None:
        self.kept: dict[str, dict[str, str]] = {}

    def get(self, key: str) -> dict[str, str]:
        return dict(self.kept.get(key, {}))

    def set(self, key: str, tags: dict[str, str]) -> None:
        self.kept.setdefault(key, {}).update(tags)

    def remove(self, key: str, keys: list[str]) -> None:
        for k in keys:
            self.kept.get(key, {}).pop(k, None)


ARN_X, ARN_Y = ARNS.collection("x"), ARNS.collection("y")


def test_tags_go_to_the_key_the_arn_resolves_to_and_are_bounded() -> None:
    tags = Tags()  # ARNs as CTX writes them (another region's: test_policy.py)
    appliers = Appliers()  # the limit is the tags.set applier's (tags/rules.py)
    TagRules(tags).register(appliers)  # type: ignore[arg-type]
    keys = TagKeys(ARNS, {"collection": {"x": "key-x"}.get})
    s = TagService(tags, LocalLedger(appliers), keys)  # type: ignore[arg-type]
    assert th.tag_resource(s, {"ResourceArn": ARN_X, "Tags": {"a": "1"}}, CTX) == {}
    assert tags.kept == {"key-x": {"a": "1"}}
    assert th.list_tags_for_resource(s, {"ResourceArn": ARN_X}, CTX) == {"Tags": {"a": "1"}}
    assert th.untag_resource(s, {"ResourceArn": ARN_X, "TagKeys": ["a"]}, CTX) == {}
    assert tags.kept == {"key-x": {}}
    for call in (th.tag_resource, th.untag_resource, th.list_tags_for_resource):
        with pytest.raises(ResourceNotFoundException, match=f"^Resource {ARN_Y} not found$"):
            call(s, {"ResourceArn": ARN_Y, "Tags": {}, "TagKeys": []}, CTX)
    many = {f"k{i}": "v" for i in range(MAX_TAGS - 1)}
    th.tag_resource(s, {"ResourceArn": ARN_X, "Tags": many}, CTX)
    th.tag_resource(s, {"ResourceArn": ARN_X, "Tags": {"k0": "again", "last": "v"}}, CTX)
    assert len(tags.kept["key-x"]) == MAX_TAGS  # replacing a key does not count twice
    with pytest.raises(ServiceQuotaExceededException, match=f"at most {MAX_TAGS} tags"):
        th.tag_resource(s, {"ResourceArn": ARN_X, "Tags": {"one-more": "v"}}, CTX)
    assert len(tags.kept["key-x"]) == MAX_TAGS


# ---- processors -----------------------------------------------------------------------------

def request(name: str = "cam", **extra: Any) -> dict[str, Any]:
    body = {"Name": name, "RoleArn": "arn:aws:iam::123456789012:role/r",
            "Input": {"KinesisVideoStream": {"Arn": "rtsp://u:pw@cam/live?token=t"}},
            "Output": {"KinesisDataStream": {"Arn": "kafka://k:1/out"}},
            "Settings": {"FaceSearch": {"CollectionId": "people"}}}
    body.update(extra)
    return body


def test_create_and_describe_stream_processor(h: Harness) -> None:
    out = ph.create_stream_processor(h.service, request(
        RegionsOfInterest=[{"BoundingBox": {"Left": 0.1}}], DataSharingPreference={"OptIn": True},
        NotificationChannel={"SNSTopicArn": "arn:sns"}, KmsKeyId="kms-1",
        Tags={"site": "hq"}), CTX)
    assert out == {"StreamProcessorArn":
                   "arn:aws:rekognition:eu-west-1:123456789012:streamprocessor/cam"}
    desc = ph.describe_stream_processor(h.service, {"Name": "cam"}, CTX)
    spec, state = h.service.describe("cam")
    assert desc == {
        "Name": "cam", "StreamProcessorArn": out["StreamProcessorArn"], "Status": "STOPPED",
        "StatusMessage": "", "CreationTimestamp": spec.created,
        "LastUpdateTimestamp": state.updated,
        "Input": {"KinesisVideoStream": {"Arn": "rtsp://***:***@cam/live?token=***"}},
        "Output": {"KinesisDataStream": {"Arn": "kafka://k:1/out"}},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "Settings": {"FaceSearch": {"CollectionId": "people", "FaceMatchThreshold": 80.0}},
        "RegionsOfInterest": [{"BoundingBox": {"Left": 0.1}}],
        "DataSharingPreference": {"OptIn": True},
        "NotificationChannel": {"SNSTopicArn": "arn:sns"}, "KmsKeyId": "kms-1"}
    assert h.tags.get(spec.arn) == {"site": "hq"}
    assert spec.input_arn == "rtsp://u:pw@cam/live?token=t"  # kept whole, shown redacted


@pytest.mark.parametrize(("asked", "kept", "shown"), [(None, 80.0, 80.0), (50, 50.0, 80.0),
                                                      (80, 80.0, 80.0), (95.5, 95.5, 95.5)])
def test_the_threshold_is_kept_as_asked_and_applied_at_80_or_more(
        h: Harness, asked: float | None, kept: float, shown: float) -> None:
    settings: dict[str, Any] = {"CollectionId": "people"}
    if asked is not None:
        settings["FaceMatchThreshold"] = asked
    ph.create_stream_processor(h.service, request(Settings={"FaceSearch": settings}), CTX)
    assert h.service.describe("cam")[0].threshold == kept
    desc = ph.describe_stream_processor(h.service, {"Name": "cam"}, CTX)
    assert desc["Settings"]["FaceSearch"]["FaceMatchThreshold"] == shown
    h.service.start("cam")
    h.turn()
    assert h.runtime.latest("cam").plan.threshold == shown  # what the analyzer applies


def test_optional_settings_are_absent_when_not_given(h: Harness) -> None:
    ph.create_stream_processor(h.service, request(), CTX)
    desc = ph.describe_stream_processor(h.service, {"Name": "cam"}, CTX)
    for key in ("RegionsOfInterest", "DataSharingPreference", "NotificationChannel",
                "KmsKeyId"):
        assert key not in desc
    ph.update_stream_processor(h.service, {"Name": "cam",
                                           "DataSharingPreferenceForUpdate": {"OptIn": False}},
                               CTX)
    desc = ph.describe_stream_processor(h.service, {"Name": "cam"}, CTX)
    assert desc["DataSharingPreference"] == {"OptIn": False}


ONLY_FACE_SEARCH = ("^Settings.FaceSearch.CollectionId is required: only face search "
                    "processors are supported$")


@pytest.mark.parametrize(("change", "message"), [
    ({"Settings": {"ConnectedHome": {"Labels": ["PERSON"]}}}, ONLY_FACE_SEARCH),
    ({"Settings": {"FaceSearch": {"FaceMatchThreshold": 90}}}, ONLY_FACE_SEARCH),
    ({"Output": {"S3Destination": {"Bucket": "b"}}}, "^Output.KinesisDataStream.Arn is required$"),
    ({"Output": {}}, "^Input.KinesisVideoStream.Arn and Output.KinesisDataStream.Arn are"),
    ({"Input": {}}, "^Input.KinesisVideoStream.Arn and Output.KinesisDataStream.Arn are"),
])
def test_create_refuses_what_is_not_a_face_search_processor(h: Harness, change: dict[str, Any],
                                                            message: str) -> None:
    with pytest.raises(InvalidParameterException, match=message):
        ph.create_stream_processor(h.service, request(**change), CTX)
    assert h.service.list(None, None) == ([], None)
    both = request(Output={"S3Destination": {"Bucket": "b"},
                           "KinesisDataStream": {"Arn": "kafka://k:1/out"}})
    ph.create_stream_processor(h.service, both, CTX)


def test_start_stop_update_delete_and_list_handlers(h: Harness) -> None:
    for name in ("a", "b", "c"):
        body = request(name, Input={"KinesisVideoStream": {"Arn": f"tcp://{name}:1"}},
                       Output={"KinesisDataStream": {"Arn": f"kafka://k:1/{name}"}})
        ph.create_stream_processor(h.service, body, CTX)
    for selector in ("StartSelector", "StopSelector"):
        with pytest.raises(InvalidParameterException, match="^StartSelector and StopSelector "
                           "apply to label detection, not face search$"):
            ph.start_stream_processor(h.service, {"Name": "a", selector: {}}, CTX)
    assert h.status("a") == "STOPPED"
    session = ph.start_stream_processor(h.service, {"Name": "a"}, CTX)["SessionId"]
    assert session == h.registry.require("a").session_id and h.status("a") == "STARTING"
    out = ph.list_stream_processors(h.service, {"MaxResults": 2}, CTX)
    assert out["StreamProcessors"] == [{"Name": "a", "Status": "STARTING"},
                                       {"Name": "b", "Status": "STOPPED"}]
    last = ph.list_stream_processors(h.service, {"NextToken": out["NextToken"]}, CTX)
    assert last == {"StreamProcessors": [{"Name": "c", "Status": "STOPPED"}]}
    assert ph.stop_stream_processor(h.service, {"Name": "a"}, CTX) == {}
    assert h.status("a") == "STOPPING"
    region = {"BoundingBox": {"Left": 0.5, "Top": 0.0, "Width": 0.5, "Height": 1.0}}
    assert ph.update_stream_processor(h.service, {
        "Name": "b", "RegionsOfInterestForUpdate": [region]}, CTX) == {}
    assert ph.describe_stream_processor(h.service, {"Name": "b"}, CTX)[
        "RegionsOfInterest"] == [region]
    ph.update_stream_processor(h.service, {"Name": "b",
                                           "ParametersToDelete": ["RegionsOfInterest"]}, CTX)
    assert h.service.describe("b")[0].regions == ()
    with pytest.raises(InvalidParameterException, match="ConnectedHomeForUpdate"):
        ph.update_stream_processor(h.service, {"Name": "b", "SettingsForUpdate": {
            "ConnectedHomeForUpdate": {"Labels": ["PET"]}}}, CTX)
    ph.update_stream_processor(h.service, {"Name": "b", "SettingsForUpdate": {}}, CTX)
    assert ph.delete_stream_processor(h.service, {"Name": "c"}, CTX) == {}
    assert h.registry.get("c") is None


class _Updates:
    """Stands in for ProcessorService: records what the Update handler hands it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def update(self, *args: Any) -> None:
        self.calls.append(args)


def test_the_update_handler_hands_the_service_parsed_regions() -> None:
    """Parsed at the edge, as Create's are: the service, the command and the spec get Regions."""
    got = _Updates()
    region = {"Polygon": [{"X": 0, "Y": 0}, {"X": 1}, {"Y": 1}]}
    asked: list[dict[str, Any]] = [{"RegionsOfInterestForUpdate": [region]},
                                   {"RegionsOfInterestForUpdate": []},
                                   {"DataSharingPreferenceForUpdate": {"OptIn": True}}]
    for params in asked:
        ph.update_stream_processor(got, {"Name": "cam", **params}, CTX)  # type: ignore[arg-type]
    first, cleared, untouched = got.calls
    assert first == ("cam", regions_from_wire([region]), None, [], False)
    assert isinstance(first[1][0], Region) and first[1][0].wire == region
    assert cleared[1] == () and untouched[1:3] == (None, True)


# ---- the request context --------------------------------------------------------------------

def test_arns_are_written_in_the_signed_region_when_it_can_be_one() -> None:
    def header(region: str) -> dict[str, str]:
        return {"authorization": f"AWS4-HMAC-SHA256 Credential=AK/20260101/{region}/"
                                 f"rekognition/aws4_request, SignedHeaders=host, "
                                 f"Signature={'0' * 64}"}

    assert request_context(header("ap-south-1"), ARNS).arns == Arns("ap-south-1",
                                                                    "123456789012")
    assert request_context(header("EU_WEST"), ARNS).arns == ARNS
    assert request_context({}, ARNS).arns == ARNS


def test_an_arn_spelt_for_another_region_is_not_found_by_its_own_name() -> None:
    tags = Tags()
    appliers = Appliers()
    TagRules(tags).register(appliers)  # type: ignore[arg-type]
    keys = TagKeys(ARNS, {"collection": {"x": "key-x"}.get})
    s = TagService(tags, LocalLedger(appliers), keys)  # type: ignore[arg-type]
    elsewhere = ARN_X.replace(":eu-west-1:", ":us-east-1:")
    for call in (th.tag_resource, th.untag_resource, th.list_tags_for_resource):
        with pytest.raises(ResourceNotFoundException, match=f"^Resource {elsewhere} not found$"):
            call(s, {"ResourceArn": elsewhere, "Tags": {"a": "1"}, "TagKeys": ["a"]}, CTX)
    assert tags.kept == {}
