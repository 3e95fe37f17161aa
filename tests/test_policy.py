"""IAM-style policy evaluation (pure), the request -> resource mapping, and the access files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamproc.api.access import AccessControl, read_state
from streamproc.api.policy import Decision, PolicyError, evaluate, parse_policy
from streamproc.api.resources import request_resources
from streamproc.config import load_config
from streamproc.errors import AccessDeniedException
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import Arns

ARNS = Arns("us-east-1", "000000000000")
COLL = "arn:aws:rekognition:us-east-1:000000000000:collection/"
PROC = "arn:aws:rekognition:us-east-1:000000000000:streamprocessor/"


def policy(*statements: dict[str, Any]) -> Any:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def test_wildcards_in_actions_and_resources() -> None:
    p = policy({"Effect": "Allow",
                "Action": ["rekognition:Search*", "rekognition:Describe?ollection"],
                "Resource": COLL + "cam-?"})
    assert evaluate(p, "rekognition:SearchFaces", [COLL + "cam-1"])[0] is Decision.ALLOW
    assert evaluate(p, "rekognition:SEARCHFACESBYIMAGE", [COLL + "cam-2"])[0] is Decision.ALLOW
    assert evaluate(p, "rekognition:DescribeCollection", [COLL + "cam-3"])[0] is Decision.ALLOW
    # ? is exactly one character; resources are case-sensitive; * alone is not an ARN.
    assert evaluate(p, "rekognition:SearchFaces", [COLL + "cam-10"])[0] is Decision.IMPLICIT_DENY
    assert evaluate(p, "rekognition:SearchFaces", [COLL + "CAM-1"])[0] is Decision.IMPLICIT_DENY
    assert evaluate(p, "rekognition:SearchFaces", ["*"])[0] is Decision.IMPLICIT_DENY
    assert evaluate(p, "rekognition:DeleteCollection", [COLL + "cam-1"]) == (
        Decision.IMPLICIT_DENY, COLL + "cam-1")
    # Regex metacharacters in a pattern are literal.
    dotted = policy({"Effect": "Allow", "Action": "*", "Resource": COLL + "a.b"})
    assert evaluate(dotted, "rekognition:ListFaces", [COLL + "axb"])[0] is Decision.IMPLICIT_DENY


def test_deny_wins_and_every_resource_must_be_allowed() -> None:
    p = policy({"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"},
               {"Effect": "Deny", "Action": "rekognition:Delete*", "Resource": COLL + "prod-*"})
    assert evaluate(p, "rekognition:DeleteCollection", [COLL + "test"])[0] is Decision.ALLOW
    assert evaluate(p, "rekognition:DeleteCollection", [COLL + "prod-1"]) == (
        Decision.EXPLICIT_DENY, COLL + "prod-1")
    narrow = policy({"Effect": "Allow", "Action": "rekognition:CreateStreamProcessor",
                     "Resource": [PROC + "door-*", COLL + "staff"]})
    both = [PROC + "door-1", COLL + "staff"]
    assert evaluate(narrow, "rekognition:CreateStreamProcessor", both)[0] is Decision.ALLOW
    other = [PROC + "door-1", COLL + "secret"]
    assert evaluate(narrow, "rekognition:CreateStreamProcessor", other) == (
        Decision.IMPLICIT_DENY, COLL + "secret")
    # A Deny on any one resource denies the request, even if an Allow covers the others.
    deny_one = policy({"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "*", "Resource": COLL + "secret"})
    assert evaluate(deny_one, "rekognition:CreateStreamProcessor", other)[0] is \
        Decision.EXPLICIT_DENY


def test_not_action_and_not_resource() -> None:
    p = policy({"Effect": "Allow", "NotAction": "rekognition:Delete*", "Resource": "*"},
               {"Effect": "Deny", "Action": "*", "NotResource": [COLL + "*", "*"]},
               {"Effect": "Deny", "Action": "rekognition:Start*", "NotResource": COLL + "*"})
    assert evaluate(p, "rekognition:IndexFaces", [COLL + "x"])[0] is Decision.ALLOW
    assert evaluate(p, "rekognition:DeleteFaces", [COLL + "x"])[0] is Decision.IMPLICIT_DENY
    assert evaluate(p, "rekognition:StartStreamProcessor", [PROC + "x"])[0] is \
        Decision.EXPLICIT_DENY


@pytest.mark.parametrize("document, where", [
    ([], "must be a mapping"),
    ({"Statement": []}, "non-empty list"),
    ({"Version": "2020-01-01", "Statement": {"Effect": "Allow", "Action": "*",
                                              "Resource": "*"}}, "Version"),
    ({"Statement": {"Effect": "Permit", "Action": "*", "Resource": "*"}}, "Effect"),
    ({"Statement": {"Effect": "Allow", "Resource": "*"}}, "exactly one of Action"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"}},
     "exactly one of Action"),
    ({"Statement": {"Effect": "Allow", "Action": "DeleteCollection", "Resource": "*"}},
     "is not an action"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "collection/x"}},
     "not an ARN pattern"),
    ({"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}, "non-empty"),
    ({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*",
                    "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}, "Condition"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}},
     "Principal"),
])
def test_malformed_policies_are_refused(document: Any, where: str) -> None:
    with pytest.raises(PolicyError, match=where):
        parse_policy(document)


def test_request_resources_by_operation() -> None:
    assert request_resources("SearchFaces", {"CollectionId": "a", "FaceId": "f"}, ARNS) == [
        COLL + "a"]
    assert request_resources("StartStreamProcessor", {"Name": "p"}, ARNS) == [PROC + "p"]
    create = {"Name": "p", "Settings": {"FaceSearch": {"CollectionId": "c"}}}
    assert request_resources("CreateStreamProcessor", create, ARNS) == [PROC + "p", COLL + "c"]
    assert request_resources("TagResource", {"ResourceArn": COLL + "t", "Tags": {}}, ARNS) == [
        COLL + "t"]
    for op in ("ListCollections", "ListStreamProcessors", "DetectFaces", "CompareFaces"):
        assert request_resources(op, {"MaxResults": 3}, ARNS) == ["*"]


def _files(tmp_path: Path, keys: str, policies: str) -> Any:
    (tmp_path / "keys.yaml").write_text(keys)
    (tmp_path / "policies.yaml").write_text(policies)
    return load_config(None, {"auth.enabled": True,
                              "auth.access_keys_file": str(tmp_path / "keys.yaml"),
                              "auth.policy_file": str(tmp_path / "policies.yaml")}).auth


def test_access_files_and_reload_keep_old_state_on_error(tmp_path: Path,
                                                         monkeypatch: Any) -> None:
    monkeypatch.setenv("SP_KEY_SECRET", "from-env")
    auth = _files(tmp_path, "AK1: plain-secret\nAK2: env:SP_KEY_SECRET\n",
                  '{"AK1": {"Statement": {"Effect": "Allow", "Action": "rekognition:List*", '
                  '"Resource": "*"}}}')
    state = read_state(auth)
    assert state.secrets == {"AK1": "plain-secret", "AK2": "from-env"}
    registry = CollectorRegistry()
    access = AccessControl(auth, ARNS, ApiMetrics.create(registry))
    access.load()
    access.authorize("AK1", "ListCollections", {})
    access.authorize("AK2", "DeleteCollection", {"CollectionId": "x"})  # no policy: full access
    with pytest.raises(AccessDeniedException, match="rekognition:DeleteCollection on resource: "
                       + COLL + "x because no identity-based policy allows"):
        access.authorize("AK1", "DeleteCollection", {"CollectionId": "x"})
    assert registry.get_sample_value("streamproc_api_access_denied_total", {
        "operation": "DeleteCollection", "reason": "implicit"}) == 1
    (tmp_path / "policies.yaml").write_text("AK1: {Statement: [{Effect: Allow}]}\n")
    assert access.reload() is False  # malformed: the old policy stays in force
    access.authorize("AK1", "ListCollections", {})
    (tmp_path / "keys.yaml").write_text("AK1: [not, a, secret\n")
    assert access.reload() is False
    assert access.secret("AK1") == "plain-secret"
    (tmp_path / "keys.yaml").write_text("AK1: rotated\n")
    (tmp_path / "policies.yaml").write_text("")
    assert access.reload() is True
    assert access.secret("AK1") == "rotated" and access.secret("AK2") is None
    access.authorize("AK1", "DeleteCollection", {"CollectionId": "x"})
    assert registry.get_sample_value("streamproc_auth_reloads_total", {"result": "error"}) == 2
    assert registry.get_sample_value("streamproc_auth_reloads_total", {"result": "ok"}) == 1


def test_policy_file_needs_auth_and_bad_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="policy_file needs auth.enabled"):
        load_config(None, {"auth.policy_file": str(tmp_path / "p.yaml")})
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    loaded = load_config(None, {"auth.enabled": True,
                                "auth.access_keys": {"AK": f"file:{secret}"}})
    assert loaded.auth.access_keys == {"AK": "from-a-file"}
    with pytest.raises(ValueError, match="secret file .*missing"):
        load_config(None, {"auth.access_keys": {"AK": f"file:{tmp_path / 'missing'}"}})


# ---- tagging ARNs: the policy sees the resource, the handler only its own region's ARN ----

DENIED = "rekognition:*"
TAGGING = ("TagResource", "UntagResource", "ListTagsForResource")


@pytest.mark.parametrize("arn,canonical", [
    ("arn:aws:rekognition:eu-west-1:000000000000:collection/denied", COLL + "denied"),
    ("arn:aws-cn:rekognition:cn-north-1:000000000000:collection/denied", COLL + "denied"),
    ("arn:aws-cn:rekognition:us-east-1:000000000000:collection/denied", COLL + "denied"),
    ("arn:aws-us-gov:rekognition:us-gov-west-1:000000000000:streamprocessor/cam",
     PROC + "cam"),
    (COLL + "denied", COLL + "denied")])
def test_a_deny_holds_whatever_region_or_partition_the_arn_names(
        tmp_path: Path, arn: str, canonical: str) -> None:
    params = {"ResourceArn": arn, "Tags": {"k": "v"}, "TagKeys": ["k"]}
    assert request_resources("TagResource", params, ARNS) == [canonical]
    auth = _files(tmp_path, "AK1: secret\n", json.dumps({"AK1": {"Statement": [
        {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"},
        {"Effect": "Deny", "Action": DENIED, "Resource": [COLL + "denied", PROC + "cam"]}]}}))
    access = AccessControl(auth, ARNS, ApiMetrics.create(CollectorRegistry()))
    access.load()
    for operation in TAGGING:
        with pytest.raises(AccessDeniedException, match=f"on resource: {canonical} with an "
                           "explicit deny"):
            access.authorize("AK1", operation, params)
    access.authorize("AK1", "TagResource", {**params, "ResourceArn": COLL + "open"})


def test_another_accounts_arn_is_evaluated_as_given() -> None:
    other = "arn:aws:rekognition:us-east-1:999999999999:collection/denied"
    assert request_resources("ListTagsForResource", {"ResourceArn": other}, ARNS) == [other]


class _Tags:
    def get(self, key: str) -> dict[str, str]:
        return {"seen": key}


@pytest.mark.parametrize("region,own", [
    ("eu-west-1", "arn:aws:rekognition:eu-west-1:000000000000:collection/c1"),
    ("cn-north-1", "arn:aws-cn:rekognition:cn-north-1:000000000000:collection/c1"),
    ("us-east-1", "arn:aws:rekognition:us-east-1:000000000000:streamprocessor/cam")])
def test_tagging_takes_only_the_arns_this_request_region_writes(region: str, own: str) -> None:
    from streamproc.api import tag_handlers as th
    from streamproc.api.context import RequestContext
    from streamproc.errors import ResourceNotFoundException
    from streamproc.tags.rules import TagKeys
    from streamproc.tags.service import TagService

    ctx = RequestContext(Arns(region, "000000000000"))
    # Any region of this account names the resource (TagKeys); the handler takes only this one.
    keys = TagKeys(Arns("eu-west-1", "000000000000"), {
        "collection": lambda name: "key", "streamprocessor": lambda name: "key"})
    tagging = TagService(_Tags(), None, keys)  # type: ignore[arg-type]
    assert th.list_tags_for_resource(tagging, {"ResourceArn": own}, ctx) == {
        "Tags": {"seen": "key"}}
    partition = own.split(":")[1]
    others = [own.replace(f":{region}:", ":ap-south-1:"),  # another region
              own.replace(f"arn:{partition}:", "arn:aws-iso:"),  # another partition
              own.replace(":000000000000:", ":999999999999:"),  # another account
              own.replace("rekognition", "s3"), own.upper(), "arn:x"]
    for arn in others:
        with pytest.raises(ResourceNotFoundException, match="not found"):
            th.list_tags_for_resource(tagging, {"ResourceArn": arn}, ctx)
