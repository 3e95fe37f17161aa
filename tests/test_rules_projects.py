"""Project rules (projects/rules.py), the service (projects/service.py) and the wire parsing
(api/project_handlers.py), over a real SQLite store behind a local ledger; no daemon."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamproc.api.context import RequestContext
from streamproc.api.project_handlers import (
    new_project,
    project_description,
    project_id,
    project_query,
)
from streamproc.api.resources import request_resources
from streamproc.config import load_config
from streamproc.errors import (
    InvalidPaginationTokenException,
    InvalidParameterException,
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from streamproc.ledger import Appliers, LocalLedger
from streamproc.projects.commands import CreateProject, DeleteProject
from streamproc.projects.rules import ProjectRules
from streamproc.projects.service import ProjectService
from streamproc.projects.types import (
    AutoUpdate,
    Feature,
    NewProject,
    Project,
    ProjectQuery,
    ProjectStatus,
)
from streamproc.rekognition.constants import Arns
from streamproc.storage.db import Database
from streamproc.storage.projects import ProjectStore
from streamproc.storage.tags import TagStore
from streamproc.tags.rules import TagKeys, TagRules
from streamproc.tags.service import TagService

ARNS = Arns("eu-west-1", "123456789012")
PREFIX = "arn:aws:rekognition:eu-west-1:123456789012:project"
T0 = 1718000000.25  # -> 1718000000250 ms


@dataclass
class World:
    """A project service and everything behind it."""

    store: ProjectStore
    tags: TagStore
    service: ProjectService
    ledger: LocalLedger
    clock: list[float]
    versions: dict[str, int]

    def create(self, name: str, feature: Feature = Feature.CUSTOM_LABELS,
               auto: AutoUpdate | None = None, tags: dict[str, str] | None = None) -> Project:
        self.clock[0] += 1.0
        return self.service.create(NewProject(name, feature, auto, tags))


def _world(root: Path, max_projects: int = 100) -> Iterator[World]:
    db = Database(root / "streamproc.db")
    db.open()
    store, tags = ProjectStore(db), TagStore(db)
    config = load_config(None, {"projects.max_projects": max_projects})
    versions: dict[str, int] = {}
    appliers = Appliers()
    ProjectRules(store, tags, config, lambda p: versions.get(p.name, 0)).register(appliers)
    TagRules(tags).register(appliers)
    ledger = LocalLedger(appliers)
    clock = [T0 - 1.0]
    yield World(store, tags, ProjectService(store, ledger, ARNS, lambda: clock[0]), ledger,
                clock, versions)
    db.close()


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path)


# ---- create -------------------------------------------------------------------------------------
def test_a_project_is_created_with_aws_arn_and_defaults(w: World) -> None:
    made = w.create("shelves", tags={"team": "retail"})
    assert made == Project("shelves", f"{PREFIX}/shelves/1718000000250", 1718000000250,
                           Feature.CUSTOM_LABELS, None, ProjectStatus.CREATED)
    assert w.service.get("shelves") == made
    assert w.tags.get(made.arn) == {"team": "retail"}
    assert new_project({"ProjectName": "x"}) == NewProject("x", Feature.CUSTOM_LABELS, None, None)


def test_a_name_in_use_is_resource_in_use_and_free_again_after_delete(w: World) -> None:
    first = w.create("shelves", tags={"a": "1"})
    with pytest.raises(ResourceInUseException, match="^The project shelves already exists$"):
        w.create("shelves", Feature.CONTENT_MODERATION, AutoUpdate.ENABLED)
    assert w.service.delete(first.resource_id) is ProjectStatus.DELETING
    assert w.service.get("shelves") is None and w.tags.get(first.arn) == {}
    again = w.create("shelves")
    assert again.arn != first.arn and w.tags.get(again.arn) == {}
    with pytest.raises(ResourceNotFoundException):  # the old ARN names the old project only
        w.service.delete(first.resource_id)
    assert w.service.get("shelves") == again


def test_auto_update_is_for_adapters_only_and_required_for_them(w: World) -> None:
    with pytest.raises(InvalidParameterException, match="applies only to projects with Feature "
                       "CONTENT_MODERATION"):
        w.create("cl", Feature.CUSTOM_LABELS, AutoUpdate.DISABLED)
    with pytest.raises(InvalidParameterException, match="AutoUpdate is required"):
        w.create("mod", Feature.CONTENT_MODERATION)
    assert w.store.count() == 0
    made = w.create("mod", Feature.CONTENT_MODERATION, AutoUpdate.DISABLED)
    assert (made.feature, made.auto_update) == (Feature.CONTENT_MODERATION, AutoUpdate.DISABLED)
    assert w.store.get("mod") == made.stored()


def test_the_project_limit_counts_every_feature(tmp_path: Path) -> None:
    for w in _world(tmp_path, max_projects=2):
        w.create("a")
        w.create("b", Feature.CONTENT_MODERATION, AutoUpdate.ENABLED)
        with pytest.raises(ResourceInUseException):  # a taken name is named as such first
            w.create("a")
        with pytest.raises(LimitExceededException, match="^At most 2 projects: c was not"):
            w.create("c")
        w.service.delete(w.service.describe(ProjectQuery())[0][0].resource_id)
        w.create("c")


# ---- describe -----------------------------------------------------------------------------------
def _names(w: World, query: ProjectQuery) -> list[str]:
    return [p.name for p in w.service.describe(query)[0]]


def test_describe_filters_by_name_and_feature_with_aws_defaults(w: World) -> None:
    for name in ("c2", "c1", "c3"):
        w.create(name)
    w.create("m1", Feature.CONTENT_MODERATION, AutoUpdate.ENABLED)
    assert _names(w, project_query({})) == ["c1", "c2", "c3"]  # Features: CUSTOM_LABELS
    both = project_query({"Features": ["CONTENT_MODERATION", "CUSTOM_LABELS"]})
    assert _names(w, both) == ["c1", "c2", "c3", "m1"]
    assert _names(w, project_query({"Features": ["CONTENT_MODERATION"]})) == ["m1"]
    named = project_query({"ProjectNames": ["m1", "c3", "absent"]})
    assert _names(w, named) == ["c3"]
    assert _names(w, ProjectQuery(("m1", "c3"), (Feature.CONTENT_MODERATION,))) == ["m1"]


def test_describe_pages_in_name_order(w: World) -> None:
    for i in range(5):
        w.create(f"p{i}")
    seen, token, pages = [], None, 0
    while True:
        page, token = w.service.describe(ProjectQuery(token=token, max_results=2))
        seen += [p.name for p in page]
        pages += 1
        if token is None:
            break
    assert (seen, pages) == (["p0", "p1", "p2", "p3", "p4"], 3)
    with pytest.raises(InvalidPaginationTokenException):
        w.service.describe(ProjectQuery(token="not-a-token"))


# ---- delete -------------------------------------------------------------------------------------
def test_delete_refuses_a_project_with_versions_and_a_missing_one(w: World) -> None:
    made = w.create("busy", tags={"k": "v"})
    w.versions["busy"] = 2
    with pytest.raises(ResourceInUseException, match="has 2 version"):
        w.service.delete(made.resource_id)
    assert w.service.get("busy") == made and w.tags.get(made.arn) == {"k": "v"}
    w.versions["busy"] = 0
    w.service.delete(made.resource_id)
    with pytest.raises(ResourceNotFoundException, match="^The project busy does not exist$"):
        w.service.delete(made.resource_id)
    with pytest.raises(ResourceNotFoundException):
        w.ledger.submit(DeleteProject("never", 1))
    again = w.create("busy")
    for spelling in (f"busy/0{again.created_ms}", f"busy/{again.created_ms + 1}", "busy/",
                     f"/{again.created_ms}"):
        with pytest.raises(ResourceNotFoundException):
            w.service.delete(spelling)
    assert w.service.get("busy") == again


# ---- ARNs, tags, policy resources ---------------------------------------------------------------
def test_project_arns_parse_and_render_in_any_region(w: World) -> None:
    made = w.create("shelves")
    assert ARNS.parse(made.arn) == ("project", "shelves/1718000000250")
    assert ARNS.parse(made.arn.replace("eu-west-1", "us-east-2")) == ("project", made.resource_id)
    for bad in (f"{PREFIX}/shelves", f"{PREFIX}/shel ves/1", f"{PREFIX}/shelves/x1"):
        assert ARNS.parse(bad) is None
    here = RequestContext(ARNS.for_region("us-east-2"))
    described = project_description(made, here)
    assert described == {"ProjectArn": made.arn.replace("eu-west-1", "us-east-2"),
                         "CreationTimestamp": 1718000000.25, "Status": "CREATED",
                         "Datasets": [], "Feature": "CUSTOM_LABELS"}
    assert project_id(described["ProjectArn"], here) == made.resource_id
    for elsewhere in (made.arn, f"{ARNS.collection('shelves')}"):
        with pytest.raises(ResourceNotFoundException):
            project_id(elsewhere, here)
    adapter = w.create("mod", Feature.CONTENT_MODERATION, AutoUpdate.ENABLED)
    assert project_description(adapter, here)["AutoUpdate"] == "ENABLED"


def test_project_tags_are_kept_under_the_arn_it_was_created_with(w: World) -> None:
    made = w.create("shelves", tags={"a": "1"})
    tags = TagService(w.tags, w.ledger, TagKeys(ARNS, {"project": w.service.tag_key}))
    other_region = made.arn.replace("eu-west-1", "ap-south-1")
    tags.tag(other_region, {"b": "2"})
    assert tags.list(made.arn) == {"a": "1", "b": "2"}
    with pytest.raises(ResourceNotFoundException):
        tags.list(f"{PREFIX}/shelves/{made.created_ms + 1}")
    w.service.delete(made.resource_id)
    with pytest.raises(ResourceNotFoundException):
        tags.list(made.arn)


def test_policy_resources_of_the_project_operations() -> None:
    arn = f"{PREFIX}/shelves/1718000000250"
    assert request_resources("CreateProject", {"ProjectName": "shelves"}, ARNS) == [
        f"{PREFIX}/shelves/*"]
    assert request_resources("DeleteProject", {"ProjectArn": arn.replace("eu-west-1", "x-1")},
                             ARNS) == [arn]
    assert request_resources("TagResource", {"ResourceArn": arn, "Tags": {}}, ARNS) == [arn]
    assert request_resources("DescribeProjects", {"ProjectNames": ["shelves"]}, ARNS) == ["*"]


def test_the_create_command_carries_the_whole_project() -> None:
    made = Project("m", f"{PREFIX}/m/5", 5, Feature.CONTENT_MODERATION, AutoUpdate.ENABLED)
    command = CreateProject(made, {"k": "v"})
    assert command.payload() == {"project": {
        "name": "m", "arn": f"{PREFIX}/m/5", "created_ms": 5, "feature": "CONTENT_MODERATION",
        "auto_update": "ENABLED", "status": "CREATED"}, "tags": {"k": "v"}}
    assert CreateProject.from_payload(command.payload()) == command
