"""Tag rules (tags/rules.py) and the tag service (tags/service.py), without models.

The limit is the tags.set applier's, checked against the real tag store behind a local
ledger; which key an ARN's tags are kept under is TagKeys', asked of each resource type's
owner; the service turns an ARN that names nothing into ResourceNotFoundException.
"""

from __future__ import annotations

import pytest
from fakes import Harness

from streamproc.errors import ResourceNotFoundException, ServiceQuotaExceededException
from streamproc.ledger import Appliers, LocalLedger
from streamproc.rekognition.constants import MAX_TAGS, Arns
from streamproc.tags.commands import RemoveTags, SetTags
from streamproc.tags.rules import TagKeys, TagRules
from streamproc.tags.service import TagService

ARNS = Arns("eu-west-1", "123456789012")


def _ledger(h: Harness) -> LocalLedger:
    appliers = Appliers()
    TagRules(h.tags).register(appliers)
    return LocalLedger(appliers)


def test_the_tag_limit_counts_keys_after_the_merge(h: Harness) -> None:
    ledger = _ledger(h)
    many = {f"k{i}": "v" for i in range(MAX_TAGS)}
    ledger.submit(SetTags("k", many))
    ledger.submit(SetTags("k", {"k0": "again"}))  # a replacement
    assert len(h.tags.get("k")) == MAX_TAGS and h.tags.get("k")["k0"] == "again"
    with pytest.raises(ServiceQuotaExceededException,
                       match=f"^A resource can have at most {MAX_TAGS} tags$"):
        ledger.submit(SetTags("k", {"one-more": "v"}))
    ledger.submit(RemoveTags("k", ["k0", "k1", "absent"]))
    assert len(h.tags.get("k")) == MAX_TAGS - 2 and "k0" not in h.tags.get("k")
    ledger.submit(SetTags("k", {"a": "1", "b": "2"}))
    assert len(h.tags.get("k")) == MAX_TAGS
    assert h.tags.get("other") == {}  # per resource


def test_tag_keys_resolve_this_accounts_arns_in_any_region(h: Harness) -> None:
    h.create("cam")
    keys = TagKeys(ARNS, {"collection": lambda name: f"stored:{name}" if name == "c1" else None,
                          "streamprocessor": h.service.tag_key})
    cam = h.service.arn("cam")
    assert keys.key("arn:aws:rekognition:ap-south-1:123456789012:streamprocessor/cam") == cam
    assert keys.key("arn:aws:rekognition:eu-west-1:123456789012:collection/c1") == "stored:c1"
    assert keys.key("arn:aws:rekognition:eu-west-1:123456789012:collection/c2") is None
    assert keys.key("arn:aws:rekognition:eu-west-1:123456789012:streamprocessor/nobody") is None
    assert keys.key("arn:aws:rekognition:eu-west-1:999999999999:collection/c1") is None
    assert keys.key("not an arn") is None


def test_a_resource_type_without_an_owner_has_no_tags() -> None:
    keys = TagKeys(ARNS, {"collection": lambda name: f"stored:{name}"})
    assert keys.key(ARNS.collection("c1")) == "stored:c1"
    assert keys.key(ARNS.processor("cam")) is None


def test_the_service_tags_the_resolved_key_and_refuses_unknown_arns(h: Harness) -> None:
    keys = TagKeys(ARNS, {"collection": {"c1": "stored:c1"}.get})
    service = TagService(h.tags, _ledger(h), keys)
    arn = "arn:aws:rekognition:us-west-2:123456789012:collection/c1"  # any region here
    service.tag(arn, {"a": "1", "b": "2"})
    assert h.tags.get("stored:c1") == {"a": "1", "b": "2"} and h.tags.get(arn) == {}
    service.untag(arn, ["a", "absent"])
    assert service.list(arn) == {"b": "2"}
    gone = ARNS.collection("c2")
    for call in (lambda: service.tag(gone, {"a": "1"}), lambda: service.untag(gone, ["a"]),
                 lambda: service.list(gone)):
        with pytest.raises(ResourceNotFoundException, match=f"^Resource {gone} not found$"):
            call()
    assert h.tags.get("stored:c2") == {}
