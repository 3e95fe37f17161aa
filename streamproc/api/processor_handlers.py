"""Wire handlers for the stream processor and tagging operations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamproc.collections.service import CollectionService
from streamproc.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.processors.service import ProcessorService
from streamproc.processors.urls import redact
from streamproc.storage.tags import TagStore

Params = dict[str, Any]
MAX_TAGS = 200


@dataclass
class ProcessorServices:
    """What the processor handlers call."""

    processors: ProcessorService
    collections: CollectionService
    tags: TagStore


def create_stream_processor(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """CreateStreamProcessor (face search only)."""
    face_search = p["Settings"].get("FaceSearch")
    if not face_search or "CollectionId" not in face_search:
        raise InvalidParameterException(
            "Settings.FaceSearch.CollectionId is required: only face search processors "
            "are supported")
    if "S3Destination" in p["Output"] and "KinesisDataStream" not in p["Output"]:
        raise InvalidParameterException("Output.KinesisDataStream.Arn is required")
    try:
        input_arn = p["Input"]["KinesisVideoStream"]["Arn"]
        output_arn = p["Output"]["KinesisDataStream"]["Arn"]
    except KeyError:
        raise InvalidParameterException(
            "Input.KinesisVideoStream.Arn and Output.KinesisDataStream.Arn are required") from None
    spec = s.processors.create({
        "name": p["Name"], "input_arn": input_arn, "output_arn": output_arn,
        "collection_id": face_search["CollectionId"],
        "threshold": float(face_search.get("FaceMatchThreshold", 80.0)),
        "role_arn": p["RoleArn"], "regions": p.get("RegionsOfInterest", []),
        "data_sharing": p.get("DataSharingPreference", {}).get("OptIn"),
        "notification": p.get("NotificationChannel"), "kms_key_id": p.get("KmsKeyId"),
    }, p.get("Tags", {}))
    return {"StreamProcessorArn": spec.arn}


def describe_stream_processor(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """DescribeStreamProcessor (URLs redacted; threshold as stored, applied at >= 80)."""
    spec, state = s.processors.describe(p["Name"])
    out: dict[str, Any] = {
        "Name": spec.name, "StreamProcessorArn": spec.arn, "Status": state.status.value,
        "StatusMessage": state.message, "CreationTimestamp": spec.created,
        "LastUpdateTimestamp": state.updated,
        "Input": {"KinesisVideoStream": {"Arn": redact(spec.input_arn)}},
        "Output": {"KinesisDataStream": {"Arn": redact(spec.output_arn)}},
        "RoleArn": spec.role_arn,
        "Settings": {"FaceSearch": {"CollectionId": spec.collection_id,
                                    "FaceMatchThreshold": max(spec.threshold, 80.0)}},
    }
    if spec.regions:
        out["RegionsOfInterest"] = spec.regions
    if spec.data_sharing is not None:
        out["DataSharingPreference"] = {"OptIn": spec.data_sharing}
    if spec.notification:
        out["NotificationChannel"] = spec.notification
    if spec.kms_key_id:
        out["KmsKeyId"] = spec.kms_key_id
    return out


def list_stream_processors(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """ListStreamProcessors."""
    page, token = s.processors.list(p.get("NextToken"), p.get("MaxResults"))
    out: dict[str, Any] = {"StreamProcessors": [{"Name": n, "Status": st} for n, st in page]}
    if token:
        out["NextToken"] = token
    return out


def start_stream_processor(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """StartStreamProcessor."""
    if "StartSelector" in p or "StopSelector" in p:
        raise InvalidParameterException(
            "StartSelector and StopSelector apply to label detection, not face search")
    return {"SessionId": s.processors.start(p["Name"])}


def stop_stream_processor(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """StopStreamProcessor."""
    s.processors.stop(p["Name"])
    return {}


def delete_stream_processor(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """DeleteStreamProcessor."""
    s.processors.delete(p["Name"])
    return {}


def update_stream_processor(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """UpdateStreamProcessor."""
    s.processors.update(
        p["Name"], p.get("RegionsOfInterestForUpdate"),
        p.get("DataSharingPreferenceForUpdate", {}).get("OptIn"),
        p.get("ParametersToDelete", []),
        "ConnectedHomeForUpdate" in p.get("SettingsForUpdate", {}))
    return {}


def _resource(s: ProcessorServices, arn: str) -> str:
    if s.processors.entry_by_arn(arn) is not None:
        return arn
    prefix = s.collections.arn("")
    if arn.startswith(prefix) and s.collections.exists(arn[len(prefix):]):
        return arn
    raise ResourceNotFoundException(f"Resource {arn} not found")


def tag_resource(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """TagResource (collections and stream processors)."""
    arn = _resource(s, p["ResourceArn"])
    if len({**s.tags.get(arn), **p["Tags"]}) > MAX_TAGS:
        raise ServiceQuotaExceededException(f"A resource can have at most {MAX_TAGS} tags")
    s.tags.set(arn, p["Tags"])
    return {}


def untag_resource(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """UntagResource."""
    s.tags.remove(_resource(s, p["ResourceArn"]), p["TagKeys"])
    return {}


def list_tags_for_resource(s: ProcessorServices, p: Params) -> dict[str, Any]:
    """ListTagsForResource."""
    return {"Tags": s.tags.get(_resource(s, p["ResourceArn"]))}


PROCESSOR_HANDLERS: dict[str, Callable[[ProcessorServices, Params], dict[str, Any]]] = {
    "CreateStreamProcessor": create_stream_processor,
    "DescribeStreamProcessor": describe_stream_processor,
    "ListStreamProcessors": list_stream_processors,
    "StartStreamProcessor": start_stream_processor,
    "StopStreamProcessor": stop_stream_processor,
    "DeleteStreamProcessor": delete_stream_processor,
    "UpdateStreamProcessor": update_stream_processor,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
