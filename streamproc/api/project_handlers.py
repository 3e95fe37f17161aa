"""Wire handlers for Custom Labels and adapter projects, their datasets and versions.

Requests are parsed here into :mod:`streamproc.projects.types` values (botocore's model
already checked names, enums and ranges); the rules are :mod:`streamproc.projects`'s. A
project's ARN is written in the request's region, like every ARN here (README: ARNs and
regions); a ``ProjectArn`` spelt for another region, partition or account names nothing
(ResourceNotFoundException), as for tagging; a DatasetArn likewise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.resources import own_resource
from streamproc.api.s3objects import object_ref
from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.projects.dataset_service import DatasetService, NewDataset
from streamproc.projects.datasets import Dataset, DatasetStats, DatasetType, EntryQuery
from streamproc.projects.service import ProjectService
from streamproc.projects.types import AutoUpdate, Feature, NewProject, Project, ProjectQuery
from streamproc.projects.version_result import DataResult, Evaluation, TrainingOutcome
from streamproc.projects.version_spec import (
    AdapterConfig,
    OutputTarget,
    SpecError,
    TrainingInput,
)
from streamproc.projects.versions import NewVersion, Version, VersionQuery
from streamproc.projects.versions_service import VersionService
from streamproc.rekognition.constants import Arns
from streamproc.storage.object_keys import ObjectRef
from streamproc.storage.versions import StoredPolicy

_T = TypeVar("_T")


@dataclass(frozen=True)
class ProjectApi:
    """The services behind the project and dataset operations."""

    projects: ProjectService
    datasets: DatasetService
    versions: VersionService


def new_project(p: Params) -> NewProject:
    """CreateProject's parameters (Feature defaults to CUSTOM_LABELS, as on AWS)."""
    auto = p.get("AutoUpdate")
    return NewProject(p["ProjectName"], Feature(p.get("Feature", Feature.CUSTOM_LABELS.value)),
                      None if auto is None else AutoUpdate(auto), p.get("Tags"))


def project_query(p: Params) -> ProjectQuery:
    """DescribeProjects' filters and page (Features defaults to CUSTOM_LABELS, as on AWS)."""
    names = p.get("ProjectNames")
    features = p.get("Features")
    return ProjectQuery(
        names=None if names is None else tuple(names),
        features=ProjectQuery.features if features is None else tuple(map(Feature, features)),
        token=p.get("NextToken"), max_results=p.get("MaxResults"))


def project_description(project: Project, ctx: RequestContext,
                        datasets: Iterable[Dataset] = ()) -> dict[str, Any]:
    """A ProjectDescription (AutoUpdate only for adapter projects)."""
    out: dict[str, Any] = {
        "ProjectArn": ctx.arns.project(project.name, project.created_ms),
        "CreationTimestamp": project.created_ms / 1000, "Status": project.status.value,
        "Datasets": [dataset_metadata(d, ctx) for d in datasets],
        "Feature": project.feature.value}
    if project.auto_update is not None:
        out["AutoUpdate"] = project.auto_update.value
    return out


def dataset_arn(dataset: Dataset, ctx: RequestContext) -> str:
    """A dataset's ARN in this request's region."""
    return ctx.arns.dataset(dataset.key.project, dataset.key.type.value, dataset.created_ms)


def _status(dataset: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"Status": dataset.status.value,
                           "StatusMessageCode": dataset.code.value}
    if dataset.message:
        out["StatusMessage"] = dataset.message
    return out


def dataset_metadata(dataset: Dataset, ctx: RequestContext) -> dict[str, Any]:
    """A DatasetMetadata (ProjectDescription.Datasets)."""
    return {"CreationTimestamp": dataset.created_ms / 1000,
            "DatasetType": dataset.key.type.value, "DatasetArn": dataset_arn(dataset, ctx),
            **_status(dataset)}


def dataset_description(dataset: Dataset, stats: DatasetStats) -> dict[str, Any]:
    """A DatasetDescription."""
    return {"CreationTimestamp": dataset.created_ms / 1000,
            "LastUpdatedTimestamp": dataset.updated_ms / 1000, **_status(dataset),
            "DatasetStats": {"LabeledEntries": stats.labeled, "TotalEntries": stats.total,
                             "TotalLabels": stats.labels, "ErrorEntries": stats.errors}}


def dataset_id(arn: str, ctx: RequestContext) -> str:
    """``NAME/dataset/TYPE/MS`` of a DatasetArn spelt as this request's region writes it."""
    parsed = own_resource(arn, ctx.arns)
    if parsed is None or parsed[0] != "project" or "/dataset/" not in parsed[1]:
        raise ResourceNotFoundException(f"The dataset {arn} does not exist")
    return parsed[1]


def new_dataset(p: Params, ctx: RequestContext) -> NewDataset:
    """CreateDataset's parameters: no DatasetSource makes an empty dataset."""
    source = p.get("DatasetSource") or {}
    manifest = source.get("GroundTruthManifest")
    copy = source.get("DatasetArn")
    if manifest is not None and copy is not None:
        raise InvalidParameterException(
            "DatasetSource takes a GroundTruthManifest or a DatasetArn, not both")
    if manifest is not None and "S3Object" not in manifest:
        raise InvalidParameterException("GroundTruthManifest needs an S3Object")
    return NewDataset(project_id(p["ProjectArn"], ctx), DatasetType(p["DatasetType"]),
                      None if manifest is None else object_ref(manifest["S3Object"]),
                      None if copy is None else dataset_id(copy, ctx), p.get("Tags"))


def entry_query(p: Params) -> EntryQuery:
    """ListDatasetEntries' filters and page."""
    labels = p.get("ContainsLabels")
    return EntryQuery(None if labels is None else tuple(labels), p.get("Labeled"),
                      p.get("SourceRefContains"), p.get("HasErrors"), p.get("NextToken"),
                      p.get("MaxResults"))


def project_id(arn: str, ctx: RequestContext) -> str:
    """``NAME/CREATION_MS`` of a ProjectArn spelt as this request's region writes it."""
    parsed = own_resource(arn, ctx.arns)
    if parsed is None or parsed[0] != "project":
        raise ResourceNotFoundException(f"The project {arn} does not exist")
    return parsed[1]


def _paged(out: dict[str, Any], token: str | None) -> Response:
    if token:
        out["NextToken"] = token
    return out


def create_project(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """CreateProject."""
    project = s.projects.create(new_project(p))
    return {"ProjectArn": ctx.arns.project(project.name, project.created_ms)}


def describe_projects(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DescribeProjects."""
    page, token = s.projects.describe(project_query(p))
    return _paged({"ProjectDescriptions": [
        project_description(x, ctx, s.datasets.of_project(x)) for x in page]}, token)


def delete_project(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DeleteProject (answers DELETING, as AWS does; it and its datasets are gone at once)."""
    return {"Status": s.projects.delete(project_id(p["ProjectArn"], ctx)).value}


def create_dataset(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """CreateDataset (done when it answers: CREATE_COMPLETE, or CREATE_FAILED and why)."""
    return {"DatasetArn": dataset_arn(s.datasets.create(new_dataset(p, ctx)), ctx)}


def describe_dataset(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DescribeDataset."""
    dataset, stats = s.datasets.describe(dataset_id(p["DatasetArn"], ctx))
    return {"DatasetDescription": dataset_description(dataset, stats)}


def list_dataset_entries(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """ListDatasetEntries."""
    lines, token = s.datasets.entries(dataset_id(p["DatasetArn"], ctx), entry_query(p))
    return _paged({"DatasetEntries": lines}, token)


def list_dataset_labels(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """ListDatasetLabels (image-level labels: BoundingBoxCount is 0)."""
    labels, token = s.datasets.labels(dataset_id(p["DatasetArn"], ctx), p.get("NextToken"),
                                      p.get("MaxResults"))
    return _paged({"DatasetLabelDescriptions": [
        {"LabelName": name, "LabelStats": {"EntryCount": count, "BoundingBoxCount": 0}}
        for name, count in labels]}, token)


def update_dataset_entries(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """UpdateDatasetEntries (done when it answers: UPDATE_COMPLETE, or UPDATE_FAILED)."""
    s.datasets.update(dataset_id(p["DatasetArn"], ctx), p["Changes"]["GroundTruth"])
    return {}


def delete_dataset(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DeleteDataset (gone when it answers)."""
    s.datasets.delete(dataset_id(p["DatasetArn"], ctx))
    return {}


def distribute_dataset_entries(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DistributeDatasetEntries (both datasets UPDATE_COMPLETE when it answers)."""
    s.datasets.distribute([dataset_id(d["Arn"], ctx) for d in p["Datasets"]])
    return {}


# ---- versions ---------------------------------------------------------------------------------
def version_id(arn: str, ctx: RequestContext) -> str:
    """``NAME/version/VERSION/MS`` of a ProjectVersionArn spelt as this request's region writes."""
    return version_resource(arn, ctx.arns)


def version_resource(arn: str, arns: Arns) -> str:
    """``NAME/version/VERSION/MS`` of a ProjectVersionArn as ``arns`` writes it.

    The one rule for every operation and job that names a version: another region's,
    partition's or account's spelling is ResourceNotFoundException.
    """
    parsed = own_resource(arn, arns)
    if parsed is None or parsed[0] != "project" or "/version/" not in parsed[1]:
        raise ResourceNotFoundException(f"The project version {arn} does not exist")
    return parsed[1]


def _no_kms(p: Params) -> None:
    if p.get("KmsKeyId") is not None:
        raise InvalidParameterException(
            "KmsKeyId is not supported: this server has no KMS (output objects are written "
            "as the object store writes them)")


def output_config(p: Params) -> OutputTarget:
    """OutputConfig (botocore's model leaves S3Bucket optional; a training needs it)."""
    return _parsed(OutputTarget.parse, p["OutputConfig"])


def _parsed(parse: Callable[[dict[str, Any]], _T], data: dict[str, Any]) -> _T:
    """``parse(data)``: a request part that does not fit is InvalidParameterException."""
    try:
        return parse(data)
    except SpecError as error:
        raise InvalidParameterException(str(error)) from error


def _optional(parse: Callable[[dict[str, Any]], _T], data: dict[str, Any] | None) -> _T | None:
    return None if data is None else _parsed(parse, data)


def new_version(p: Params, ctx: RequestContext) -> NewVersion:
    """CreateProjectVersion's parameters, parsed into the request's typed parts."""
    _no_kms(p)
    return NewVersion(project_id(p["ProjectArn"], ctx), p["VersionName"], output_config(p),
                      _optional(TrainingInput.parse, p.get("TrainingData")),
                      _optional(TrainingInput.parse, p.get("TestingData")),
                      p.get("VersionDescription"),
                      _optional(AdapterConfig.parse, p.get("FeatureConfig")), p.get("Tags"))


def _output_wire(output: OutputTarget) -> dict[str, Any]:
    prefix = {} if output.prefix is None else {"S3KeyPrefix": output.prefix}
    return {"S3Bucket": output.bucket, **prefix}


def _s3_wire(ref: ObjectRef) -> dict[str, Any]:
    version = {} if ref.version is None else {"Version": ref.version}
    return {"S3Object": {"Bucket": ref.bucket, "Name": ref.name, **version}}


def _data_wire(data: TrainingInput) -> dict[str, Any]:
    """TrainingData / TestingData / ValidationData: Assets (and AutoCreate) as held."""
    out: dict[str, Any] = {}
    if data.assets is not None:
        out["Assets"] = [{"GroundTruthManifest": _s3_wire(ref)} for ref in data.assets]
    if data.auto_create is not None:
        out["AutoCreate"] = data.auto_create
    return out


def _data_result_wire(result: DataResult) -> dict[str, Any]:
    parts = (("Input", result.input), ("Output", result.output),
             ("Validation", result.validation))
    return {key: _data_wire(part) for key, part in parts if part is not None}


def _evaluation_wire(evaluation: Evaluation) -> dict[str, Any]:
    f1 = {} if evaluation.f1 is None else {"F1Score": evaluation.f1}
    summary = {} if evaluation.summary is None else {"Summary": _s3_wire(evaluation.summary)}
    return {**f1, **summary}


def _outcome_wire(outcome: TrainingOutcome, feature: Feature) -> dict[str, Any]:
    """What training produced, in the wire's names (the record of its starts stays in)."""
    parts: tuple[tuple[str, Any], ...] = (
        ("EvaluationResult", None if outcome.evaluation is None else
         _evaluation_wire(outcome.evaluation)),
        ("ManifestSummary", None if outcome.manifest_summary is None else
         _s3_wire(outcome.manifest_summary)),
        ("BillableTrainingTimeInSeconds", outcome.billable_s),
        ("TrainingEndTimestamp", outcome.ended_at),
        ("TrainingDataResult", None if outcome.training_data is None else
         _data_result_wire(outcome.training_data)),
        ("TestingDataResult", None if outcome.testing_data is None else
         _data_result_wire(outcome.testing_data)),
        ("SourceProjectVersionArn", outcome.source_arn),
        # Only an adapter has a base model (a Custom Labels result never records one).
        ("BaseModelVersion", outcome.base_model
         if feature is Feature.CONTENT_MODERATION else None))
    return {key: value for key, value in parts if value is not None}


def version_description(version: Version, ctx: RequestContext) -> dict[str, Any]:
    """A ProjectVersionDescription: what was asked, what training wrote, the status.

    An adapter's BaseModelVersion is the moderation model it was trained on, as its
    training recorded it (not the pack this server runs now; absent until trained).
    """
    ref = version.ref
    out: dict[str, Any] = {
        "ProjectVersionArn": ctx.arns.version(ref.project, ref.name, ref.created_ms),
        "CreationTimestamp": ref.created_ms / 1000, "Status": version.status.value,
        "StatusMessage": version.message, "Feature": version.feature.value,
        "OutputConfig": _output_wire(version.output)}
    if version.description is not None:
        out["VersionDescription"] = version.description
    adapter = version.adapter
    if adapter is not None:
        out["FeatureConfig"] = {"ContentModeration": {"ConfidenceThreshold": adapter.threshold}}
    out.update(_outcome_wire(version.outcome, version.feature))
    if version.min_units is not None:
        out["MinInferenceUnits"] = version.min_units
        out["MaxInferenceUnits"] = version.max_units
    return out


def create_project_version(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """CreateProjectVersion (answers at once: TRAINING_IN_PROGRESS; the runner trains)."""
    version = s.versions.create(new_version(p, ctx), s.datasets.of_project)
    ref = version.ref
    return {"ProjectVersionArn": ctx.arns.version(ref.project, ref.name, ref.created_ms)}


def describe_project_versions(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DescribeProjectVersions."""
    names = p.get("VersionNames")
    page, token = s.versions.describe(VersionQuery(
        project_id(p["ProjectArn"], ctx), None if names is None else tuple(names),
        p.get("NextToken"), p.get("MaxResults")))
    return _paged({"ProjectVersionDescriptions": [
        version_description(v, ctx) for v in page]}, token)


def delete_project_version(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DeleteProjectVersion (answers DELETING; gone at once)."""
    return {"Status": s.versions.delete(version_id(p["ProjectVersionArn"], ctx)).value}


def start_project_version(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """StartProjectVersion (Custom Labels; answers STARTING)."""
    return {"Status": s.versions.start(version_id(p["ProjectVersionArn"], ctx),
                                       p["MinInferenceUnits"],
                                       p.get("MaxInferenceUnits")).value}


def stop_project_version(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """StopProjectVersion (Custom Labels; answers STOPPING)."""
    return {"Status": s.versions.stop(version_id(p["ProjectVersionArn"], ctx)).value}


def copy_project_version(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """CopyProjectVersion (Custom Labels versions, within this account)."""
    _no_kms(p)
    version = s.versions.copy(project_id(p["SourceProjectArn"], ctx),
                              version_id(p["SourceProjectVersionArn"], ctx),
                              project_id(p["DestinationProjectArn"], ctx), p["VersionName"],
                              output_config(p), p.get("Tags"))
    ref = version.ref
    return {"ProjectVersionArn": ctx.arns.version(ref.project, ref.name, ref.created_ms)}


def put_project_policy(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """PutProjectPolicy."""
    policy = s.versions.put_policy(project_id(p["ProjectArn"], ctx), p["PolicyName"],
                                   p.get("PolicyRevisionId"), p["PolicyDocument"])
    return {"PolicyRevisionId": policy.revision}


def _policy(policy: StoredPolicy, project: Project, ctx: RequestContext) -> dict[str, Any]:
    return {"ProjectArn": ctx.arns.project(project.name, project.created_ms),
            "PolicyName": policy.name, "PolicyRevisionId": policy.revision,
            "PolicyDocument": policy.document, "CreationTimestamp": policy.created_ms / 1000,
            "LastUpdatedTimestamp": policy.updated_ms / 1000}


def list_project_policies(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """ListProjectPolicies."""
    page, project, token = s.versions.policies(project_id(p["ProjectArn"], ctx),
                                               p.get("NextToken"), p.get("MaxResults"))
    return _paged({"ProjectPolicies": [_policy(x, project, ctx) for x in page]}, token)


def delete_project_policy(s: ProjectApi, p: Params, ctx: RequestContext) -> Response:
    """DeleteProjectPolicy."""
    s.versions.delete_policy(project_id(p["ProjectArn"], ctx), p["PolicyName"],
                             p.get("PolicyRevisionId"))
    return {}


PROJECT_HANDLERS: dict[str, Callable[[ProjectApi, Params, RequestContext], Response]] = {
    "CreateProject": create_project,
    "DescribeProjects": describe_projects,
    "DeleteProject": delete_project,
    "CreateDataset": create_dataset,
    "DescribeDataset": describe_dataset,
    "ListDatasetEntries": list_dataset_entries,
    "ListDatasetLabels": list_dataset_labels,
    "UpdateDatasetEntries": update_dataset_entries,
    "DeleteDataset": delete_dataset,
    "DistributeDatasetEntries": distribute_dataset_entries,
    "CreateProjectVersion": create_project_version,
    "DescribeProjectVersions": describe_project_versions,
    "DeleteProjectVersion": delete_project_version,
    "StartProjectVersion": start_project_version,
    "StopProjectVersion": stop_project_version,
    "CopyProjectVersion": copy_project_version,
    "PutProjectPolicy": put_project_policy,
    "ListProjectPolicies": list_project_policies,
    "DeleteProjectPolicy": delete_project_policy,
}
