"""Server-side validation against botocore's model: each constraint, at its edge."""

from __future__ import annotations

import base64

import pytest
from botocore.model import Shape
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.api import validate
from streamproc.api.validate import ServiceSpec
from streamproc.errors import ImageTooLargeException, InvalidParameterException

FACE = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def spec() -> ServiceSpec:
    return ServiceSpec()


def refused(spec: ServiceSpec, op: str, body: dict, message: str) -> None:
    with pytest.raises(InvalidParameterException) as err:
        spec.validate(op, body)
    assert message in err.value.message, err.value.message


def test_unknown_operations_validate_to_nothing(spec: ServiceSpec) -> None:
    assert spec.operation("NoSuchOperation") is None
    assert spec.validate("NoSuchOperation", {"x": 1}) == {}
    assert spec.operation("ListCollections").name == "ListCollections"


def test_structures(spec: ServiceSpec) -> None:
    refused(spec, "CreateCollection", [], "Value [] at 'body' failed to satisfy constraint: "
            "Member must be a JSON object")
    refused(spec, "CreateCollection", {"CollectionId": "a", "Nope": 1},
            "Unknown parameter 'Nope'")
    refused(spec, "CreateCollection", {}, "Value None at 'CollectionId' failed to satisfy "
            "constraint: Member must not be null")
    refused(spec, "CreateCollection", {"CollectionId": None}, "Member must not be null")
    refused(spec, "IndexFaces", {"CollectionId": "a", "Image": {"Bytes": "aGk=", "X": 1}},
            "Unknown parameter 'Image.X'")
    # Optional members given as null are dropped, not passed on.
    assert spec.validate("ListCollections", {"MaxResults": None, "NextToken": "t"}) == {
        "NextToken": "t"}


def test_string_length_and_pattern(spec: ServiceSpec) -> None:
    assert spec.validate("CreateCollection", {"CollectionId": "a"}) == {"CollectionId": "a"}
    assert spec.validate("CreateCollection", {"CollectionId": "a" * 255})
    refused(spec, "CreateCollection", {"CollectionId": "a" * 256},
            "Member must have length less than or equal to 255")
    refused(spec, "CreateCollection", {"CollectionId": ""},
            "Member must have length greater than or equal to 1")
    refused(spec, "CreateCollection", {"CollectionId": "a b"},
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+")
    refused(spec, "CreateCollection", {"CollectionId": 5}, "Member must be a string")
    long_value = "é" * 300
    with pytest.raises(InvalidParameterException) as err:
        spec.validate("CreateCollection", {"CollectionId": long_value})
    assert "..." in err.value.message and long_value not in err.value.message  # shown cut


def test_enums(spec: ServiceSpec) -> None:
    for level in ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH"):
        spec.validate("IndexFaces", {"CollectionId": "a", "Image": {"Bytes": "aGk="},
                                     "QualityFilter": level})
    refused(spec, "IndexFaces", {"CollectionId": "a", "Image": {"Bytes": "aGk="},
                                 "QualityFilter": "auto"},
            "Member must satisfy enum value set: [NONE, AUTO, LOW, MEDIUM, HIGH]")


def test_numbers(spec: ServiceSpec) -> None:
    body = {"CollectionId": "a", "FaceId": FACE}
    assert spec.validate("SearchFaces", {**body, "MaxFaces": 1})["MaxFaces"] == 1
    assert spec.validate("SearchFaces", {**body, "MaxFaces": 4096})["MaxFaces"] == 4096
    assert spec.validate("SearchFaces", {**body, "MaxFaces": 7.0})["MaxFaces"] == 7
    assert isinstance(spec.validate("SearchFaces", {**body, "MaxFaces": 7.0})["MaxFaces"], int)
    refused(spec, "SearchFaces", {**body, "MaxFaces": 0},
            "Member must have value greater than or equal to 1")
    refused(spec, "SearchFaces", {**body, "MaxFaces": 4097},
            "Member must have value less than or equal to 4096")
    refused(spec, "SearchFaces", {**body, "MaxFaces": 1.5}, "Member must be an integer")
    refused(spec, "SearchFaces", {**body, "MaxFaces": True}, "Member must be a number")
    refused(spec, "SearchFaces", {**body, "MaxFaces": "3"}, "Member must be a number")
    for value in (0, 100, 99.5, 0.0):
        spec.validate("SearchFaces", {**body, "FaceMatchThreshold": value})
    refused(spec, "SearchFaces", {**body, "FaceMatchThreshold": 100.01},
            "less than or equal to 100")
    refused(spec, "SearchFaces", {**body, "FaceMatchThreshold": -0.01},
            "greater than or equal to 0")
    refused(spec, "SearchFaces", {**body, "FaceMatchThreshold": float("nan")},
            "Member must be a finite number")
    refused(spec, "SearchFaces", {**body, "FaceMatchThreshold": float("inf")}, "finite")
    start = {"Name": "n", "StartSelector": {"KVSStreamStartSelector": {"ProducerTimestamp": -1}}}
    refused(spec, "StartStreamProcessor", start, "greater than or equal to 0")


def test_booleans(spec: ServiceSpec) -> None:
    ok = {"Name": "n", "DataSharingPreferenceForUpdate": {"OptIn": False}}
    assert spec.validate("UpdateStreamProcessor", ok) == ok
    for value in ("yes", 1, 0):
        refused(spec, "UpdateStreamProcessor", {"Name": "n", "DataSharingPreferenceForUpdate": {
            "OptIn": value}}, "Member must be a boolean")


def test_blobs(spec: ServiceSpec) -> None:
    assert spec.validate("DetectFaces", {"Image": {"Bytes": "aGk="}}) == {
        "Image": {"Bytes": b"hi"}}
    refused(spec, "DetectFaces", {"Image": {"Bytes": 5}}, "Member must be a base64-encoded")
    refused(spec, "DetectFaces", {"Image": {"Bytes": "not base64!"}}, "valid base64")
    refused(spec, "DetectFaces", {"Image": {"Bytes": ""}},
            "Member must have length greater than or equal to 1")
    limit = 5 * 1024 * 1024
    at_limit = base64.b64encode(b"x" * limit).decode()
    assert len(spec.validate("DetectFaces", {"Image": {"Bytes": at_limit}})["Image"][
        "Bytes"]) == limit
    with pytest.raises(ImageTooLargeException, match=f"{limit + 1} bytes, the limit is {limit}"):
        spec.validate("DetectFaces", {"Image": {"Bytes": base64.b64encode(
            b"x" * (limit + 1)).decode()}})


def test_lists_and_maps(spec: ServiceSpec) -> None:
    body = {"CollectionId": "a"}
    assert spec.validate("DeleteFaces", {**body, "FaceIds": [FACE]})["FaceIds"] == [FACE]
    refused(spec, "DeleteFaces", {**body, "FaceIds": []}, "greater than or equal to 1")
    refused(spec, "DeleteFaces", {**body, "FaceIds": [FACE] * 4097}, "less than or equal to 4096")
    refused(spec, "DeleteFaces", {**body, "FaceIds": FACE}, "Member must be a list")
    refused(spec, "DeleteFaces", {**body, "FaceIds": [FACE, "bad id"]},
            "at 'FaceIds.2' failed")
    tags = {f"k{i}": "v" for i in range(200)}
    assert spec.validate("CreateCollection", {**body, "Tags": tags})["Tags"] == tags
    refused(spec, "CreateCollection", {**body, "Tags": {**tags, "one": "more"}},
            "less than or equal to 200")
    refused(spec, "CreateCollection", {**body, "Tags": ["k"]}, "Member must be a map")
    refused(spec, "CreateCollection", {**body, "Tags": {"k": "v" * 257}}, "at 'Tags.k' failed")
    refused(spec, "CreateCollection", {**body, "Tags": {"aws:k": "v"}}, "at 'Tags.key' failed")


def test_widened_inputs_and_outputs(spec: ServiceSpec) -> None:
    def create(input_arn: str, output_arn: str = "kafka://k:1/t") -> dict:
        return {"Name": "n", "RoleArn": "arn:aws:iam::123456789012:role/r",
                "Input": {"KinesisVideoStream": {"Arn": input_arn}},
                "Output": {"KinesisDataStream": {"Arn": output_arn}},
                "Settings": {"FaceSearch": {"CollectionId": "c"}}}

    for url in ("rtsp://cam/live", "/videos/a.mp4", "tcp://h:1",
                "arn:aws:kinesisvideo:us-east-1:123456789012:stream/cam/1"):
        spec.validate("CreateStreamProcessor", create(url))
    spec.validate("CreateStreamProcessor", create(
        "tcp://h:1", "arn:aws:kinesis:us-east-1:123456789012:stream/t"))
    with pytest.raises(InvalidParameterException) as err:
        spec.validate("CreateStreamProcessor", create("gopher://u:hunter2@h/x"))
    assert "hunter2" not in err.value.message and "Input.KinesisVideoStream.Arn" in \
        err.value.message and "a media URL" in err.value.message
    refused(spec, "CreateStreamProcessor", create("rtsp://h/" + "x" * 2040),
            "Member must be an arn:")
    spec.validate("CreateStreamProcessor", create("rtsp://h/" + "x" * 2039))
    refused(spec, "CreateStreamProcessor", create("tcp://h:1", "kafka://k:1/"),
            "kafka://host:port/topic")


def test_timestamps_are_epoch_seconds() -> None:
    # No Rekognition input has a timestamp today; the checker guards a future model.
    shape = Shape("When", {"type": "timestamp"})
    assert validate._check(shape, 5, "When") == 5.0
    assert isinstance(validate._check(shape, 5, "When"), float)
    for value in ("2026-01-01", True, None):
        with pytest.raises(InvalidParameterException) as err:
            validate._check(shape, value, "A.When")
        assert err.value.message == (
            f"1 validation error detected: Value {value!r} at 'A.When' failed to satisfy "
            "constraint: Member must be a timestamp in epoch seconds")


SPS = {"Name": "p", "RoleArn": "arn:aws:iam::123456789012:role/r",
       "Output": {"KinesisDataStream": {"Arn": "kafka://k:1/t"}},
       "Settings": {"FaceSearch": {"CollectionId": "c"}},
       "Input": {"KinesisVideoStream": {"Arn": "gopher://u:pw@h/x"}}}


@pytest.mark.parametrize(("op", "body", "value", "path", "constraint"), [
    ("IndexFaces", {"CollectionId": "c", "Image": {"Bytes": 5}}, "'<blob>'", "Image.Bytes",
     "Member must be a base64-encoded string"),
    # Not in the base64 alphabet: refused, not skipped over.
    ("IndexFaces", {"CollectionId": "c", "Image": {"Bytes": "aG!k="}}, "'<blob>'",
     "Image.Bytes", "Member must be valid base64"),
    ("IndexFaces", {"CollectionId": "c", "Image": {"Bytes": ""}}, "'<blob>'", "Image.Bytes",
     "Member must have length greater than or equal to 1"),
    ("IndexFaces", {"CollectionId": "c"}, "None", "Image", "Member must not be null"),
    ("IndexFaces", {"CollectionId": "c", "Image": "x"}, "'x'", "Image",
     "Member must be a JSON object"),
    ("IndexFaces", {"CollectionId": "c", "Image": {"Bytes": "aGk="}, "QualityFilter": "BEST"},
     "'BEST'", "QualityFilter",
     "Member must satisfy enum value set: [NONE, AUTO, LOW, MEDIUM, HIGH]"),
    ("UpdateStreamProcessor", {"Name": "p", "DataSharingPreferenceForUpdate": {"OptIn": "yes"}},
     "'yes'", "DataSharingPreferenceForUpdate.OptIn", "Member must be a boolean"),
    ("DeleteFaces", {"CollectionId": "c", "FaceIds": "f"}, "'f'", "FaceIds",
     "Member must be a list"),
    ("DeleteFaces", {"CollectionId": "c", "FaceIds": []}, "[]", "FaceIds",
     "Member must have length greater than or equal to 1"),
    ("CreateCollection", {"CollectionId": "c", "Tags": "t"}, "'t'", "Tags",
     "Member must be a map"),
    ("CreateCollection", {"CollectionId": "c", "Tags": {f"k{i}": "v" for i in range(201)}},
     "{'k0': 'v', 'k1': 'v', 'k2': 'v', 'k3': 'v', 'k4': 'v', 'k5': 'v...", "Tags",
     "Member must have length less than or equal to 200"),
    ("ListCollections", {"MaxResults": "x"}, "'x'", "MaxResults", "Member must be a number"),
    ("ListCollections", {"MaxResults": 1.5}, "1.5", "MaxResults", "Member must be an integer"),
    ("ListCollections", {"MaxResults": -1}, "-1", "MaxResults",
     "Member must have value greater than or equal to 0"),
    ("ListCollections", {"MaxResults": 4097}, "4097", "MaxResults",
     "Member must have value less than or equal to 4096"),
    ("SearchFaces", {"CollectionId": "c", "FaceId": FACE, "FaceMatchThreshold": float("nan")},
     "nan", "FaceMatchThreshold", "Member must be a finite number"),
    # A long (not only an integer) must be integral.
    ("StartStreamProcessor", {"Name": "p", "StartSelector": {
        "KVSStreamStartSelector": {"ProducerTimestamp": 1.5}}}, "1.5",
     "StartSelector.KVSStreamStartSelector.ProducerTimestamp", "Member must be an integer"),
    ("CreateCollection", {"CollectionId": 5}, "5", "CollectionId", "Member must be a string"),
    ("CreateCollection", {"CollectionId": "a b"}, "'a b'", "CollectionId",
     "Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+"),
    # A value shown in 64 characters is shown whole; a longer one is cut there.
    ("CreateCollection", {"CollectionId": "y" * 61 + " "}, repr("y" * 61 + " "), "CollectionId",
     "Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+"),
    ("CreateCollection", {"CollectionId": "x" * 256}, "'" + "x" * 63 + "...", "CollectionId",
     "Member must have length less than or equal to 255"),
    ("CreateStreamProcessor", SPS, "'gopher://***:***@h/x'", "Input.KinesisVideoStream.Arn",
     "Member must be an arn:<partition>:kinesisvideo:<region>:<account>:... ARN or a media URL "
     "(rtsp, rtmp, http(s), srt, udp, tcp, file path)"),
])
def test_each_refusal_names_the_value_the_path_and_the_constraint(
        spec: ServiceSpec, op: str, body: dict, value: str, path: str, constraint: str) -> None:
    with pytest.raises(InvalidParameterException) as err:
        spec.validate(op, body)
    assert err.value.message == (f"1 validation error detected: Value {value} at '{path}' "
                                 f"failed to satisfy constraint: {constraint}")


# ---- NUL characters, unpaired surrogates and lengths, in every string of the model ----------

def _string_shapes() -> list[Shape]:
    """Every non-enum string shape some operation's input reaches, once each."""
    found: dict[str, Shape] = {}

    def walk(shape: Shape, depth: int) -> None:
        if depth > 8:
            return
        if shape.type_name == "string" and not shape.metadata.get("enum"):
            found.setdefault(shape.name, shape)
        for child in _children(shape):
            walk(child, depth + 1)

    model = ServiceSpec().model
    for name in model.operation_names:
        op = model.operation_model(name)
        if op.input_shape is not None:
            walk(op.input_shape, 0)
    return [found[k] for k in sorted(found)]


def _children(shape: Shape) -> list[Shape]:
    if shape.type_name == "structure":
        return list(shape.members.values())
    if shape.type_name == "list":
        return [shape.member]
    if shape.type_name == "map":
        return [shape.key, shape.value]
    return []


STRINGS = _string_shapes()
BAD_CHARS = st.sampled_from(["\x00", "\ud800", "\udfff", "\udc80"])


@settings(max_examples=400, deadline=None)
@given(shape=st.sampled_from(STRINGS), before=st.text(max_size=20), bad=BAD_CHARS,
       after=st.text(max_size=20))
def test_no_string_member_takes_nul_or_an_unpaired_surrogate(
        shape: Shape, before: str, bad: str, after: str) -> None:
    with pytest.raises(InvalidParameterException):
        validate._check(shape, before + bad + after, "p")


def test_every_length_constraint_of_the_model_is_enforced() -> None:
    limited = [s for s in STRINGS if "max" in s.metadata or s.metadata.get("min", 0) > 0]
    assert {"S3ObjectName", "S3Bucket", "ResourceArn", "CollectionId"} <= {
        s.name for s in limited}
    for shape in limited:
        if "max" in shape.metadata:
            with pytest.raises(InvalidParameterException, match="length less than or equal"):
                validate._check(shape, "a" * (shape.metadata["max"] + 1), "p")
        if shape.metadata.get("min", 0) > 0:
            with pytest.raises(InvalidParameterException):
                validate._check(shape, "a" * (shape.metadata["min"] - 1), "p")


S3 = {"Bucket": "photos", "Name": "a.jpg"}


@pytest.mark.parametrize("op,body,path", [
    ("DetectFaces", {"Image": {"S3Object": {**S3, "Name": "a\x00.jpg"}}}, "Image.S3Object.Name"),
    ("DetectFaces", {"Image": {"S3Object": {**S3, "Version": "v\x00"}}},
     "Image.S3Object.Version"),
    ("DetectFaces", {"Image": {"S3Object": {**S3, "Name": "\ud83d.jpg"}}},
     "Image.S3Object.Name"),
    ("StartFaceDetection", {"Video": {"S3Object": {**S3, "Name": "v\x00.mp4"}}},
     "Video.S3Object.Name"),
    ("ListTagsForResource", {"ResourceArn": "arn:aws:rekognition:us-east-1:000000000000:"
                             "collection/c\x00"}, "ResourceArn"),
    ("ListFaces", {"CollectionId": "c", "NextToken": "t\x00"}, "NextToken"),
    ("CreateStreamProcessor", {**SPS, "Input": {"KinesisVideoStream": {
        "Arn": "/srv/media/a\x00.mp4"}}}, "Input.KinesisVideoStream.Arn"),
    ("CreateCollection", {"CollectionId": "c", "Tags": {"k": "v\x00"}}, "Tags.k"),
])
def test_nul_is_refused_first_with_its_own_message(spec: ServiceSpec, op: str, body: dict,
                                               path: str) -> None:
    with pytest.raises(InvalidParameterException) as err:
        spec.validate(op, body)
    assert f"at '{path}' failed to satisfy constraint: Member must not contain" in \
        err.value.message


def test_a_refused_url_with_nul_is_shown_redacted(spec: ServiceSpec) -> None:
    body = {**SPS, "Input": {"KinesisVideoStream": {"Arn": "rtsp://cam:Secret99@h/x\x00"}}}
    with pytest.raises(InvalidParameterException) as err:
        spec.validate("CreateStreamProcessor", body)
    assert "Secret99" not in err.value.message and "***:***@h" in err.value.message
    assert "Member must not contain NUL" in err.value.message


def test_a_missing_nested_member_is_named_by_its_whole_path(spec: ServiceSpec) -> None:
    refused(spec, "CreateStreamProcessor", {**SPS, "Settings": {"ConnectedHome": {}}},
            "Value None at 'Settings.ConnectedHome.Labels' failed to satisfy constraint: "
            "Member must not be null")


def test_a_refused_value_of_a_member_that_is_no_url_is_echoed_as_sent(spec: ServiceSpec) -> None:
    """Only the widened URL members carry credentials; any other value is shown as AWS does."""
    refused(spec, "CreateCollection", {"CollectionId": "http://a:b@h/\x00"},
            "Value 'http://a:b@h/\\x00' at 'CollectionId' failed to satisfy constraint: "
            "Member must not contain NUL")
