"""Operation handlers: validated request dict in, wire response dict out (moto's responses)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.collections.images import ImageService
from streamproc.collections.service import CollectionService, digest
from streamproc.rekognition.shapes import (
    bounding_box,
    compared_face,
    confidence,
    face_detail,
    face_match,
)
from streamproc.rekognition.shapes import stored_face as face_wire
from streamproc.search.searcher import SearchHit
from streamproc.storage.crops import Crops


@dataclass
class Services:
    """Everything the handlers call; built by the daemon."""

    collections: CollectionService
    images: ImageService
    loader: ImageLoader
    face_model_version: str
    crops: Crops | None = None  # console.face_crops: a crop of each face indexed


def create_collection(s: Services, p: Params, ctx: RequestContext) -> Response:
    """CreateCollection."""
    info = s.collections.create_collection(p["CollectionId"], p.get("Tags", {}))
    return {"StatusCode": 200, "CollectionArn": ctx.arns.collection(info.collection_id),
            "FaceModelVersion": info.face_model_version}


def delete_collection(s: Services, p: Params, ctx: RequestContext) -> Response:
    """DeleteCollection."""
    s.collections.delete_collection(p["CollectionId"])
    if s.crops is not None:
        s.crops.delete_collection(p["CollectionId"])
    return {"StatusCode": 200}


def describe_collection(s: Services, p: Params, ctx: RequestContext) -> Response:
    """DescribeCollection (note the capitalised CollectionARN, as in the model)."""
    info, faces, users = s.collections.describe_collection(p["CollectionId"])
    return {"FaceCount": faces, "FaceModelVersion": info.face_model_version,
            "CollectionARN": ctx.arns.collection(info.collection_id),
            "CreationTimestamp": info.created, "UserCount": users}


def list_collections(s: Services, p: Params, ctx: RequestContext) -> Response:
    """ListCollections."""
    page, token = s.collections.list_collections(p.get("NextToken"), p.get("MaxResults"))
    out: dict[str, Any] = {"CollectionIds": [c.collection_id for c in page],
                           "FaceModelVersions": [c.face_model_version for c in page]}
    if token:
        out["NextToken"] = token
    return out


def index_faces(s: Services, p: Params, ctx: RequestContext) -> Response:
    """IndexFaces."""
    image = p["Image"]
    pixels = s.loader.load(image)
    raw = image.get("Bytes") or repr(sorted(image.get("S3Object", {}).items())).encode()
    result = s.collections.index_faces(
        p["CollectionId"], pixels, digest(raw), p.get("ExternalImageId"), p.get("MaxFaces"),
        p.get("QualityFilter", "AUTO"))
    if s.crops is not None:  # never fails the call: a crop not kept is logged and counted
        for stored, face in result.indexed:
            s.crops.keep(p["CollectionId"], stored.face_id, pixels, face.box)
    w, h = result.width, result.height
    records = [{"Face": face_wire(stored, s.face_model_version),
                "FaceDetail": face_detail(face, w, h)} for stored, face in result.indexed]
    unindexed = [{"Reasons": reasons, "FaceDetail": face_detail(face, w, h)}
                 for reasons, face in result.unindexed]
    return {"FaceRecords": records, "FaceModelVersion": s.face_model_version,
            "UnindexedFaces": unindexed}


def list_faces(s: Services, p: Params, ctx: RequestContext) -> Response:
    """ListFaces."""
    page, token = s.collections.list_faces(p["CollectionId"], p.get("NextToken"),
                                           p.get("MaxResults"), p.get("FaceIds"),
                                           p.get("UserId"))
    out: dict[str, Any] = {"Faces": [face_wire(f, s.face_model_version) for f in page],
                           "FaceModelVersion": s.face_model_version}
    if token:
        out["NextToken"] = token
    return out


def delete_faces(s: Services, p: Params, ctx: RequestContext) -> Response:
    """DeleteFaces."""
    deleted, missing, kept = s.collections.delete_faces(p["CollectionId"], p["FaceIds"])
    if s.crops is not None:
        s.crops.delete(p["CollectionId"], deleted)
    return {"DeletedFaces": deleted,
            "UnsuccessfulFaceDeletions": [
                *({"FaceId": f.face_id, "UserId": f.user_id,
                   "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]} for f in kept),
                *({"FaceId": f, "Reasons": ["FACE_NOT_FOUND"]} for f in missing)]}


def _matches(s: Services, hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [face_match(h.similarity, h.face, s.face_model_version) for h in hits]


def search_faces(s: Services, p: Params, ctx: RequestContext) -> Response:
    """SearchFaces."""
    hits = s.collections.search_faces(p["CollectionId"], p["FaceId"], p.get("MaxFaces"),
                                      p.get("FaceMatchThreshold"))
    return {"SearchedFaceId": p["FaceId"], "FaceMatches": _matches(s, hits),
            "FaceModelVersion": s.face_model_version}


def search_faces_by_image(s: Services, p: Params, ctx: RequestContext) -> Response:
    """SearchFacesByImage."""
    pixels = s.loader.load(p["Image"])
    face, hits = s.collections.search_faces_by_image(
        p["CollectionId"], pixels, p.get("MaxFaces"), p.get("FaceMatchThreshold"),
        p.get("QualityFilter", "NONE"))
    h, w = pixels.shape[:2]
    return {"SearchedFaceBoundingBox": bounding_box(face.box, w, h),
            "SearchedFaceConfidence": confidence(face), "FaceMatches": _matches(s, hits),
            "FaceModelVersion": s.face_model_version}


def detect_faces(s: Services, p: Params, ctx: RequestContext) -> Response:
    """DetectFaces (the default attribute set; the packs have no age/emotion models)."""
    pixels = s.loader.load(p["Image"])
    h, w = pixels.shape[:2]
    return {"FaceDetails": [face_detail(f, w, h) for f in s.images.detect_faces(pixels)]}


def compare_faces(s: Services, p: Params, ctx: RequestContext) -> Response:
    """CompareFaces."""
    source = s.loader.load(p["SourceImage"], "SourceImage")
    target = s.loader.load(p["TargetImage"], "TargetImage")
    result = s.images.compare_faces(source, target, p.get("SimilarityThreshold"),
                                    p.get("QualityFilter", "NONE"))
    sh, sw = source.shape[:2]
    th, tw = target.shape[:2]
    return {
        "SourceImageFace": {"BoundingBox": bounding_box(result.source.box, sw, sh),
                            "Confidence": confidence(result.source)},
        "FaceMatches": [{"Similarity": round(sim, 6), "Face": compared_face(f, tw, th)}
                        for sim, f in result.matches],
        "UnmatchedFaces": [compared_face(f, tw, th) for f in result.unmatched],
    }


HANDLERS: dict[str, Callable[[Services, Params, RequestContext], Response]] = {
    "CreateCollection": create_collection,
    "DeleteCollection": delete_collection,
    "DescribeCollection": describe_collection,
    "ListCollections": list_collections,
    "IndexFaces": index_faces,
    "ListFaces": list_faces,
    "DeleteFaces": delete_faces,
    "SearchFaces": search_faces,
    "SearchFacesByImage": search_faces_by_image,
    "DetectFaces": detect_faces,
    "CompareFaces": compare_faces,
}
