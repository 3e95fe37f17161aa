"""Dataset manifests, line by line: each JSON line becomes one entry, in error or not.

Ground Truth manifests as Rekognition reads them (shared/reference/moderation.md; Custom
Labels' "manifest files"): a ``source-ref`` and, for a Custom Labels project, image-level
label attributes (``"<attr>": 0``, ``"<attr>-metadata": {"class-name": ..., "type":
"groundtruth/image-classification"}``, or the ``-multilabel`` type with a ``class-map``);
for an adapter project ``content-moderation-groundtruth: {"ModerationLabels": [{"Name":
...}]}`` with top-level taxonomy labels (``[]``: a safe image). A line with neither is an
unlabelled entry, as AWS keeps them.

A line that cannot be used is never dropped: it becomes an entry in error, its JSON line
given an ``errors`` list of ``{"code", "message"}`` (as ListDatasetEntries reports
non-terminal errors), so ``HasErrors=true`` lists it and the reason. Codes are AWS's where
it has one (ERROR_MISSING_SOURCE_REF, ERROR_INVALID_SOURCE_REF_FORMAT, ERROR_INVALID_JSON_LINE,
ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT, ..._METADATA_FORMAT, ERROR_INVALID_LABEL_NAME_LENGTH,
ERROR_UNSUPPORTED_USE_CASE_TYPE, ERROR_INVALID_PERMISSIONS_IMAGES_S3_BUCKET); the two
taxonomy errors of adapters are named here. Images are not read: AWS validates them when
it trains.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamproc.dataplane.stored.manifest import SOURCE_REF, parse_source_ref
from streamproc.moderation import taxonomy
from streamproc.projects.datasets import Entry
from streamproc.projects.types import Feature

ERROR_LINE_TOO_LARGE = "ERROR_JSON_LINE_TOO_LARGE"
ERROR_INVALID_JSON_LINE = "ERROR_INVALID_JSON_LINE"
ERROR_MISSING_SOURCE_REF = "ERROR_MISSING_SOURCE_REF"
ERROR_INVALID_SOURCE_REF_FORMAT = "ERROR_INVALID_SOURCE_REF_FORMAT"
ERROR_BUCKET_NOT_ALLOWED = "ERROR_INVALID_PERMISSIONS_IMAGES_S3_BUCKET"
ERROR_LABEL_FORMAT = "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT"
ERROR_METADATA_FORMAT = "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT"
ERROR_LABEL_NAME_LENGTH = "ERROR_INVALID_LABEL_NAME_LENGTH"
ERROR_UNSUPPORTED = "ERROR_UNSUPPORTED_USE_CASE_TYPE"
ERROR_UNKNOWN_LABEL = "ERROR_UNKNOWN_MODERATION_LABEL"
ERROR_NOT_TOP_LEVEL = "ERROR_NOT_TOP_LEVEL_MODERATION_LABEL"

GROUNDTRUTH = "content-moderation-groundtruth"
_METADATA = "-metadata"
_CLASSIFICATION = "groundtruth/image-classification"
_MULTILABEL = "groundtruth/image-classification-multilabel"
_DETECTION = "groundtruth/object-detection"
MAX_LABEL = 255  # DatasetLabel's length in botocore's model
MAX_ENTRY = 100_000  # DatasetEntry's length in botocore's model
# A line may hold thousands of bad labels: each error repeats a name, so keeping them all
# made an entry 8-9x its line. The first few say what is wrong; "more-errors" counts the rest.
MAX_ERRORS = 5
MAX_MESSAGE = 300  # characters of one error's message (a quoted name is cut short)


@dataclass(frozen=True)
class LineRules:
    """What a line is checked against."""

    feature: Feature
    readable: Callable[[str], bool]  # the object store may read this bucket
    max_line_bytes: int


@dataclass
class _Found:
    """What one line holds, gathered while it is read."""

    labels: set[str]
    labeled: bool
    errors: list[dict[str, str]]
    more: int = 0  # errors past MAX_ERRORS, counted only

    def error(self, code: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            if len(message) > MAX_MESSAGE:
                message = message[:MAX_MESSAGE - 3] + "..."
            self.errors.append({"code": code, "message": message})
        else:
            self.more += 1


def parse_entry(number: int, data: bytes | None, rules: LineRules) -> Entry | None:
    """The entry one manifest line makes (None: a blank line, which is no JSON line).

    ``data`` None: the line was longer than ``rules.max_line_bytes``.
    """
    if data is None:
        return _broken(number, ERROR_LINE_TOO_LARGE,
                       f"The JSON line is longer than {rules.max_line_bytes} bytes "
                       "(projects.dataset_max_line_bytes)")
    if not data.strip():
        return None
    try:
        line = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested past the parser's limit
        return _broken(number, ERROR_INVALID_JSON_LINE, "The JSON line is not valid JSON")
    if not isinstance(line, dict):
        return _broken(number, ERROR_INVALID_JSON_LINE, "The JSON line is not a JSON object")
    entry = parse_object(line, rules)
    if len(entry.line) > MAX_ENTRY:
        # Written out again (1e5 as 100000.0, errors added) it may outgrow DatasetEntry.
        return _broken(number, ERROR_LINE_TOO_LARGE,
                       f"The JSON line, with its errors, is longer than {MAX_ENTRY} "
                       "characters (DatasetEntry's limit)")
    return entry


def parse_object(line: dict[str, Any], rules: LineRules) -> Entry:
    """The entry a JSON object makes: its source-ref and labels checked.

    Its ``errors`` are the first :data:`MAX_ERRORS` (messages cut to :data:`MAX_MESSAGE`
    characters), ``more-errors`` counting any others.
    """
    found = _Found(set(), False, [])
    source_ref = _source_ref(line, rules, found)
    if rules.feature is Feature.CONTENT_MODERATION:
        _moderation_labels(line, found)
    else:
        _custom_labels(line, found)
    shown = {k: v for k, v in line.items() if k not in ("errors", "more-errors")}
    if found.errors:
        shown["errors"] = found.errors
    if found.more:
        shown["more-errors"] = found.more
    return Entry(_compact(shown), source_ref if not _ref_failed(found) else None,
                 tuple(sorted(found.labels)), found.labeled, bool(found.errors))


def _ref_failed(found: _Found) -> bool:
    return any(e["code"] in (ERROR_MISSING_SOURCE_REF, ERROR_INVALID_SOURCE_REF_FORMAT)
               for e in found.errors)


def _broken(number: int, code: str, message: str) -> Entry:
    """An entry for a line that is no JSON object: its number and the reason."""
    return Entry(_compact({"line-number": number,
                           "errors": [{"code": code, "message": message}]}),
                 None, (), False, True)


def _compact(value: dict[str, Any]) -> str:
    # ensure_ascii=False: never longer than the line's UTF-8 bytes (\\u escapes could be 6x).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _source_ref(line: dict[str, Any], rules: LineRules, found: _Found) -> str | None:
    value = line.get(SOURCE_REF)
    if SOURCE_REF not in line:
        found.error(ERROR_MISSING_SOURCE_REF, "The source-ref key is missing")
        return None
    ref = parse_source_ref(value) if isinstance(value, str) else None
    if ref is None:
        found.error(ERROR_INVALID_SOURCE_REF_FORMAT,
                    "The source-ref value is not of the form s3://bucket/key")
        return None
    if not rules.readable(ref.bucket):
        found.error(ERROR_BUCKET_NOT_ALLOWED, f"The bucket {ref.bucket} is not one this "
                    "server may read images from (objects.buckets)")
    return ref_text(value)


def ref_text(value: object) -> str:
    """The source-ref as the line wrote it (a str once parse_source_ref took it)."""
    return str(value)


def _label_name(name: object, found: _Found, attribute: str) -> str | None:
    if not isinstance(name, str) or not name.strip():
        found.error(ERROR_METADATA_FORMAT, f"{attribute}: the class name is not a non-empty "
                    "string")
        return None
    if len(name) > MAX_LABEL or not name.isprintable():
        found.error(ERROR_LABEL_NAME_LENGTH, f"{attribute}: a class name must be 1-{MAX_LABEL} "
                    "printable characters")
        return None
    return name


def _custom_labels(line: dict[str, Any], found: _Found) -> None:
    """Image-level label attributes: every ``<attr>`` with an ``<attr>-metadata`` object."""
    for key, meta in line.items():
        if not key.endswith(_METADATA) or key == f"{SOURCE_REF}{_METADATA}":
            continue
        attribute = key[:-len(_METADATA)]
        if not isinstance(meta, dict):
            found.error(ERROR_METADATA_FORMAT, f"{key} is not a JSON object")
            continue
        kind = meta.get("type")
        if kind == _DETECTION:
            found.error(ERROR_UNSUPPORTED, f"{attribute}: object detection "
                        "(groundtruth/object-detection) is not supported here; image-level "
                        "classification only")
        elif kind == _CLASSIFICATION:
            _classification(attribute, line.get(attribute), meta, found)
        elif kind == _MULTILABEL:
            _multilabel(attribute, line.get(attribute), meta, found)
        else:
            found.error(ERROR_METADATA_FORMAT, f"{key}: type must be {_CLASSIFICATION} or "
                        f"{_MULTILABEL}")


def _class_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _classification(attribute: str, value: object, meta: dict[str, Any],
                    found: _Found) -> None:
    if not _class_id(value):
        found.error(ERROR_LABEL_FORMAT, f"{attribute} must be a class id (0 or more)")
        return
    name = _label_name(meta.get("class-name"), found, attribute)
    if name is not None:
        found.labels.add(name)
        found.labeled = True


def _multilabel(attribute: str, value: object, meta: dict[str, Any], found: _Found) -> None:
    classes = meta.get("class-map")
    if not isinstance(value, list) or not all(_class_id(v) for v in value):
        found.error(ERROR_LABEL_FORMAT, f"{attribute} must be a list of class ids")
        return
    if not isinstance(classes, dict):
        found.error(ERROR_METADATA_FORMAT, f"{attribute}-metadata has no class-map object")
        return
    names = []
    for class_id in value:
        name = _label_name(classes.get(str(class_id)), found, f"{attribute}[{class_id}]")
        if name is None:
            return
        names.append(name)
    found.labels.update(names)
    found.labeled = True


def _moderation_labels(line: dict[str, Any], found: _Found) -> None:
    """``content-moderation-groundtruth``: top-level taxonomy labels, ``[]`` for a safe image."""
    if GROUNDTRUTH not in line:
        return
    truth = line[GROUNDTRUTH]
    labels = truth.get("ModerationLabels") if isinstance(truth, dict) else None
    if not isinstance(labels, list) or not all(
            isinstance(x, dict) and isinstance(x.get("Name"), str) for x in labels):
        found.error(ERROR_LABEL_FORMAT, f"{GROUNDTRUTH} must be {{\"ModerationLabels\": "
                    "[{\"Name\": \"...\"}, ...]}")
        return
    found.labeled = True
    for name in (x["Name"] for x in labels):
        if not taxonomy.is_label(name):
            found.error(ERROR_UNKNOWN_LABEL, f"{name!r} is not a label of the moderation "
                        f"taxonomy {taxonomy.VERSION}")
        elif taxonomy.level_of(name) != 1:
            found.error(ERROR_NOT_TOP_LEVEL, f"{name!r} is a level-{taxonomy.level_of(name)} "
                        "label: adapters take top-level categories only (its top-level "
                        f"category is {taxonomy.ancestors(name)[-1]!r})")
        else:
            found.labels.add(name)
