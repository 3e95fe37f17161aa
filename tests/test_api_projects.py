"""Custom Labels / adapter projects through boto3 against a real daemon (with access keys)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from conftest import make_config, retry_resets

from streamproc.daemon import Daemon

ADMIN_ID, ADMIN_SECRET = "AKIDPROJECTSADMIN001", "admin/SECRET+projects-1"
SCOPED_ID, SCOPED_SECRET = "AKIDPROJECTSCAMS0001", "scoped/SECRET+projects-2"
POLICIES = """
AKIDPROJECTSCAMS0001:
  Version: "2012-10-17"
  Statement:
    - Effect: Allow
      Action: ["rekognition:CreateProject", "rekognition:*Tag*"]
      Resource: "arn:aws:rekognition:*:*:project/cam-*"
    - Effect: Allow
      Action: "rekognition:DescribeProjects"
      Resource: "*"
    - Effect: Deny
      Action: "rekognition:Delete*"
      Resource: "*"
"""
ARN = re.compile(r"^arn:aws:rekognition:us-east-1:000000000000:project/([a-zA-Z0-9_.\-]+)/\d+$")


def client(endpoint: str, key: str = ADMIN_ID, secret: str = ADMIN_SECRET) -> Any:
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"})))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("projects")
    (home / "policies.yaml").write_text(POLICIES)
    d = Daemon(make_config(home / "data", **{
        "auth.enabled": True, "auth.policy_file": str(home / "policies.yaml"),
        "auth.access_keys": {ADMIN_ID: ADMIN_SECRET, SCOPED_ID: SCOPED_SECRET}}))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rek(daemon: Daemon) -> Any:
    return client(daemon.endpoint)


def _described(rek: Any, *names: str, features: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    more = {"Features": list(features)} if features else {}
    found: list[dict[str, Any]] = rek.describe_projects(ProjectNames=list(names),
                                                        **more)["ProjectDescriptions"]
    return found


def test_project_lifecycle(rek: Any) -> None:
    arn = rek.create_project(ProjectName="life-cl", Tags={"team": "retail"})["ProjectArn"]
    match = ARN.fullmatch(arn)
    assert match is not None and match.group(1) == "life-cl"
    adapter = rek.create_project(ProjectName="life-mod", Feature="CONTENT_MODERATION",
                                 AutoUpdate="DISABLED")["ProjectArn"]
    (described,) = _described(rek, "life-cl", "life-mod")  # Features: CUSTOM_LABELS by default
    assert described["ProjectArn"] == arn and described["Status"] == "CREATED"
    assert described["Feature"] == "CUSTOM_LABELS" and "AutoUpdate" not in described
    assert described["Datasets"] == [] and described["CreationTimestamp"].year >= 2024
    both = _described(rek, "life-cl", "life-mod", features=("CUSTOM_LABELS",
                                                           "CONTENT_MODERATION"))
    assert [d["ProjectArn"] for d in both] == [arn, adapter]
    assert both[1]["Feature"] == "CONTENT_MODERATION" and both[1]["AutoUpdate"] == "DISABLED"
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "retail"}
    rek.tag_resource(ResourceArn=arn, Tags={"env": "prod"})
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "retail", "env": "prod"}

    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.create_project(ProjectName="life-cl")
    assert rek.delete_project(ProjectArn=arn)["Status"] == "DELETING"
    assert _described(rek, "life-cl") == []
    for gone in (arn, arn.rsplit("/", 1)[0] + "/1", arn.replace("life-cl", "never-made")):
        with pytest.raises(rek.exceptions.ResourceNotFoundException):
            rek.delete_project(ProjectArn=gone)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_tags_for_resource(ResourceArn=arn)
    again = rek.create_project(ProjectName="life-cl")["ProjectArn"]
    assert again != arn and rek.list_tags_for_resource(ResourceArn=again)["Tags"] == {}
    for made in (again, adapter):
        rek.delete_project(ProjectArn=made)


def test_bad_requests_get_rekognition_errors(rek: Any) -> None:
    bad = rek.exceptions.InvalidParameterException
    with pytest.raises(bad):
        rek.create_project(ProjectName="bad-feature", Feature="OBJECT_DETECTION")
    with pytest.raises(bad, match="applies only to projects with Feature CONTENT_MODERATION"):
        rek.create_project(ProjectName="bad-auto", AutoUpdate="ENABLED")
    with pytest.raises(bad, match="AutoUpdate is required"):
        rek.create_project(ProjectName="bad-auto", Feature="CONTENT_MODERATION")
    with pytest.raises(bad):
        rek.create_project(ProjectName="no spaces")
    with pytest.raises(bad):
        rek.describe_projects(MaxResults=101)
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.describe_projects(NextToken="not-a-token")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):  # another region's spelling
        rek.delete_project(ProjectArn="arn:aws:rekognition:eu-west-1:000000000000:project/x/1")
    assert _described(rek, "bad-feature", "bad-auto", "no-spaces") == []


def test_describe_projects_pages_with_the_paginator(rek: Any) -> None:
    names = [f"page-{i:02d}" for i in range(7)]
    arns = [rek.create_project(ProjectName=name)["ProjectArn"] for name in names]
    try:
        first = rek.describe_projects(MaxResults=3)
        assert len(first["ProjectDescriptions"]) == 3 and "NextToken" in first
        pages = list(rek.get_paginator("describe_projects").paginate(
            ProjectNames=names[1:], PaginationConfig={"PageSize": 2}))
        assert [len(p["ProjectDescriptions"]) for p in pages] == [2, 2, 2]
        assert [d["ProjectArn"] for p in pages for d in p["ProjectDescriptions"]] == arns[1:]
    finally:
        for arn in arns:
            rek.delete_project(ProjectArn=arn)


def test_a_scoped_key_is_held_to_its_policy(daemon: Daemon, rek: Any) -> None:
    cam = client(daemon.endpoint, SCOPED_ID, SCOPED_SECRET)
    arn = cam.create_project(ProjectName="cam-shelves", Tags={"by": "cam"})["ProjectArn"]
    assert cam.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"by": "cam"}
    assert [d["ProjectArn"] for d in _described(cam, "cam-shelves")] == [arn]
    with pytest.raises(cam.exceptions.AccessDeniedException,
                       match="rekognition:CreateProject on resource: arn:aws:rekognition:"
                             "us-east-1:000000000000:project/office/\\*"):
        cam.create_project(ProjectName="office")
    with pytest.raises(cam.exceptions.AccessDeniedException, match="explicit deny"):
        cam.delete_project(ProjectArn=arn)
    office = rek.create_project(ProjectName="office")["ProjectArn"]
    with pytest.raises(cam.exceptions.AccessDeniedException, match=f"on resource: {office} "):
        cam.tag_resource(ResourceArn=office, Tags={"mine": "now"})
    for made in (arn, office):
        rek.delete_project(ProjectArn=made)


def test_projects_survive_a_restart_and_the_limit_holds(tmp_path: Path) -> None:
    config = make_config(tmp_path, **{"projects.max_projects": 2})
    first = Daemon(config)
    first.start()
    try:
        rek = client(first.endpoint)
        arn = rek.create_project(ProjectName="kept", Feature="CONTENT_MODERATION",
                                 AutoUpdate="ENABLED", Tags={"k": "v"})["ProjectArn"]
        rek.create_project(ProjectName="second")
        with pytest.raises(rek.exceptions.LimitExceededException):
            rek.create_project(ProjectName="third")
        before = _described(rek, "kept", features=("CONTENT_MODERATION",))
    finally:
        first.stop()
    second = Daemon(config)
    second.start()
    try:
        rek = client(second.endpoint)
        assert _described(rek, "kept", features=("CONTENT_MODERATION",)) == before
        assert before[0]["ProjectArn"] == arn and before[0]["AutoUpdate"] == "ENABLED"
        assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"k": "v"}
        with pytest.raises(rek.exceptions.ResourceInUseException):
            rek.create_project(ProjectName="kept")
        assert rek.delete_project(ProjectArn=arn)["Status"] == "DELETING"
        rek.create_project(ProjectName="third")
    finally:
        second.stop()
