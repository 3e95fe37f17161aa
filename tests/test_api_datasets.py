"""Project datasets through boto3 against a real daemon with a local object root.

CreateDataset from a Ground Truth manifest, empty, and as a copy; DescribeDataset and the
project's Datasets; ListDatasetEntries' filters and ListDatasetLabels, through botocore's
paginators; UpdateDatasetEntries; DistributeDatasetEntries; DeleteDataset; the errors
botocore models; IAM-style policies over dataset ARNs; and a restart that keeps it all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from conftest import make_config, retry_resets

from streamproc.config import Config
from streamproc.daemon import Daemon

pytestmark = pytest.mark.e2e  # a daemon

ADMIN_ID, ADMIN_SECRET = "AKIDDATASETSADMIN001", "admin/SECRET+datasets-1"
SCOPED_ID, SCOPED_SECRET = "AKIDDATASETSCAMS0001", "scoped/SECRET+datasets-2"
POLICIES = """
AKIDDATASETSCAMS0001:
  Version: "2012-10-17"
  Statement:
    - Effect: Allow
      Action: "rekognition:*Dataset*"
      Resource: "arn:aws:rekognition:*:*:project/cam-*"
    - Effect: Deny
      Action: "rekognition:DeleteDataset"
      Resource: "*"
"""
BUCKET, IMAGES = "dataset-manifests", "dataset-images"


def client(endpoint: str, key: str = ADMIN_ID, secret: str = ADMIN_SECRET) -> Any:
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"})))


@dataclass
class Home:
    """Where a daemon keeps its data and reads its objects."""

    root: Path
    config: Config

    def put(self, key: str, lines: list[Any]) -> dict[str, str]:
        path = self.root / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                                for x in lines))
        return {"Bucket": BUCKET, "Name": key}


def _home(base: Path) -> Home:
    (base / "policies.yaml").write_text(POLICIES)
    root = base / "objects"
    for bucket in (BUCKET, IMAGES, "not-allowed"):
        (root / bucket).mkdir(parents=True)
    return Home(root, make_config(base / "data", **{
        "objects.local_root": str(root), "objects.buckets": [BUCKET, IMAGES],
        "kafka.bootstrap": "127.0.0.1:9",
        "auth.enabled": True, "auth.policy_file": str(base / "policies.yaml"),
        "auth.access_keys": {ADMIN_ID: ADMIN_SECRET, SCOPED_ID: SCOPED_SECRET}}))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return _home(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def daemon(home: Home) -> Iterator[Daemon]:
    d = Daemon(home.config)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rek(daemon: Daemon) -> Any:
    return client(daemon.endpoint)


def image(n: int, label: str | None) -> dict[str, Any]:
    line: dict[str, Any] = {"source-ref": f"s3://{IMAGES}/photos/{n:03d}.jpg"}
    if label is not None:
        line.update({f"{label}-job": 1, f"{label}-job-metadata": {
            "class-name": label, "confidence": 1, "type": "groundtruth/image-classification",
            "job-name": "labeling", "human-annotated": "yes",
            "creation-date": "2024-06-10T10:00:00.000"}})
    return line


def entries(rek: Any, arn: str, **filters: Any) -> list[dict[str, Any]]:
    pages = rek.get_paginator("list_dataset_entries").paginate(
        DatasetArn=arn, PaginationConfig={"PageSize": 3}, **filters)
    return [json.loads(x) for page in pages for x in page["DatasetEntries"]]


def described(rek: Any, arn: str) -> dict[str, Any]:
    found: dict[str, Any] = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    return found


def test_a_dataset_from_a_manifest_lists_filters_updates_and_is_deleted(
        home: Home, rek: Any) -> None:
    project = rek.create_project(ProjectName="shelves")["ProjectArn"]
    lines = [image(i, "apple" if i % 2 else "pear") for i in range(10)] + [
        image(10, None), "{not json",
        {**image(11, "apple"), "source-ref": "s3://not-allowed/x.jpg"}]
    manifest = home.put("shelves/train.manifest", lines)
    arn = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource={
        "GroundTruthManifest": {"S3Object": manifest}}, Tags={"team": "grocery"})["DatasetArn"]
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "grocery"}
    rek.tag_resource(ResourceArn=arn, Tags={"env": "test"})
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "grocery",
                                                                   "env": "test"}
    assert arn.startswith("arn:aws:rekognition:us-east-1:000000000000:project/shelves/"
                          "dataset/train/")
    got = described(rek, arn)
    assert got["Status"] == "CREATE_COMPLETE" and got["StatusMessageCode"] == "SUCCESS"
    assert got["DatasetStats"] == {"LabeledEntries": 11, "TotalEntries": 13, "TotalLabels": 2,
                                   "ErrorEntries": 2}
    assert got["LastUpdatedTimestamp"] >= got["CreationTimestamp"]
    (desc,) = rek.describe_projects(ProjectNames=["shelves"])["ProjectDescriptions"]
    assert [(d["DatasetArn"], d["DatasetType"], d["Status"]) for d in desc["Datasets"]] == [
        (arn, "TRAIN", "CREATE_COMPLETE")]

    every = entries(rek, arn)
    assert len(every) == 13 and every[0] == image(0, "pear")  # the line as written
    bad = entries(rek, arn, HasErrors=True)
    assert [e["errors"][0]["code"] for e in bad] == [
        "ERROR_INVALID_JSON_LINE", "ERROR_INVALID_PERMISSIONS_IMAGES_S3_BUCKET"]
    assert len(entries(rek, arn, ContainsLabels=["apple"])) == 6  # 5 and the refused bucket's
    assert len(entries(rek, arn, Labeled=False)) == 2
    assert [e["source-ref"] for e in entries(rek, arn, SourceRefContains="photos/00")] == [
        f"s3://{IMAGES}/photos/00{i}.jpg" for i in range(10)]
    labels = [x for page in rek.get_paginator("list_dataset_labels").paginate(
        DatasetArn=arn, PaginationConfig={"PageSize": 1}) for x in page[
        "DatasetLabelDescriptions"]]
    assert labels == [{"LabelName": "apple", "LabelStats": {"EntryCount": 6,
                                                            "BoundingBoxCount": 0}},
                      {"LabelName": "pear", "LabelStats": {"EntryCount": 5,
                                                           "BoundingBoxCount": 0}}]

    changes = "\n".join(json.dumps(x) for x in [image(0, "quince"), image(20, "pear")])
    rek.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": changes.encode()})
    got = described(rek, arn)
    assert got["Status"] == "UPDATE_COMPLETE" and got["DatasetStats"]["TotalEntries"] == 14
    first = entries(rek, arn)[0]
    assert first["source-ref"].endswith("/000.jpg") and "quince-job" in first
    rek.delete_dataset(DatasetArn=arn)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        described(rek, arn)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_tags_for_resource(ResourceArn=arn)
    assert rek.describe_projects(ProjectNames=["shelves"])["ProjectDescriptions"][0][
        "Datasets"] == []
    rek.delete_project(ProjectArn=project)


def test_distribute_splits_a_train_dataset_into_an_empty_test_one(home: Home, rek: Any) -> None:
    project = rek.create_project(ProjectName="split")["ProjectArn"]
    manifest = home.put("split.manifest", [image(i, "apple" if i < 10 else "pear")
                                           for i in range(20)])
    train = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource={
        "GroundTruthManifest": {"S3Object": manifest}})["DatasetArn"]
    test = rek.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    assert described(rek, test)["DatasetStats"]["TotalEntries"] == 0
    rek.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    counts = [described(rek, a)["DatasetStats"]["TotalEntries"] for a in (train, test)]
    assert counts == [16, 4]
    assert {described(rek, a)["Status"] for a in (train, test)} == {"UPDATE_COMPLETE"}
    moved = {e["source-ref"] for e in entries(rek, test)}
    assert not moved & {e["source-ref"] for e in entries(rek, train)}
    with pytest.raises(rek.exceptions.InvalidParameterException, match="must be empty"):
        rek.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    copy_project = rek.create_project(ProjectName="split-copy")["ProjectArn"]
    copy = rek.create_dataset(ProjectArn=copy_project, DatasetType="TEST", DatasetSource={
        "DatasetArn": test})["DatasetArn"]
    assert {e["source-ref"] for e in entries(rek, copy)} == moved
    rek.delete_project(ProjectArn=copy_project)  # with its dataset
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        described(rek, copy)
    rek.delete_project(ProjectArn=project)


def test_bad_requests_get_the_errors_botocore_models(home: Home, rek: Any) -> None:
    project = rek.create_project(ProjectName="errors")["ProjectArn"]
    manifest = home.put("errors.manifest", [image(1, "apple")])
    source = {"GroundTruthManifest": {"S3Object": manifest}}
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.create_dataset(ProjectArn=project.rsplit("/", 1)[0] + "/1", DatasetType="TRAIN",
                           DatasetSource=source)
    rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)
    with pytest.raises(rek.exceptions.ResourceAlreadyExistsException, match="TRAIN dataset"):
        rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)
    with pytest.raises(rek.exceptions.AccessDeniedException, match="objects.buckets"):
        rek.create_dataset(ProjectArn=project, DatasetType="TEST", DatasetSource={
            "GroundTruthManifest": {"S3Object": {"Bucket": "not-allowed", "Name": "m"}}})
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.create_dataset(ProjectArn=project, DatasetType="TEST", DatasetSource={
            "GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": "missing"}}})
    empty = home.put("empty.manifest", ["", "   "])
    with pytest.raises(rek.exceptions.InvalidParameterException, match="no JSON lines"):
        rek.create_dataset(ProjectArn=project, DatasetType="TEST", DatasetSource={
            "GroundTruthManifest": {"S3Object": empty}})
    with pytest.raises(rek.exceptions.InvalidParameterException):  # not a dataset type
        rek.create_dataset(ProjectArn=project, DatasetType="VALIDATION")
    gone = project.replace("/errors/", "/errors/dataset/test/")
    for call in (lambda: described(rek, gone),
                 lambda: rek.list_dataset_entries(DatasetArn=gone),
                 lambda: rek.delete_dataset(DatasetArn=gone),
                 lambda: rek.update_dataset_entries(DatasetArn=gone,
                                                    Changes={"GroundTruth": b"{}"})):
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            call()
    (train,) = rek.describe_projects(ProjectNames=["errors"])["ProjectDescriptions"][0][
        "Datasets"]
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.list_dataset_entries(DatasetArn=train["DatasetArn"], NextToken="nope")
    rek.delete_project(ProjectArn=project)


def test_an_adapter_dataset_names_what_is_outside_the_taxonomy(home: Home, rek: Any) -> None:
    project = rek.create_project(ProjectName="tuning", Feature="CONTENT_MODERATION",
                                 AutoUpdate="DISABLED")["ProjectArn"]
    lines = [{"source-ref": f"s3://{IMAGES}/m/{i}.jpg", "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": "Gambling"}] if i % 2 else []}} for i in range(8)]
    lines += [{"source-ref": f"s3://{IMAGES}/m/x.jpg", "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": "Weapons"}]}}]
    arn = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource={
        "GroundTruthManifest": {"S3Object": home.put("tuning.manifest", lines)}})["DatasetArn"]
    assert described(rek, arn)["DatasetStats"] == {
        "LabeledEntries": 9, "TotalEntries": 9, "TotalLabels": 1, "ErrorEntries": 1}
    (bad,) = entries(rek, arn, HasErrors=True)
    assert "top-level categories only" in bad["errors"][0]["message"]
    # A Custom Labels dataset's classes would bypass the taxonomy: no copy across features.
    custom = rek.create_project(ProjectName="classes")["ProjectArn"]
    classes = rek.create_dataset(ProjectArn=custom, DatasetType="TRAIN", DatasetSource={
        "GroundTruthManifest": {"S3Object": home.put("classes.manifest", [
            image(n, "apple") for n in range(4)])}})["DatasetArn"]
    with pytest.raises(rek.exceptions.InvalidParameterException, match="cannot be copied"):
        rek.create_dataset(ProjectArn=project, DatasetType="TEST",
                           DatasetSource={"DatasetArn": classes})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="cannot be copied"):
        rek.create_dataset(ProjectArn=custom, DatasetType="TEST",
                           DatasetSource={"DatasetArn": arn})
    (tuning,) = rek.describe_projects(ProjectNames=["tuning"], Features=[
        "CONTENT_MODERATION"])["ProjectDescriptions"]
    assert [d["DatasetArn"] for d in tuning["Datasets"]] == [arn]  # no TEST copy was made
    rek.delete_project(ProjectArn=custom)
    rek.delete_project(ProjectArn=project)


def test_a_scoped_key_is_held_to_its_policy_on_dataset_arns(daemon: Daemon, home: Home,
                                                             rek: Any) -> None:
    cam = client(daemon.endpoint, SCOPED_ID, SCOPED_SECRET)
    mine = rek.create_project(ProjectName="cam-aisle")["ProjectArn"]
    other = rek.create_project(ProjectName="office")["ProjectArn"]
    arn = cam.create_dataset(ProjectArn=mine, DatasetType="TEST")["DatasetArn"]
    assert described(cam, arn)["Status"] == "CREATE_COMPLETE"
    with pytest.raises(cam.exceptions.AccessDeniedException, match="explicit deny"):
        cam.delete_dataset(DatasetArn=arn)
    with pytest.raises(cam.exceptions.AccessDeniedException, match="rekognition:CreateDataset"):
        cam.create_dataset(ProjectArn=other, DatasetType="TEST")
    office = rek.create_dataset(ProjectArn=other, DatasetType="TEST")["DatasetArn"]
    with pytest.raises(cam.exceptions.AccessDeniedException, match=f"on resource: {office}"):
        cam.describe_dataset(DatasetArn=office)
    for made in (mine, other):
        rek.delete_project(ProjectArn=made)


def test_datasets_survive_a_restart(tmp_path: Path) -> None:
    home = _home(tmp_path)
    manifest = home.put("kept.manifest", [image(i, "apple") for i in range(5)] + ["{bad"])
    first = Daemon(home.config)
    first.start()
    try:
        rek = client(first.endpoint)
        project = rek.create_project(ProjectName="kept")["ProjectArn"]
        arn = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource={
            "GroundTruthManifest": {"S3Object": manifest}})["DatasetArn"]
        before = (described(rek, arn), entries(rek, arn))
    finally:
        first.stop()
    second = Daemon(home.config)
    second.start()
    try:
        rek = client(second.endpoint)
        assert (described(rek, arn), entries(rek, arn)) == before
        with pytest.raises(rek.exceptions.ResourceAlreadyExistsException):
            rek.create_dataset(ProjectArn=project, DatasetType="TRAIN")
        rek.delete_dataset(DatasetArn=arn)
    finally:
        second.stop()
