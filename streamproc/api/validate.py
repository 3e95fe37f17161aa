"""Server-side validation of request bodies against botocore's Rekognition service model.

botocore checks only required members, types and ``min`` on the client; ``max``,
``pattern`` and ``enum`` are the server's job (see the API reference). Walking the
shapes of the model that ships with botocore keeps every operation in step with the
source of truth instead of a hand-copied schema.
"""

from __future__ import annotations

import base64
import binascii
import math
from functools import lru_cache
from typing import Any, cast

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from streamproc.errors import ImageTooLargeException, InvalidParameterException
from streamproc.processors.urls import is_data_output, is_video_input, redact

_IMAGE_BLOB = "ImageBlob"
# No name, key, token or URL holds these, and SQLite, paths and boto3 fail on them (NUL
# ends a C string; an unpaired surrogate cannot be encoded): refused in every string.
_UNENCODABLE = regex.compile(r"[\x00\ud800-\udfff]")
_MAX_SHOWN = 64
_MAX_URL = 2048
# Shapes whose model pattern we widen on purpose: a processor's input may be a media URL
# and its output a kafka:// URL as well as the Kinesis ARNs the model allows.
_WIDENED = {
    "KinesisVideoArn": (is_video_input, "an arn:<partition>:kinesisvideo:<region>:<account>:... "
                        "ARN or a media URL (rtsp, rtmp, http(s), srt, udp, tcp, file path)"),
    "KinesisDataArn": (is_data_output, "an arn:<partition>:kinesis:<region>:<account>:stream/"
                       "<topic> ARN or kafka://host:port/topic"),
}


class ServiceSpec:
    """The Rekognition service model, loaded once per daemon."""

    def __init__(self) -> None:
        self._model: ServiceModel | None = None

    @property
    def model(self) -> ServiceModel:
        """Load botocore's model lazily (it is a gzip read, not free)."""
        if self._model is None:
            self._model = botocore.session.get_session().get_service_model("rekognition")
        return self._model

    def operation(self, name: str) -> OperationModel | None:
        """Return the operation model, or None if the service has no such operation."""
        if name not in self.model.operation_names:
            return None
        return self.model.operation_model(name)

    def validate(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Validate ``body`` for ``operation``; return it with blobs base64-decoded."""
        op = self.operation(operation)
        if op is None or op.input_shape is None:
            return {}
        return _check(op.input_shape, body, "")


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


def _fail(path: str, value: Any, constraint: str) -> InvalidParameterException:
    shown = repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[:_MAX_SHOWN] + "..."
    return InvalidParameterException(
        f"1 validation error detected: Value {shown} at '{path or 'body'}' "
        f"failed to satisfy constraint: {constraint}"
    )


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _check(shape: Shape, value: Any, path: str) -> Any:
    checker = _CHECKERS.get(shape.type_name)
    if checker is None:
        return value
    return checker(shape, value, path)


def _check_structure(shape: Shape, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, value, "Member must be a JSON object")
    members = cast(StructureShape, shape).members  # type_name "structure" builds one
    unknown = sorted(set(value) - set(members))
    if unknown:
        raise InvalidParameterException(f"Unknown parameter '{_join(path, unknown[0])}'")
    for name in shape.required_members:
        if value.get(name) is None:
            raise _fail(_join(path, name), None, "Member must not be null")
    out: dict[str, Any] = {}
    for name, item in value.items():
        if item is None:
            continue
        out[name] = _check(members[name], item, _join(path, name))
    return out


def _check_length(shape: Shape, size: int, value: Any, path: str, what: str) -> None:
    meta = shape.metadata
    if "min" in meta and size < meta["min"]:
        raise _fail(path, value, f"Member must have {what} greater than or equal to {meta['min']}")
    if "max" in meta and size > meta["max"]:
        raise _fail(path, value, f"Member must have {what} less than or equal to {meta['max']}")


def _check_string(shape: Shape, value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, value, "Member must be a string")
    widened = _WIDENED.get(shape.name)
    if _UNENCODABLE.search(value) is not None:
        shown = redact(value) if widened is not None else value
        raise _fail(path, shown, "Member must not contain NUL or unpaired surrogate characters")
    _check_length(shape, len(value), value, path, "length")
    if widened is not None:
        accepts, description = widened
        if len(value) > _MAX_URL or not accepts(value):
            raise _fail(path, redact(value), f"Member must be {description}")
        return value
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        raise _fail(path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
    pattern = shape.metadata.get("pattern")
    if pattern and _pattern(pattern).fullmatch(value) is None:
        raise _fail(path, value, f"Member must satisfy regular expression pattern: {pattern}")
    return value


def _check_number(shape: Shape, value: Any, path: str) -> int | float:
    integral = shape.type_name in ("integer", "long")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, value, "Member must be a number")
    if integral and not isinstance(value, int):
        if not float(value).is_integer():
            raise _fail(path, value, "Member must be an integer")
        value = int(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, value, "Member must be a finite number")
    meta = shape.metadata
    if "min" in meta and value < meta["min"]:
        raise _fail(path, value, f"Member must have value greater than or equal to {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise _fail(path, value, f"Member must have value less than or equal to {meta['max']}")
    return value


def _check_boolean(shape: Shape, value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, value, "Member must be a boolean")
    return value


def _check_blob(shape: Shape, value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(path, "<blob>", "Member must be a base64-encoded string")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(path, "<blob>", "Member must be valid base64") from None
    limit = shape.metadata.get("max")
    if shape.name == _IMAGE_BLOB and limit is not None and len(data) > limit:
        raise ImageTooLargeException(
            f"Image size is too large: {len(data)} bytes, the limit is {limit} bytes"
        )
    _check_length(shape, len(data), "<blob>", path, "length")
    return data


def _check_list(shape: Shape, value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, value, "Member must be a list")
    _check_length(shape, len(value), value, path, "length")
    member = cast(ListShape, shape).member  # type_name "list" builds a ListShape
    return [_check(member, item, f"{path}.{i + 1}") for i, item in enumerate(value)]


def _check_map(shape: Shape, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, value, "Member must be a map")
    _check_length(shape, len(value), value, path, "length")
    entry = cast(MapShape, shape)  # type_name "map" builds a MapShape
    out = {}
    for key, item in value.items():
        _check(entry.key, key, f"{path}.key")
        out[key] = _check(entry.value, item, f"{path}.{key}")
    return out


def _check_timestamp(shape: Shape, value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, value, "Member must be a timestamp in epoch seconds")
    return float(value)


_CHECKERS = {
    "structure": _check_structure,
    "string": _check_string,
    "integer": _check_number,
    "long": _check_number,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "blob": _check_blob,
    "list": _check_list,
    "map": _check_map,
    "timestamp": _check_timestamp,
}
