"""A media-analysis manifest, line by line: the image each line names, or why it names none.

A manifest is JSON lines, ``{"source-ref": "s3://bucket/key"}`` each (other keys are
ignored, as Ground Truth manifests carry more). A line that cannot be analysed never fails
the job: it becomes a :class:`LineError` in the summary's ``errors``, counted in
``invalid-json-lines``. AWS documents no codes for these; they are named as Rekognition
Custom Labels names its JSON-line errors (``ERROR_MISSING_SOURCE_REF``,
``ERROR_INVALID_SOURCE_REF_FORMAT``, ``ERROR_INVALID_IMAGE`` ...). A blank line (nothing but
whitespace) is no JSON line: it is skipped and not counted, though it keeps its number.

Where the results go is decided here too (:func:`output_keys`), and what a launch leaves
behind for Get (:class:`ManifestOutcome`, the job's metadata).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from streamproc.storage.object_lines import ManifestLine
from streamproc.storage.objects import ObjectRef

ERROR_LINE_TOO_LARGE = "ERROR_JSON_LINE_TOO_LARGE"
ERROR_INVALID_JSON_LINE = "ERROR_INVALID_JSON_LINE"
ERROR_MISSING_SOURCE_REF = "ERROR_MISSING_SOURCE_REF"
ERROR_INVALID_SOURCE_REF_FORMAT = "ERROR_INVALID_SOURCE_REF_FORMAT"
ERROR_ACCESS_DENIED = "ERROR_ACCESS_DENIED"  # the bucket is not one objects.buckets allows
ERROR_INVALID_S3_OBJECT = "ERROR_INVALID_S3_OBJECT"  # missing, or cannot be read
ERROR_IMAGE_TOO_LARGE = "ERROR_IMAGE_TOO_LARGE"  # bytes or pixels over the limits
ERROR_INVALID_IMAGE = "ERROR_INVALID_IMAGE"  # not a JPEG or PNG, or undecodable
ERROR_INVALID_IMAGE_DIMENSION = "ERROR_INVALID_IMAGE_DIMENSION"  # under the minimum side

SOURCE_REF = "source-ref"
_SCHEME = "s3://"
# S3Bucket in botocore's model (3-255 of these characters) and S3ObjectName (1-1024).
_BUCKET = re.compile(r"[0-9A-Za-z.\-_]{3,255}")
_MAX_KEY = 1024


@dataclass(frozen=True)
class ImageLine:
    """A line that names an image."""

    number: int
    source_ref: str  # as the manifest wrote it (the results line repeats it)
    ref: ObjectRef


@dataclass(frozen=True)
class LineError:
    """A line that cannot be analysed, as the summary lists it."""

    number: int
    code: str
    message: str
    source_ref: str | None = None  # when the line named one

    def entry(self) -> dict[str, Any]:
        """The summary's error entry.

        ``line-numer`` is the key AWS documents (its typo, kept so that clients written
        against it work); ``line-number`` says the same for everyone else.
        """
        out: dict[str, Any] = {"line-numer": self.number, "line-number": self.number}
        if self.source_ref is not None:
            out[SOURCE_REF] = self.source_ref
        return {**out, "code": self.code, "message": self.message}


def parse_source_ref(value: str) -> ObjectRef | None:
    """``s3://bucket/key`` as an object; None if it is not of that form."""
    if not value.startswith(_SCHEME):
        return None
    bucket, slash, key = value[len(_SCHEME):].partition("/")
    if not slash or not key or len(key) > _MAX_KEY or _BUCKET.fullmatch(bucket) is None:
        return None
    return ObjectRef(bucket, key)


def parse_line(line: ManifestLine, max_line_bytes: int) -> ImageLine | LineError | None:
    """What one manifest line asks for; None for a blank line (not a JSON line)."""
    if line.data is None:
        return LineError(line.number, ERROR_LINE_TOO_LARGE,
                         f"The line is longer than {max_line_bytes} bytes "
                         "(jobs.media_analysis_max_line_bytes)")
    if not line.data.strip():
        return None
    try:
        entry = json.loads(line.data)
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested past the parser's limit
        return LineError(line.number, ERROR_INVALID_JSON_LINE, "The line is not valid JSON")
    if not isinstance(entry, dict):
        return LineError(line.number, ERROR_INVALID_JSON_LINE,
                         "The line is not a JSON object")
    if SOURCE_REF not in entry:
        return LineError(line.number, ERROR_MISSING_SOURCE_REF, "The source-ref key is missing")
    value = entry[SOURCE_REF]
    if not isinstance(value, str):
        return LineError(line.number, ERROR_INVALID_SOURCE_REF_FORMAT,
                         "The source-ref value is not a string")
    ref = parse_source_ref(value)
    if ref is None:
        return LineError(line.number, ERROR_INVALID_SOURCE_REF_FORMAT,
                         "The source-ref value is not of the form s3://bucket/key", value)
    return ImageLine(line.number, value, ref)


def output_keys(prefix: str, job_id: str) -> tuple[str, str]:
    """The results manifest's and the summary's keys in the output bucket.

    AWS does not document its names (Get names them). As Textract does with its
    ``OutputConfig.S3Prefix``, a prefix that does not end in ``/`` gets one before the
    job's folder: ``my-results`` -> ``my-results/JOBID/results.jsonl``; no prefix ->
    ``JOBID/results.jsonl``.
    """
    folder = f"{prefix}/" if prefix and not prefix.endswith("/") else prefix
    return f"{folder}{job_id}/results.jsonl", f"{folder}{job_id}/manifest-summary.json"


@dataclass(frozen=True)
class ManifestOutcome:
    """What a launch wrote, kept as the job's metadata for Get (keys only once written)."""

    model_version: str
    bucket: str
    results_key: str | None = None  # the results manifest, once uploaded
    summary_key: str | None = None  # the summary, once uploaded

    def stored(self) -> dict[str, Any]:
        """The metadata's JSON form."""
        out: dict[str, Any] = {"model_version": self.model_version, "bucket": self.bucket}
        if self.results_key is not None:
            out["results_key"] = self.results_key
        if self.summary_key is not None:
            out["summary_key"] = self.summary_key
        return out

    @classmethod
    def from_stored(cls, data: dict[str, Any] | None) -> ManifestOutcome | None:
        """Back from the metadata (None: the launch wrote none yet)."""
        if not data or "bucket" not in data:
            return None
        return cls(data.get("model_version", ""), data["bucket"], data.get("results_key"),
                   data.get("summary_key"))


@dataclass(frozen=True)
class ManifestTask:
    """A media-analysis launch's plan beyond its manifest (``JobPlan.results`` is one).

    The kind (:mod:`streamproc.jobs.kinds.media`) decides it at launch; the manifest
    runner reads it (``plan.source`` is the manifest). It is a ``ResultFactory`` only in
    form: a manifest's results go to the output bucket, not to the jobs' results table.
    """

    min_confidence: float  # OperationsConfig.DetectModerationLabels.MinConfidence (filled in)
    output_bucket: str  # OutputConfig.S3Bucket
    output_prefix: str  # OutputConfig.S3KeyPrefix ('' when none)
    model_version: str  # ModerationModelVersion of the engine's pack
    # OperationsConfig.DetectModerationLabels.ProjectVersion: the adapter's ARN (the launch
    # loads it, and each results line names it); None: the base model alone.
    project_version: str | None = None
    # Its resource id, resolved at Start in the client's region (None: a job stored before
    # Start resolved it; the adapter source resolves the ARN as the server spells it).
    version_id: str | None = None

    def builder(self) -> Any:
        """No row builder: the manifest runner writes its own output (never called)."""
        msg = "a media-analysis launch builds no result rows"
        raise NotImplementedError(msg)


# The job's FailureDetails.Code values a launch ends with (MediaAnalysisJobFailureCode).
INTERNAL_ERROR = "INTERNAL_ERROR"
INVALID_S3_OBJECT = "INVALID_S3_OBJECT"  # the manifest is missing or cannot be read
RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"  # the adapter is gone (deleted before the launch)
RESOURCE_NOT_READY = "RESOURCE_NOT_READY"  # the adapter has no usable model
INVALID_MANIFEST = "INVALID_MANIFEST"  # it reads, but holds no valid line, or too many
INVALID_OUTPUT_CONFIG = "INVALID_OUTPUT_CONFIG"  # the results cannot be written there
ACCESS_DENIED = "ACCESS_DENIED"  # the manifest's bucket is not one objects.buckets allows


def failure(code: str, message: str) -> str:
    """A launch's error as the job's status message: ``CODE: message``.

    The job runtime carries one string from a launch to its job's end; the media-analysis
    kind reads the code back out of it (:func:`streamproc.jobs.kinds.media.failure_details`).
    """
    return f"{code}: {message}"
