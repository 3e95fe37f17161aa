"""Dataset manifest lines (projects/manifests.py): every kind of line, usable or in error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.projects.datasets import Entry
from streamproc.projects.manifests import (
    ERROR_BUCKET_NOT_ALLOWED,
    ERROR_INVALID_JSON_LINE,
    ERROR_INVALID_SOURCE_REF_FORMAT,
    ERROR_LABEL_FORMAT,
    ERROR_LABEL_NAME_LENGTH,
    ERROR_LINE_TOO_LARGE,
    ERROR_METADATA_FORMAT,
    ERROR_MISSING_SOURCE_REF,
    ERROR_NOT_TOP_LEVEL,
    ERROR_UNKNOWN_LABEL,
    ERROR_UNSUPPORTED,
    LineRules,
    parse_entry,
)
from streamproc.projects.types import Feature

CUSTOM = LineRules(Feature.CUSTOM_LABELS, lambda bucket: bucket == "imgs", 1000)
ADAPTER = LineRules(Feature.CONTENT_MODERATION, lambda bucket: bucket == "imgs", 1000)
REF = "s3://imgs/a/1.jpg"


def classified(name: Any, value: Any = 0, kind: str = "groundtruth/image-classification",
               attr: str = "cls", **more: Any) -> dict[str, Any]:
    """A Ground Truth image-classification line."""
    return {"source-ref": REF, attr: value, f"{attr}-metadata": {
        "class-name": name, "confidence": 1, "type": kind, "human-annotated": "yes", **more}}


def entry(line: Any, rules: LineRules = CUSTOM, number: int = 7) -> Entry:
    data = line if isinstance(line, bytes) else json.dumps(line).encode()
    found = parse_entry(number, data, rules)
    assert found is not None
    return found


def codes(found: Entry) -> list[str]:
    shown = json.loads(found.line)
    return [e["code"] for e in shown.get("errors", [])]


def test_a_classification_line_is_a_labelled_entry_that_keeps_its_json() -> None:
    line = classified("sunrise")
    found = entry(line)
    assert (found.source_ref, found.labels, found.labeled, found.has_errors) == (
        REF, ("sunrise",), True, False)
    assert json.loads(found.line) == line  # what ListDatasetEntries returns, unchanged


def test_multilabel_and_several_attributes_gather_every_label() -> None:
    line = classified(None, [0, 2], "groundtruth/image-classification-multilabel",
                      **{"class-map": {"0": "cat", "2": "dog"}})
    del line["cls-metadata"]["class-name"]
    line.update({"other": 1, "other-metadata": {"class-name": "indoor",
                                                "type": "groundtruth/image-classification"}})
    found = entry(line)
    assert found.labels == ("cat", "dog", "indoor") and not found.has_errors


def test_a_line_without_labels_is_an_unlabelled_entry_not_an_error() -> None:
    found = entry({"source-ref": REF, "extra": {"kept": True}})
    assert (found.labeled, found.has_errors, found.labels) == (False, False, ())
    found = entry({"source-ref": REF}, ADAPTER)
    assert (found.labeled, found.has_errors) == (False, False)


@pytest.mark.parametrize(("data", "code"), [
    (b"{not json", ERROR_INVALID_JSON_LINE),
    (b"[1, 2]", ERROR_INVALID_JSON_LINE),
    (b"\xff\xfe{}", ERROR_INVALID_JSON_LINE),
    (b"[" * 5000 + b"]" * 5000, ERROR_INVALID_JSON_LINE),  # past the parser's depth
    (b'{"source-ref": "s3://b/k", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     ERROR_INVALID_JSON_LINE),
    (None, ERROR_LINE_TOO_LARGE)])
def test_a_line_that_is_no_json_object_is_kept_with_its_number_and_reason(
        data: bytes | None, code: str) -> None:
    found = parse_entry(12, data, CUSTOM)
    assert found is not None and found.has_errors and found.source_ref is None
    shown = json.loads(found.line)
    assert shown["line-number"] == 12 and [e["code"] for e in shown["errors"]] == [code]
    assert shown["errors"][0]["message"]


def test_a_blank_line_is_no_entry() -> None:
    assert parse_entry(3, b"   \t", CUSTOM) is None


@pytest.mark.parametrize(("ref", "code"), [
    (None, ERROR_MISSING_SOURCE_REF), (17, ERROR_INVALID_SOURCE_REF_FORMAT),
    ("https://imgs/a.jpg", ERROR_INVALID_SOURCE_REF_FORMAT),
    ("s3://imgs", ERROR_INVALID_SOURCE_REF_FORMAT),
    ("s3://imgs/" + "k" * 1025, ERROR_INVALID_SOURCE_REF_FORMAT),
    ("s3://elsewhere/a.jpg", ERROR_BUCKET_NOT_ALLOWED)])
def test_source_refs_are_checked_without_reading_the_image(ref: Any, code: str) -> None:
    line = classified("sunrise")
    if ref is None:
        del line["source-ref"]
    else:
        line["source-ref"] = ref
    found = entry(line)
    assert found.has_errors and codes(found) == [code]
    assert found.labels == ("sunrise",)  # the annotation itself was fine
    # A source-ref that names no object is no key to replace by; a refused bucket's still is.
    assert found.source_ref == (ref if code == ERROR_BUCKET_NOT_ALLOWED else None)


@pytest.mark.parametrize(("line", "code"), [
    (classified("x", kind="groundtruth/object-detection"), ERROR_UNSUPPORTED),
    (classified("x", value="zero"), ERROR_LABEL_FORMAT),
    (classified("x", value=True), ERROR_LABEL_FORMAT),
    (classified("x", value=-1), ERROR_LABEL_FORMAT),
    (classified(""), ERROR_METADATA_FORMAT),
    (classified(3), ERROR_METADATA_FORMAT),
    (classified("x" * 256), ERROR_LABEL_NAME_LENGTH),
    (classified("two\nlines"), ERROR_LABEL_NAME_LENGTH),
    (classified("x", kind="groundtruth/semantic-segmentation"), ERROR_METADATA_FORMAT),
    ({"source-ref": REF, "cls": 0, "cls-metadata": "sunrise"}, ERROR_METADATA_FORMAT),
    (classified(None, [0, 5], "groundtruth/image-classification-multilabel",
                **{"class-map": {"0": "a"}}), ERROR_METADATA_FORMAT),
    (classified(None, 0, "groundtruth/image-classification-multilabel",
                **{"class-map": {"0": "a"}}), ERROR_LABEL_FORMAT)])
def test_broken_label_attributes_are_error_entries(line: dict[str, Any], code: str) -> None:
    found = entry(line)
    assert found.has_errors and codes(found) == [code] and found.source_ref == REF
    assert not found.labeled and found.labels == ()


def test_an_object_detection_line_says_it_is_not_supported() -> None:
    found = entry(classified("x", kind="groundtruth/object-detection"))
    (error,) = json.loads(found.line)["errors"]
    assert "object detection" in error["message"] and "not supported" in error["message"]


def moderation(*names: Any) -> dict[str, Any]:
    return {"source-ref": REF, "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": n} for n in names]}}


def test_adapter_lines_take_top_level_labels_and_an_empty_list_is_a_safe_image() -> None:
    found = entry(moderation("Violence", "Gambling", "Violence"), ADAPTER)
    assert (found.labels, found.labeled, found.has_errors) == (
        ("Gambling", "Violence"), True, False)
    safe = entry(moderation(), ADAPTER)
    assert (safe.labels, safe.labeled, safe.has_errors) == ((), True, False)


@pytest.mark.parametrize(("names", "code", "said"), [
    (("Weapons",), ERROR_NOT_TOP_LEVEL, "'Violence'"),
    (("Smoking",), ERROR_NOT_TOP_LEVEL, "'Drugs & Tobacco'"),
    (("Nudity",), ERROR_UNKNOWN_LABEL, "taxonomy 7.0"),
    (("Rude Gesture",), ERROR_UNKNOWN_LABEL, "'Rude Gesture'")])
def test_adapter_labels_outside_the_top_level_are_errors_with_the_reason(
        names: tuple[str, ...], code: str, said: str) -> None:
    found = entry(moderation("Alcohol", *names), ADAPTER)
    assert found.has_errors and codes(found) == [code] and found.labels == ("Alcohol",)
    assert said in json.loads(found.line)["errors"][0]["message"]


@pytest.mark.parametrize("truth", [[], "Violence", {"ModerationLabels": "Violence"},
                                   {"ModerationLabels": [{"name": "Violence"}]},
                                   {"ModerationLabels": [{"Name": 3}]}])
def test_a_malformed_groundtruth_is_an_error(truth: Any) -> None:
    found = entry({"source-ref": REF, "content-moderation-groundtruth": truth}, ADAPTER)
    assert codes(found) == [ERROR_LABEL_FORMAT] and not found.labeled


def test_custom_label_attributes_mean_nothing_to_an_adapter_project() -> None:
    found = entry(classified("sunrise"), ADAPTER)
    assert (found.labeled, found.has_errors) == (False, False)


def test_a_line_that_had_errors_keys_shows_only_this_parse() -> None:
    line = {**classified("x", kind="groundtruth/object-detection"),
            "errors": [{"code": "OLD", "message": "stale"}]}
    assert codes(entry(line)) == [ERROR_UNSUPPORTED]
    assert "errors" not in json.loads(entry({**classified("x"), "errors": []}).line)


def test_non_ascii_lines_are_kept_unescaped_so_they_never_grow() -> None:
    line = classified("日の出" * 50)
    raw = json.dumps(line, ensure_ascii=False).encode()
    found = entry(raw)
    assert len(found.line) <= len(raw) and found.labels == ("日の出" * 50,)


BIG = LineRules(Feature.CONTENT_MODERATION, lambda bucket: bucket == "imgs", 90_000)


def test_many_bad_labels_keep_five_errors_and_count_the_rest() -> None:
    names = [f"nope-{i}-" + "x" * 2000 for i in range(30)]
    line = {"source-ref": REF,
            "content-moderation-groundtruth": {"ModerationLabels": [{"Name": n} for n in names]}}
    data = json.dumps(line).encode()
    found = entry(line, BIG)
    shown = json.loads(found.line)
    assert codes(found) == [ERROR_UNKNOWN_LABEL] * 5 and shown["more-errors"] == 25
    assert all(len(e["message"]) <= 300 for e in shown["errors"])
    assert len(found.line) < len(data) + 5 * 400  # no longer 8-9x its line


def test_an_entry_that_would_pass_datasetentry_s_length_is_one_error_entry() -> None:
    # 1e5 is written back as 100000.0: 3 characters become 8, so the entry outgrows its line.
    data = b'{"source-ref":"' + REF.encode() + b'","n":[' + b",".join([b"1e5"] * 20_000) + b"]}"
    assert len(data) <= 90_000
    found = parse_entry(4, data, BIG)
    assert found is not None and found.has_errors and len(found.line) <= 100_000
    assert json.loads(found.line)["line-number"] == 4
    assert codes(found) == [ERROR_LINE_TOO_LARGE]


label_names = st.text(st.characters(codec="utf-8"), min_size=0, max_size=3000)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(label_names, max_size=40), numbers=st.integers(0, 10_000))
def test_a_stored_entry_never_passes_datasetentry_s_length(names: list[str],
                                                           numbers: int) -> None:
    line = {"source-ref": REF, "n": [1e5] * numbers,
            "content-moderation-groundtruth": {"ModerationLabels": [{"Name": n} for n in names]}}
    data = json.dumps(line, ensure_ascii=False).encode()
    if len(data) > BIG.max_line_bytes:
        return
    for rules in (BIG, LineRules(Feature.CUSTOM_LABELS, BIG.readable, 90_000)):
        found = parse_entry(1, data, rules)
        assert found is not None and len(found.line) <= 100_000
