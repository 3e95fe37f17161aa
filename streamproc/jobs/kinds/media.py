"""The media-analysis job: StartMediaAnalysisJob, a manifest of images in the moderation stage.

Its source is a JSON-lines manifest (``Input.S3Object``); each line's image goes through the
moderation pack (``stages.MODERATION``) and the labels at or above MinConfidence become one
line of the results manifest in the output bucket, beside a summary
(:mod:`streamproc.dataplane.stored.manifest`). Nothing goes to the jobs' results table: Get
and List name the two objects the launch wrote.

With ``OperationsConfig.DetectModerationLabels.ProjectVersion`` the images go through that
Custom Moderation adapter: Start checks it as DetectModerationLabels does (an injected
:class:`AdapterCheck`, the daemon's over its project versions: a missing one, or an ARN
that names none here, is ResourceNotFoundException, one still training or failed
ResourceNotReadyException, a Custom Labels version InvalidParameterException; on a server
without adapters every one is ResourceNotFoundException), the launch loads it, and each
results line names it. Start refuses what can never run here: a ``KmsKeyId`` (there is no
KMS here to encrypt with: InvalidParameterException) and an ``S3KeyPrefix`` that makes keys
the object store never writes (``..`` or empty segments: InvalidParameterException). Whatever
needs the objects (the manifest, the output bucket) is found out when the job runs, as AWS
does: the job FAILS with ``FailureDetails`` (:func:`failure_details` reads them back out of
its status message); a manifest key with ``..`` segments names no object there (the local
root never resolves it outside its bucket): INVALID_S3_OBJECT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.manifest import (
    ACCESS_DENIED,
    INTERNAL_ERROR,
    INVALID_MANIFEST,
    INVALID_OUTPUT_CONFIG,
    INVALID_S3_OBJECT,
    ManifestOutcome,
    ManifestTask,
    output_keys,
)
from streamproc.dataplane.stored.stages import MODERATION
from streamproc.errors import InvalidParameterException
from streamproc.jobs.kind import Job, Paging
from streamproc.jobs.request import JobRequest, s3_object
from streamproc.moderation.adapter import no_adapters
from streamproc.moderation.types import DEFAULT_MIN_CONFIDENCE, check_min_confidence, min_confidence
from streamproc.storage.jobs import SUCCEEDED, ResultOrder
from streamproc.storage.object_keys import check_prefix
from streamproc.storage.objects import ObjectRef

MEDIA_ANALYSIS = "MediaAnalysis"  # the kind's name (jobs table, metrics label)
# MediaAnalysisJobFailureCode values a status message may start with ("CODE: message").
FAILURE_CODES = frozenset({
    INTERNAL_ERROR, INVALID_S3_OBJECT, INVALID_MANIFEST, INVALID_OUTPUT_CONFIG,
    "INVALID_KMS_KEY", ACCESS_DENIED, "RESOURCE_NOT_FOUND", "RESOURCE_NOT_READY", "THROTTLED"})
# The stored form's own key (no wire name) for the version's resource id beside its ARN.
VERSION_ID_KEY = "ProjectVersionResource"


@dataclass(frozen=True, kw_only=True)
class MediaAnalysisRequest(JobRequest):
    """StartMediaAnalysisJob, minus the token; ``source`` is the manifest.

    Its stored form is its own (``Input.S3Object``, not a video's ``Video.S3Object``), with
    MinConfidence filled in, so idempotency compares every field.
    """

    output_bucket: str
    output_prefix: str = ""  # OutputConfig.S3KeyPrefix ('' and absent are one request)
    job_name: str | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    project_version: str | None = None  # the adapter's ARN as given (Get and List echo it)
    # NAME/version/VERSION/MS the wire resolved the ARN to with the client's Arns: what the
    # check and the launch name the version by. None with an ARN: a job stored before the
    # id was (its ARN was checked in the configured region; the launch resolves it there).
    version_id: str | None = None
    kms_key_id: str | None = None  # refused at Start (no KMS here)

    def stored(self) -> dict[str, Any]:
        """The stored (and compared) form, in the wire's names."""
        moderation: dict[str, Any] = {"MinConfidence": float(self.min_confidence)}
        if self.project_version is not None:
            moderation["ProjectVersion"] = self.project_version
        if self.version_id is not None:  # a function of the ARN: idempotency is unchanged
            moderation[VERSION_ID_KEY] = self.version_id
        output: dict[str, Any] = {"S3Bucket": self.output_bucket}
        if self.output_prefix:
            output["S3KeyPrefix"] = self.output_prefix
        out: dict[str, Any] = {"Input": {"S3Object": s3_object(self.source)},
                               "OperationsConfig": {"DetectModerationLabels": moderation},
                               "OutputConfig": output}
        if self.job_name is not None:
            out["JobName"] = self.job_name
        if self.kms_key_id is not None:
            out["KmsKeyId"] = self.kms_key_id
        return out

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> MediaAnalysisRequest:
        """Back from the stored form (of a row or a ``job.start`` command)."""
        obj = data["Input"]["S3Object"]
        moderation = data.get("OperationsConfig", {}).get("DetectModerationLabels", {})
        output = data["OutputConfig"]
        return cls(ObjectRef(obj["Bucket"], obj["Name"], obj.get("Version")),
                   output_bucket=output["S3Bucket"],
                   output_prefix=output.get("S3KeyPrefix", ""),
                   job_name=data.get("JobName"),
                   min_confidence=min_confidence(moderation.get("MinConfidence")),
                   project_version=moderation.get("ProjectVersion"),
                   version_id=moderation.get(VERSION_ID_KEY),
                   kms_key_id=data.get("KmsKeyId"))


@dataclass(frozen=True)
class FailureDetails:
    """Why a media-analysis job FAILED: a MediaAnalysisJobFailureCode and a message."""

    code: str
    message: str


def failure_details(status_message: str) -> FailureDetails:
    """A FAILED job's status message read back: ``CODE: message`` (``manifest.failure``).

    A message that names no known code (the job runtime's own: the analyzer went down,
    too many attempts) is an INTERNAL_ERROR with the whole message kept.
    """
    code, sep, rest = status_message.partition(": ")
    if sep and code in FAILURE_CODES:
        return FailureDetails(code, rest)
    return FailureDetails(INTERNAL_ERROR, status_message)


def outcome(job: Job[MediaAnalysisRequest]) -> ManifestOutcome | None:
    """The objects a SUCCEEDED job wrote (None before, or for a FAILED job).

    The launch records them before it succeeds; a job without that record (never expected)
    is answered with the keys :func:`output_keys` makes, so Get never names nothing.
    """
    if job.row.state != SUCCEEDED:
        return None
    stored = ManifestOutcome.from_stored(job.row.video_metadata)
    request = job.request
    results, summary = output_keys(request.output_prefix, job.job_id)
    if stored is None:
        return ManifestOutcome("", request.output_bucket, results, summary)
    return ManifestOutcome(stored.model_version, stored.bucket,
                           stored.results_key or results, stored.summary_key or summary)


class AdapterCheck(Protocol):
    """Whether a ProjectVersion names an adapter this server can run.

    ``jobs`` knows no projects: the daemon injects its own.
    """

    def check(self, version_id: str | None, arn: str) -> None:
        """Raise what DetectModerationLabels would answer for ``arn``; None: it serves.

        ``version_id``: the version's resource id (None: resolve ``arn`` as the server
        spells it).
        """


class MediaAnalysisJobKind:
    """Moderation labels of every image a manifest names, written to the output bucket."""

    api = MEDIA_ANALYSIS
    operation = "StartMediaAnalysisJob"  # its wire half's Start operation too
    input = JobInput.IMAGES
    stage = MODERATION
    request_type = MediaAnalysisRequest
    # Its results are objects, not rows: Get pages nothing (one nominal order).
    paging = Paging({"NONE": ResultOrder.SEQUENCE})

    def __init__(self, model_version: str, adapters: AdapterCheck | None = None) -> None:
        self.model_version = model_version  # ModerationModelVersion: the engine's pack
        self._adapters = adapters  # None: this server serves no adapters

    def check(self, request: MediaAnalysisRequest) -> None:
        """Refuse a KMS key and an adapter that cannot serve; MinConfidence is a percentage."""
        if request.kms_key_id is not None:
            raise InvalidParameterException(
                "KmsKeyId is not supported: this server has no KMS (output objects are "
                "written as the object store writes them)")
        check_min_confidence(request.min_confidence)
        check_prefix(request.output_bucket, request.output_prefix)
        if request.project_version is not None:  # last: it reads the project's version
            self._check_adapter(request.version_id, request.project_version)

    def _check_adapter(self, version_id: str | None, arn: str) -> None:
        if self._adapters is None:
            raise no_adapters(arn)
        self._adapters.check(version_id, arn)

    def results(self, request: MediaAnalysisRequest) -> ManifestTask:
        """The launch's plan beyond its manifest: threshold, output, model and adapter."""
        return ManifestTask(request.min_confidence, request.output_bucket,
                            request.output_prefix, self.model_version,
                            request.project_version, request.version_id)
