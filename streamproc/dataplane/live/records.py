"""The Rekognition face-search record written to the output topic."""

from __future__ import annotations

from typing import Any

from streamproc.dataplane.live.source import VideoFrame
from streamproc.faces.types import Face
from streamproc.rekognition.shapes import face_detail, face_match
from streamproc.storage.collections import StoredFace

Match = tuple[float, StoredFace]


def face_search_record(stream_arn: str, frame: VideoFrame,
                       faces: list[tuple[Face, list[Match]]], model_version: str
                       ) -> dict[str, Any]:
    """One record for one analysed frame, in the documented Kinesis record format."""
    height, width = frame.image.shape[:2]
    return {
        "InputInformation": {"KinesisVideo": {
            "StreamArn": stream_arn,
            "FragmentNumber": frame.fragment_number,
            "ServerTimestamp": frame.server_ts,
            "ProducerTimestamp": frame.producer_ts,
            "FrameOffsetInSeconds": frame.offset_s,
        }},
        "StreamProcessorInformation": {"Status": "RUNNING"},
        "FaceSearchResponse": [
            {"DetectedFace": face_detail(face, width, height),
             "MatchedFaces": [face_match(sim, stored, model_version) for sim, stored in matches]}
            for face, matches in faces
        ],
    }
