"""Wire handlers for the stream processor operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamproc.api.context import Params, RequestContext, Response
from streamproc.dataplane.regions import regions_from_wire, regions_to_wire
from streamproc.errors import InvalidParameterException
from streamproc.processors.service import ProcessorService
from streamproc.processors.urls import redact
from streamproc.rekognition.constants import (
    FACE_SEARCH,
    face_match_threshold,
    stream_threshold,
)


def create_stream_processor(s: ProcessorService, p: Params, ctx: RequestContext) -> Response:
    """CreateStreamProcessor (face search only)."""
    face_search = p["Settings"].get(FACE_SEARCH)
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
    spec = s.create({
        "name": p["Name"], "input_arn": input_arn, "output_arn": output_arn,
        "collection_id": face_search["CollectionId"],
        "threshold": face_match_threshold(face_search.get("FaceMatchThreshold")),
        "role_arn": p["RoleArn"], "regions": regions_from_wire(p.get("RegionsOfInterest", [])),
        "data_sharing": p.get("DataSharingPreference", {}).get("OptIn"),
        "notification": p.get("NotificationChannel"), "kms_key_id": p.get("KmsKeyId"),
        "kind": FACE_SEARCH,
    }, p.get("Tags", {}))
    return {"StreamProcessorArn": ctx.arns.processor(spec.name)}


def describe_stream_processor(s: ProcessorService, p: Params, ctx: RequestContext) -> Response:
    """DescribeStreamProcessor (URLs redacted; the threshold as applied)."""
    spec, state = s.describe(p["Name"])
    out: dict[str, Any] = {
        "Name": spec.name, "StreamProcessorArn": ctx.arns.processor(spec.name),
        "Status": state.status.value,
        "StatusMessage": state.message, "CreationTimestamp": spec.created,
        "LastUpdateTimestamp": state.updated,
        "Input": {"KinesisVideoStream": {"Arn": redact(spec.input_arn)}},
        "Output": {"KinesisDataStream": {"Arn": redact(spec.output_arn)}},
        "RoleArn": spec.role_arn,
        "Settings": {FACE_SEARCH: {"CollectionId": spec.collection_id,
                                   "FaceMatchThreshold": stream_threshold(spec.threshold)}},
    }
    if spec.regions:
        out["RegionsOfInterest"] = regions_to_wire(spec.regions)
    if spec.data_sharing is not None:
        out["DataSharingPreference"] = {"OptIn": spec.data_sharing}
    if spec.notification:
        out["NotificationChannel"] = spec.notification
    if spec.kms_key_id:
        out["KmsKeyId"] = spec.kms_key_id
    return out


def list_stream_processors(s: ProcessorService, p: Params, ctx: RequestContext) -> Response:
    """ListStreamProcessors."""
    page, token = s.list(p.get("NextToken"), p.get("MaxResults"))
    out: dict[str, Any] = {"StreamProcessors": [{"Name": n, "Status": st} for n, st in page]}
    if token:
        out["NextToken"] = token
    return out


def start_stream_processor(s: ProcessorService, p: Params, ctx: RequestContext) -> Response:
    """StartStreamProcessor."""
    if "StartSelector" in p or "StopSelector" in p:
        raise InvalidParameterException(
            "StartSelector and StopSelector apply to label detection, not face search")
    return {"SessionId": s.start(p["Name"])}


def stop_stream_processor(s: ProcessorService, p: Params, ctx: RequestContext) -> Response:
    """StopStreamProcessor."""
    s.stop(p["Name"])
    return {}


def delete_stream_processor(s: ProcessorService, p: Params, ctx: RequestContext) -> Response:
    """DeleteStreamProcessor."""
    s.delete(p["Name"])
    return {}


def update_stream_processor(s: ProcessorService, p: Params, ctx: RequestContext) -> Response:
    """UpdateStreamProcessor (regions parsed here, as Create's are)."""
    regions = p.get("RegionsOfInterestForUpdate")
    s.update(
        p["Name"], regions_from_wire(regions) if regions is not None else None,
        p.get("DataSharingPreferenceForUpdate", {}).get("OptIn"),
        p.get("ParametersToDelete", []),
        "ConnectedHomeForUpdate" in p.get("SettingsForUpdate", {}))
    return {}


PROCESSOR_HANDLERS: dict[str, Callable[[ProcessorService, Params, RequestContext], Response]] = {
    "CreateStreamProcessor": create_stream_processor,
    "DescribeStreamProcessor": describe_stream_processor,
    "ListStreamProcessors": list_stream_processors,
    "StartStreamProcessor": start_stream_processor,
    "StopStreamProcessor": stop_stream_processor,
    "DeleteStreamProcessor": delete_stream_processor,
    "UpdateStreamProcessor": update_stream_processor,
}
