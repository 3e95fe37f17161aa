"""What the API serves: every operation of botocore's Rekognition model, by area.

"Served" is read from the handler tables the daemon binds (``daemon.parts.build_api``), so
the table cannot claim an operation the API does not answer. "Deviates" is data kept here:
a served operation whose behaviour differs from AWS in a way a user must know, with the
page that says how. ``python -m streamproc.tools.docgen.operations --write README.md``
puts the table (links under ``docs/``) between the README's operations markers.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import botocore.session

from streamproc.daemon.jobs import job_wires
from streamproc.daemon.parts import handler_tables
from streamproc.jobs.kinds.moderation import ContentModerationJobKind

START, END = "<!-- operations:start -->", "<!-- operations:end -->"


class Area(NamedTuple):
    """A row of the table: the operations whose names match ``pattern``, and their page."""

    name: str
    page: str
    pattern: str


# First match wins, so the specific areas come before the ones their names would also fit.
AREAS = (
    Area("stream processors", "stream-processors.md", r"StreamProcessor"),
    Area("users", "users.md", r"User|^(Associate|Disassociate)Faces$"),
    Area("content moderation", "moderation.md", r"Moderation|MediaAnalysis"),
    Area("custom labels and projects", "custom-labels.md", r"Project|Dataset|CustomLabels"),
    Area("celebrities", "celebrities.md", r"Celebrit"),
    Area("labels, text, PPE", "labels.md", r"Label|Text|ProtectiveEquipment"),
    Area("stored video", "jobs.md", r"^(Start|Get)(FaceDetection|FaceSearch|PersonTracking"
                                    r"|SegmentDetection)$"),
    Area("face liveness", "api.md", r"Liveness"),
    Area("collections and faces", "api.md", r"Collection|Face"),
    Area("tagging", "api.md", r"Tag|^Untag"),
    Area("other", "api.md", r""),
)

# The order the table shows them in: what is served first, the oldest API first.
SHOWN = ("collections and faces", "users", "stream processors", "stored video",
         "content moderation", "tagging", "custom labels and projects", "labels, text, PPE",
         "celebrities", "face liveness", "other")

DEVIATIONS = {
    "CreateStreamProcessor": (
        "Input.KinesisVideoStream.Arn takes a media URL (RTSP, RTMP, SRT, HLS, a file...) or "
        "an ARN processors.video_streams maps to one; Output.KinesisDataStream.Arn names a "
        "Kafka topic, where the records are published; face search only (no ConnectedHome "
        "label detection), no S3Destination, and NotificationChannel is stored and echoed "
        "but never sent", "stream-processors.md"),
    "StartStreamProcessor": (
        "StartSelector and StopSelector are refused with a message (face search ignores them "
        "on AWS too)", "stream-processors.md"),
    "DetectModerationLabels": (
        "serves only the labels the installed moderation pack detects, and those of the "
        "adapter a ProjectVersion names; HumanLoopConfig is InvalidParameterException",
        "moderation.md"),
    "DetectLabels": (
        "needs the label pack (`streamproc models convert labels`); answers only the labels "
        "its two models detect (the label map); Features IMAGE_PROPERTIES is "
        "InvalidParameterException", "labels.md"),
    "StartPersonTracking": (
        "persons from the label pack's Person boxes (needs the pack, as DetectLabels), tracked "
        "by position and size (no appearance model); frames sampled at jobs.sample_fps; "
        "NotificationChannel.SNSTopicArn names a Kafka topic", "jobs.md"),
    "StartLabelDetection": (
        "needs the label pack, as DetectLabels; frames sampled at jobs.sample_fps; "
        "NotificationChannel.SNSTopicArn names a Kafka topic, as for the face jobs", "jobs.md"),
    "StartContentModeration": (
        "labels are those of the installed moderation pack, on frames sampled at "
        "jobs.sample_fps", "moderation.md"),
    "StartMediaAnalysisJob": (
        "no KMS (KmsKeyId is InvalidParameterException); labels are the installed pack's, "
        "and those of the adapter a ProjectVersion names", "moderation.md"),
    "CreateProject": (
        "AutoUpdate is stored and shown; nothing retrains by itself", "custom-labels.md"),
    "CreateProjectVersion": (
        "trains linear heads on frozen open_nsfw features on this server (not a fine-tuned "
        "network); Custom Labels is image-level classification only, one class an image (no "
        "object detection); KmsKeyId is InvalidParameterException", "custom-labels.md"),
    "StartProjectVersion": (
        "MinInferenceUnits and MaxInferenceUnits are stored and shown but change nothing; "
        "the version is RUNNING at once (or FAILED when its weights do not load on this "
        "server's backbone)", "custom-labels.md"),
    "DetectCustomLabels": (
        "runs in the daemon, on CPU where the moderation pack does (InferenceUnits are "
        "ignored); image-level classes, so no Geometry", "custom-labels.md"),
    "CopyProjectVersion": (
        "copies within this server's one account; project policies are not consulted",
        "custom-labels.md"),
    "PutProjectPolicy": (
        "policies are stored, listed and revision-checked, but gate nothing (one account: "
        "CopyProjectVersion does not consult them)", "custom-labels.md"),
    "StartFaceDetection": (
        "frames sampled at jobs.sample_fps (5 a second); NotificationChannel.SNSTopicArn "
        "names a Kafka topic (the ARN's topic name, or jobs.notification_topics), where the "
        "completion notice is published", "jobs.md"),
    "StartFaceSearch": (
        "frames sampled at jobs.sample_fps (5 a second); NotificationChannel.SNSTopicArn "
        "names a Kafka topic (the ARN's topic name, or jobs.notification_topics), where the "
        "completion notice is published", "jobs.md"),
    "RecognizeCelebrities": (
        "no celebrities are built in: the celebrities are the users of the operator's "
        "gallery collection (celebrities.gallery), named from their catalog; an Id is a "
        "UserId; no Emotions, Smile or OrientationCorrection", "celebrities.md"),
    "GetCelebrityInfo": (
        "answers for the users of the operator's gallery (Id = UserId), from their catalog",
        "celebrities.md"),
    "StartCelebrityRecognition": (
        "recognises the users of the operator's gallery, on frames sampled at "
        "jobs.sample_fps; NotificationChannel.SNSTopicArn names a Kafka topic, as for the "
        "face jobs", "celebrities.md"),
    "DetectFaces": (
        'DetectionAttributes=["ALL"] returns the default attributes: the packs have no age, '
        "emotion or occlusion models", "api.md"),
    "IndexFaces": (
        'DetectionAttributes=["ALL"] returns the default attributes in FaceDetail, as '
        "DetectFaces does", "api.md"),
}


def botocore_operations() -> list[str]:
    """Every operation in botocore's Rekognition service model."""
    model = botocore.session.get_session().get_service_model("rekognition")
    return list(model.operation_names)


def served_operations() -> set[str]:
    """The operations the running API has a handler for (the tables ``build_api`` binds)."""
    # The model version a wire half reports is not part of which operations it serves.
    wires = job_wires(ContentModerationJobKind(""))
    return {operation for table in handler_tables(wires).values() for operation in table}


def area_of(operation: str) -> Area:
    """The first area whose pattern the operation's name matches."""
    return next(area for area in AREAS if re.search(area.pattern, operation))


def _cell(operations: Sequence[str]) -> str:
    return ", ".join(operations)


def table(link_prefix: str = "") -> str:
    """The operations table and the deviations list, as Markdown (``gen:operations``)."""
    served = served_operations()
    rows = ["| area | served | served, deviates | not served |", "| --- | --- | --- | --- |"]
    for area in sorted(AREAS, key=lambda a: SHOWN.index(a.name)):
        ops = sorted(op for op in botocore_operations() if area_of(op) == area)
        if not ops:
            continue
        plain = [op for op in ops if op in served and op not in DEVIATIONS]
        deviates = [op for op in ops if op in served and op in DEVIATIONS]
        missing = [op for op in ops if op not in served]
        name = f"[{area.name}]({link_prefix}{area.page})"
        rows.append(f"| {name} | {_cell(plain)} | {_cell(deviates)} | {_cell(missing)} |")
    notes = [f"- **{op}**: {note} ([more]({link_prefix}{page}))."
             for op, (note, page) in sorted(DEVIATIONS.items())]
    return "\n".join([*rows, "", "Deviations:", "", *notes]) + "\n"


def readme_section() -> str:
    """The table as the README shows it: links into ``docs/``."""
    return table(link_prefix="docs/")


def replace_section(text: str, section: str) -> str:
    """``text`` with what lies between the operations markers replaced by ``section``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        msg = f"no {START} ... {END} markers"
        raise ValueError(msg)
    return f"{text[:start + len(START)]}\n{section}{text[end:]}"


def current_section(text: str) -> str:
    """What lies between the operations markers now (ValueError without them)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        msg = f"no {START} ... {END} markers"
        raise ValueError(msg)
    return text[start + len(START):end].removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    """``--write FILE`` rewrites FILE's operations section; without it, prints the table."""
    parser = argparse.ArgumentParser(prog="python -m streamproc.tools.docgen.operations")
    parser.add_argument("--write", type=Path, metavar="FILE", help="e.g. README.md")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(readme_section())
        return 0
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(replace_section(text, readme_section()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
