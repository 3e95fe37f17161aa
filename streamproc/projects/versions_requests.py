"""Version and policy requests checked and put in stored form, before anything is submitted.

:class:`.versions_service.VersionService` calls these: each raises the domain error the
API answers (InvalidParameterException, ResourceInUseException, AccessDeniedException,
MalformedPolicyDocumentException) or returns what a command will carry. They read no
ledger and no store; the only I/O is the object store's output check.
"""

from __future__ import annotations

import json
from typing import Any

from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    MalformedPolicyDocumentException,
    OutputNotWritable,
    ResourceInUseException,
)
from streamproc.projects.datasets import Dataset, DatasetType
from streamproc.projects.types import Feature, Project
from streamproc.projects.version_spec import AdapterConfig, OutputTarget, TrainingInput
from streamproc.projects.versions import PINNED, TRAINED, NewVersion, Version
from streamproc.projects.versions_inputs import TrainingFailure, manifest_refs
from streamproc.storage.object_keys import check_prefix, writable_key
from streamproc.storage.objects import ObjectStore


def check_new(objects: ObjectStore, project: Project, request: NewVersion) -> None:
    """CreateProjectVersion's checks: FeatureConfig, OutputConfig, TestingData, manifests."""
    _check_feature_config(project, request.feature_config)
    check_output(objects, request.output, project.name, request.name)
    _check_testing(request.testing)
    for data in (request.training, request.testing):
        try:
            manifest_refs(data)
        except TrainingFailure as error:
            raise InvalidParameterException(str(error)) from error


def check_output(objects: ObjectStore, output: OutputTarget, project: str,
                 version: str) -> None:
    """The training's files can go where they will: ``{prefix}{project}/{version}/``.

    Checked with the names now (a name ``.`` or ``..`` makes the key unwritable), not
    found out after the training: InvalidParameterException, as a malformed prefix is
    (:func:`~streamproc.storage.object_keys.check_prefix`, StartMediaAnalysisJob's rule
    too); a bucket this server may not write to: AccessDeniedException.
    """
    bucket = output.bucket
    check_prefix(bucket, output.prefix or "")  # malformed: the request's fault, asked first
    try:
        objects.check_output(bucket, output.prefix or "")
    except OutputNotWritable as error:
        raise AccessDeniedException(f"OutputConfig: {error.message}") from error
    longest = output.key(project, version, f"EvaluationSummary-{project}-{version}.json")
    for key in (output.key(project, version, "manifest-summary.json"), longest):
        if not writable_key(bucket, key):
            raise InvalidParameterException(
                f"OutputConfig: the training's files would go to {bucket}/{key}, a key "
                "this store does not write (a '.' or '..' segment from the project or "
                "version name, or over 1024 characters)")


def check_name_free(taken: bool, project: str, name: str) -> None:
    """A new version's name is not one the project has (``taken``): ResourceInUseException.

    One rule for the ``version.create`` applier and for CopyProjectVersion's pre-check
    (made before the copy's files are written, so a taken name writes none).
    """
    if taken:
        raise ResourceInUseException(f"The project {project} already has a version {name}")


def check_copyable(source: Version) -> None:
    """Only a trained version copies (ResourceInUseException otherwise).

    One rule for the applier and for CopyProjectVersion's pre-check before its files.
    """
    if source.status not in TRAINED:
        raise ResourceInUseException(
            f"The version to copy is {source.status.value}: only a trained one copies")


def new_spec(project: Project, request: NewVersion,
             held: dict[DatasetType, Dataset]) -> dict[str, Any]:
    """The version's stored spec: the request's parts in their stored form, and its pins.

    Keys and their order are those records were always written with, so a command logged
    for the same request has the same bytes.
    """
    spec: dict[str, Any] = {"OutputConfig": request.output.stored()}
    if request.training is not None:
        spec["TrainingData"] = request.training.stored()
    if request.testing is not None:
        spec["TestingData"] = request.testing.stored()
    if request.description is not None:
        spec["VersionDescription"] = request.description
    adapter = _feature_config(project, request)
    if adapter is not None:
        spec["FeatureConfig"] = adapter.stored()
    spec[PINNED] = _pinned(request, held)
    return spec


def _pinned(request: NewVersion, held: dict[DatasetType, Dataset]) -> dict[str, int]:
    """The ``updated_ms`` of each dataset the version will read (a set without Assets).

    No Assets and no TRAIN dataset is InvalidParameterException (nothing to train on); a
    dataset being created, updated or deleted is ResourceInUseException (read now, it
    would be half-filled). The test set needs no dataset (it is then split off).
    """
    pins = {}
    wanted = [(DatasetType.TRAIN, request.training)]
    if request.testing is None or not request.testing.auto:
        wanted.append((DatasetType.TEST, request.testing))
    for type_, data in wanted:
        if data is not None and data.manifests:
            continue
        dataset = held.get(type_)
        if dataset is None and type_ is DatasetType.TRAIN:
            raise InvalidParameterException(
                "TrainingData names no Assets and the project has no TRAIN dataset: there "
                "is nothing to train on")
        if dataset is None:
            continue
        if dataset.status.busy:
            raise ResourceInUseException(
                f"The project's {type_.value} dataset is {dataset.status.value}: train once "
                "its work is done")
        pins[type_.value] = dataset.updated_ms
    return pins


def _check_testing(testing: TrainingInput | None) -> None:
    """TestingData takes AutoCreate or Assets, not both (which test set is meant?).

    botocore documents AutoCreate as Rekognition splitting the training data to make the
    test set; with Assets as well the request says two things, so it is refused rather
    than one silently dropped.
    """
    if testing is not None and testing.auto and testing.manifests:
        raise InvalidParameterException(
            "TestingData: give AutoCreate=true (a test set split from the training data) or "
            "Assets (a test manifest), not both")


def _check_feature_config(project: Project, config: AdapterConfig | None) -> None:
    if config is not None and project.feature is not Feature.CONTENT_MODERATION:
        raise InvalidParameterException(
            "FeatureConfig applies only to projects with Feature CONTENT_MODERATION")


def _feature_config(project: Project, request: NewVersion) -> AdapterConfig | None:
    """An adapter's FeatureConfig (the default threshold when the request gave none)."""
    if project.feature is not Feature.CONTENT_MODERATION:
        return None
    return request.feature_config or AdapterConfig()


def check_document(document: str) -> None:
    """A project policy's document is a JSON object with a Statement."""
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError) as error:  # nested past the parser's limit
        raise MalformedPolicyDocumentException("The policy document is not JSON") from error
    if not isinstance(parsed, dict) or "Statement" not in parsed:
        raise MalformedPolicyDocumentException("The policy document has no Statement")
