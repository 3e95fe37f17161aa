"""The media-analysis job's wire half: Start/Get/List MediaAnalysisJob(s).

Its Get answers a ``MediaAnalysisJobDescription`` (not a video job's shape), which List
answers for each job too; both are rendered by :func:`description`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.project_handlers import version_resource
from streamproc.api.s3objects import object_ref
from streamproc.jobs.kind import Job
from streamproc.jobs.kinds.media import (
    MEDIA_ANALYSIS,
    MediaAnalysisJobKind,
    MediaAnalysisRequest,
    failure_details,
    outcome,
)
from streamproc.jobs.request import s3_object
from streamproc.jobs.service import Page, ResultsQuery
from streamproc.moderation.types import min_confidence
from streamproc.storage.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED

# The wire's MediaAnalysisJobStatus for each stored state (CREATED is never answered: a
# job is QUEUED from the moment Start stored it).
WIRE_STATUS = {QUEUED: "QUEUED", RUNNING: "IN_PROGRESS", SUCCEEDED: "SUCCEEDED",
               FAILED: "FAILED"}
LIST_MAX_RESULTS = 100  # ListMediaAnalysisJobs' MaxResults: its default and cap (1-100)


class MediaAnalysisWire:
    """StartMediaAnalysisJob / GetMediaAnalysisJob / ListMediaAnalysisJobs."""

    api = MEDIA_ANALYSIS
    start_operation = MediaAnalysisJobKind.operation
    get_operation = "GetMediaAnalysisJob"
    list_operation = "ListMediaAnalysisJobs"
    list_max_results = LIST_MAX_RESULTS
    list_key = "MediaAnalysisJobs"

    def request(self, p: Params) -> MediaAnalysisRequest:
        """JobName, OperationsConfig, Input, OutputConfig, KmsKeyId (MinConfidence: 50).

        Outside a request (no region to read ProjectVersion in) the version's id is left
        to the check and the launch, which resolve the ARN as the server spells it.
        """
        moderation = p["OperationsConfig"].get("DetectModerationLabels", {})
        output = p["OutputConfig"]
        return MediaAnalysisRequest(
            object_ref(p["Input"]["S3Object"]),
            output_bucket=output["S3Bucket"], output_prefix=output.get("S3KeyPrefix", ""),
            job_name=p.get("JobName"),
            min_confidence=min_confidence(moderation.get("MinConfidence")),
            project_version=moderation.get("ProjectVersion"), kms_key_id=p.get("KmsKeyId"))

    def resolved(self, p: Params, ctx: RequestContext) -> MediaAnalysisRequest:
        """Start's request: ProjectVersion resolved to its resource id in ``ctx.arns``.

        The client's region, as DetectModerationLabels reads it: another spelling is
        ResourceNotFoundException. The ARN is kept as given, for Get and List to echo.
        """
        request = self.request(p)
        arn = request.project_version
        if arn is None:
            return request
        return replace(request, version_id=version_resource(arn, ctx.arns))

    def query(self, p: Params) -> ResultsQuery:
        """Get has no paging: its results are objects in the output bucket."""
        return ResultsQuery()

    def response(self, page: Page) -> Response:
        """The job's description."""
        return description(page.job)

    def describe(self, job: Job[MediaAnalysisRequest]) -> Response:
        """One element of List's MediaAnalysisJobs: the same description."""
        return description(job)


def description(job: Job[MediaAnalysisRequest]) -> Response:
    """A ``MediaAnalysisJobDescription``: Get's whole answer, and List's each element."""
    row, request = job.row, job.request
    moderation: dict[str, Any] = {"MinConfidence": request.min_confidence}
    if request.project_version is not None:
        moderation["ProjectVersion"] = request.project_version
    output: dict[str, Any] = {"S3Bucket": request.output_bucket}
    if request.output_prefix:
        output["S3KeyPrefix"] = request.output_prefix
    out: Response = {"JobId": row.job_id}
    if request.job_name is not None:
        out["JobName"] = request.job_name
    out |= {"OperationsConfig": {"DetectModerationLabels": moderation},
            "Status": WIRE_STATUS[row.state]}
    if row.state == FAILED:
        details = failure_details(row.status_message)
        out["FailureDetails"] = {"Code": details.code, "Message": details.message}
    out["CreationTimestamp"] = row.created
    if row.finished is not None:
        out["CompletionTimestamp"] = row.finished
    out |= {"Input": {"S3Object": s3_object(request.source)}, "OutputConfig": output}
    if request.kms_key_id is not None:
        out["KmsKeyId"] = request.kms_key_id
    return out | _written(job)


def _written(job: Job[MediaAnalysisRequest]) -> Response:
    """Results and ManifestSummary, once the job SUCCEEDED."""
    done = outcome(job)
    if done is None:
        return {}
    results: Response = {"S3Object": {"Bucket": done.bucket, "Name": done.results_key}}
    if done.model_version:
        results["ModelVersions"] = {"Moderation": done.model_version}
    return {"Results": results,
            "ManifestSummary": {"S3Object": {"Bucket": done.bucket, "Name": done.summary_key}}}
