"""Which resources a request touches, for policy evaluation: the one place that decides it.

As in Rekognition's IAM reference: a ``CollectionId`` names a collection ARN, a processor's
``Name`` a stream processor ARN, tagging calls the resource their ``ResourceArn`` names;
CreateStreamProcessor touches both the processor and the collection it searches. A
project is named by its ``ProjectArn``; CreateProject, whose ARN's creation time is not
known yet, touches ``...:project/NAME/*`` (so ``project/cam-*`` allows it, and a Deny on
one project's exact ARN does not stop a new project of that name). A dataset is named by
its ``DatasetArn`` (``project/NAME/dataset/TYPE/MS``, under its project's ARN pattern
``project/NAME/*``); CreateDataset touches its project and the dataset it copies, if any,
and DistributeDatasetEntries both datasets. A project version is named by its
``ProjectVersionArn`` (``project/NAME/version/VERSION/MS``, also under ``project/NAME/*``);
CreateProjectVersion touches its project, CopyProjectVersion the source project, the
source version and the destination project; the project policy operations their
project; DetectCustomLabels its ``ProjectVersionArn``, DetectModerationLabels its
adapter's ``ProjectVersion`` and StartMediaAnalysisJob the one in
``OperationsConfig.DetectModerationLabels`` (so a key denied ``project/NAME/*`` cannot use
its versions, in a job either).
Every
resource is evaluated under the one ARN this module builds for it (``server.region``,
its partition, ``server.account_id``), whatever region or partition a ``ResourceArn``
spells: a Deny on ``...:us-east-1:...:collection/x`` also holds for the ``eu-west-1`` or
``arn:aws-cn:`` spelling of the same collection. Operations on no particular
resource (List*, DetectFaces, CompareFaces) touch ``*``, which only a statement with
``Resource: "*"`` (or a pattern matching the literal ``*``) allows, as in IAM.

A deviation from IAM: the celebrity operations (:data:`GALLERY_OPERATIONS`) name no
collection, but they identify the users of the ``celebrities.gallery`` collection, so they
touch its ARN beside ``*`` and a Deny on ``collection/<gallery>`` holds for them too
(docs/security.md).
"""

from __future__ import annotations

from typing import Any

from streamproc.rekognition.constants import Arns

SERVICE = "rekognition"
ANY = "*"
# The operations that read the gallery's users (their Ids and faces) without a CollectionId.
GALLERY_OPERATIONS = frozenset({"RecognizeCelebrities", "GetCelebrityInfo",
                                "StartCelebrityRecognition", "GetCelebrityRecognition"})


def action_name(operation: str) -> str:
    """``SearchFaces`` -> ``rekognition:SearchFaces``."""
    return f"{SERVICE}:{operation}"


def request_resources(operation: str, params: dict[str, Any], arns: Arns) -> list[str]:
    """The ARNs a (validated) request touches, or ``["*"]``."""
    found: list[str] = []
    collection = params.get("CollectionId")
    if isinstance(collection, str):
        found.append(arns.collection(collection))
    name = params.get("Name")
    if isinstance(name, str) and "StreamProcessor" in operation:
        found.append(arns.processor(name))
    settings = params.get("Settings")
    if isinstance(settings, dict):
        search = settings.get("FaceSearch")
        if isinstance(search, dict) and isinstance(search.get("CollectionId"), str):
            found.append(arns.collection(search["CollectionId"]))
    project = params.get("ProjectName")
    if isinstance(project, str) and operation == "CreateProject":
        found.append(arns.resource("project", f"{project}/*"))
    for arn in _named_arns(params):
        parsed = arns.parse(arn)  # this account's, any region or partition
        found.append(arn if parsed is None else resource_arn(*parsed, arns))
    if operation in GALLERY_OPERATIONS and arns.gallery is not None:
        return [*(found or [ANY]), arns.collection(arns.gallery)]
    return found or [ANY]


def _named_arns(params: dict[str, Any]) -> list[str]:
    """The ARNs a request names: ResourceArn, ProjectArn, DatasetArn and the nested ones."""
    named = [params.get(key) for key in ("ResourceArn", "ProjectArn", "DatasetArn",
                                         "ProjectVersionArn", "ProjectVersion",
                                         "SourceProjectArn",
                                         "SourceProjectVersionArn", "DestinationProjectArn")]
    source = params.get("DatasetSource")
    if isinstance(source, dict):
        named.append(source.get("DatasetArn"))
    operations = params.get("OperationsConfig")
    if isinstance(operations, dict):  # StartMediaAnalysisJob's adapter
        moderation = operations.get("DetectModerationLabels")
        if isinstance(moderation, dict):
            named.append(moderation.get("ProjectVersion"))
    datasets = params.get("Datasets")
    if isinstance(datasets, list):
        named.extend(d.get("Arn") for d in datasets if isinstance(d, dict))
    return [arn for arn in named if isinstance(arn, str)]


def resource_arn(kind: str, resource_id: str, arns: Arns) -> str:
    """The ARN ``arns`` writes for a resource of this type (:meth:`Arns.parse`'s pair)."""
    return arns.resource(kind, resource_id)


def own_resource(arn: str, arns: Arns) -> tuple[str, str] | None:
    """``(kind, name)`` if ``arn`` is exactly the ARN ``arns`` writes for that resource.

    The one check of a ``ResourceArn``'s partition, region and account: ARNs are written
    in the request's region (see :mod:`streamproc.api.context`), so a client uses the
    ones it was given; any other spelling names nothing here (ResourceNotFoundException).
    """
    parsed = arns.parse(arn)
    if parsed is None or resource_arn(*parsed, arns) != arn:
        return None
    return parsed
