"""Wire handlers for users.

CreateUser, DeleteUser, ListUsers, AssociateFaces, DisassociateFaces, SearchUsers and
SearchUsersByImage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.collections.membership import FaceOutcome, Membership
from streamproc.collections.user_search import UserSearchService
from streamproc.collections.users import UserService
from streamproc.rekognition.shapes import face_detail, user, user_match
from streamproc.search.searcher import UserHit


@dataclass
class UserApi:
    """What the user handlers call; built by the daemon."""

    users: UserService
    searches: UserSearchService
    loader: ImageLoader
    face_model_version: str


def create_user(s: UserApi, p: Params, ctx: RequestContext) -> Response:
    """CreateUser."""
    s.users.create_user(p["CollectionId"], p["UserId"], p.get("ClientRequestToken"))
    return {}


def delete_user(s: UserApi, p: Params, ctx: RequestContext) -> Response:
    """DeleteUser."""
    s.users.delete_user(p["CollectionId"], p["UserId"], p.get("ClientRequestToken"))
    return {}


def list_users(s: UserApi, p: Params, ctx: RequestContext) -> Response:
    """ListUsers."""
    page, token = s.users.list_users(p["CollectionId"], p.get("NextToken"),
                                     p.get("MaxResults"))
    out: Response = {"Users": [user(u) for u in page]}
    if token:
        out["NextToken"] = token
    return out


def _failed(outcome: FaceOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {"FaceId": outcome.face_id, "Reasons": outcome.reasons}
    if outcome.user_id is not None:
        out["UserId"] = outcome.user_id
    if outcome.confidence is not None:
        out["Confidence"] = outcome.confidence
    return out


def _membership(result: Membership, done: str, failed: str) -> Response:
    return {done: [{"FaceId": f} for f in result.done],
            failed: [_failed(f) for f in result.failed],
            "UserStatus": result.status.value}


def associate_faces(s: UserApi, p: Params, ctx: RequestContext) -> Response:
    """AssociateFaces."""
    result = s.users.associate_faces(p["CollectionId"], p["UserId"], p["FaceIds"],
                                     p.get("UserMatchThreshold"), p.get("ClientRequestToken"))
    return _membership(result, "AssociatedFaces", "UnsuccessfulFaceAssociations")


def disassociate_faces(s: UserApi, p: Params, ctx: RequestContext) -> Response:
    """DisassociateFaces."""
    result = s.users.disassociate_faces(p["CollectionId"], p["UserId"], p["FaceIds"],
                                        p.get("ClientRequestToken"))
    return _membership(result, "DisassociatedFaces", "UnsuccessfulFaceDisassociations")


def _matches(hits: list[UserHit]) -> list[dict[str, Any]]:
    return [user_match(h.similarity, h.user) for h in hits]


def search_users(s: UserApi, p: Params, ctx: RequestContext) -> Response:
    """SearchUsers (by FaceId or by UserId)."""
    face_id, user_id = p.get("FaceId"), p.get("UserId")
    hits = s.searches.search_users(p["CollectionId"], face_id, user_id,
                                   p.get("UserMatchThreshold"), p.get("MaxUsers"))
    out: Response = {"UserMatches": _matches(hits), "FaceModelVersion": s.face_model_version}
    if face_id is not None:
        out["SearchedFace"] = {"FaceId": face_id}
    if user_id is not None:
        out["SearchedUser"] = {"UserId": user_id}
    return out


def search_users_by_image(s: UserApi, p: Params, ctx: RequestContext) -> Response:
    """SearchUsersByImage."""
    pixels = s.loader.load(p["Image"])
    result = s.searches.search_users_by_image(
        p["CollectionId"], pixels, p.get("UserMatchThreshold"), p.get("MaxUsers"),
        p.get("QualityFilter", "NONE"))
    w, h = result.width, result.height
    out: Response = {"UserMatches": _matches(result.hits),
                     "FaceModelVersion": s.face_model_version,
                     "UnsearchedFaces": [{"FaceDetails": face_detail(f, w, h), "Reasons": r}
                                         for r, f in result.unsearched]}
    if result.face is not None:
        out["SearchedFace"] = {"FaceDetail": face_detail(result.face, w, h)}
    return out


USER_HANDLERS: dict[str, Callable[[UserApi, Params, RequestContext], Response]] = {
    "CreateUser": create_user,
    "DeleteUser": delete_user,
    "ListUsers": list_users,
    "AssociateFaces": associate_faces,
    "DisassociateFaces": disassociate_faces,
    "SearchUsers": search_users,
    "SearchUsersByImage": search_users_by_image,
}
