"""The object store on two independent S3 servers: moto, and ``rclone serve s3`` (SigV4).

Every behaviour of ``test_object_lines.py`` and ``test_object_writes.py`` that S3 has too:
lines streamed from a ``get_object`` body, writes that appear whole or not at all (a part
that fails aborts the multipart upload), a missing bucket refused and never created, the
``objects.buckets`` / ``objects.output_buckets`` allowlists, and rclone's refusal of wrong
credentials read as "access denied".
"""

from __future__ import annotations

import os
import threading
import tracemalloc
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from test_object_lines import reference

from streamproc.errors import InvalidS3ObjectException, OutputNotWritable
from streamproc.storage.object_lines import ManifestLine
from streamproc.storage.objects import ObjectRef, ObjectStore

if TYPE_CHECKING:
    from s3servers import S3Server

pytest_plugins = ["s3servers"]
pytestmark = pytest.mark.e2e  # S3 servers are child processes
MB = 1 << 20


@pytest.fixture(params=["moto", "rclone"])
def server(request: pytest.FixtureRequest) -> S3Server:
    return request.getfixturevalue(f"{request.param}_s3")


@pytest.fixture
def bucket(server: S3Server) -> str:
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    server.make_bucket(name)
    return name


def listed(server: S3Server, bucket: str) -> list[str]:
    """The bucket's keys, and on rclone also every file on disk (temporaries included)."""
    keys = [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    if server.root is not None:
        keys += [f"file:{p.relative_to(server.root / bucket)}"
                 for p in (server.root / bucket).rglob("*") if p.is_file()]
    return sorted(keys)


def test_lines_on_odd_inputs(server: S3Server, bucket: str) -> None:
    data = b"first\r\n\n" + b"z" * (3 * MB) + b"\r\n\r\nexactly10!\r\n" * 3 + b"last"
    server.client().put_object(Bucket=bucket, Key="m.jsonl", Body=data)
    store = ObjectStore(server.objects())
    ref = ObjectRef(bucket, "m.jsonl")
    assert list(store.lines(ref, 10, threading.Event())) == reference(data, 10)
    assert list(store.lines(ref, 10, threading.Event(), skip=3)) == reference(data, 10, 3)
    assert reference(data, 10)[2] == ManifestLine(3, None)


def test_a_long_manifest_and_a_long_line(server: S3Server, bucket: str) -> None:
    s3 = server.client()
    s3.put_object(Bucket=bucket, Key="long.jsonl", Body=b"".join(
        b'{"source-ref": "s3://b/%d.jpg"}\n' % n for n in range(1, 100_001)))
    s3.put_object(Bucket=bucket, Key="wide.jsonl", Body=b"w" * (24 * MB) + b"\nend")
    store = ObjectStore(server.objects())
    got = list(store.lines(ObjectRef(bucket, "long.jsonl"), 100, threading.Event()))
    assert [line.number for line in got] == list(range(1, 100_001))
    assert got[-1].data == b'{"source-ref": "s3://b/100000.jpg"}'
    rest = store.lines(ObjectRef(bucket, "long.jsonl"), 100, threading.Event(), skip=99_999)
    assert list(rest) == [ManifestLine(100_000, b'{"source-ref": "s3://b/100000.jpg"}')]
    tracemalloc.start()
    try:
        wide = list(store.lines(ObjectRef(bucket, "wide.jsonl"), MB, threading.Event()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert wide == [ManifestLine(1, None), ManifestLine(2, b"end")]
    assert peak < 8 * MB, peak  # not the 24 MB line


def test_missing_objects(server: S3Server, bucket: str) -> None:
    store = ObjectStore(server.objects())
    for ref in (ObjectRef(bucket, "absent.jsonl"), ObjectRef("no-such-bucket", "m.jsonl")):
        with pytest.raises(InvalidS3ObjectException, match="Unable to get object"):
            store.lines(ref, 10, threading.Event())


def test_writes_round_trip(server: S3Server, bucket: str, tmp_path: Path) -> None:
    store = ObjectStore(server.objects())
    store.check_output(bucket, "results/")
    store.put_bytes(ObjectRef(bucket, "results/job-1/a.json"), b'{"a": 1}')
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * MB))  # multipart: three parts
    store.put_file(ObjectRef(bucket, "results/job-1/big.bin"), big)
    small = tmp_path / "small.json"
    small.write_bytes(b"small")
    store.put_file(ObjectRef(bucket, "results/small.json"), small)
    assert store.read(ObjectRef(bucket, "results/job-1/a.json"), 100) == b'{"a": 1}'
    assert store.read(ObjectRef(bucket, "results/job-1/big.bin"), 21 * MB) == big.read_bytes()
    assert store.read(ObjectRef(bucket, "results/small.json"), 100) == b"small"
    scratch, ref = tmp_path / "scratch", ObjectRef(bucket, "results/job-1/big.bin")
    with store.local_file(ref, scratch, 20 * MB, threading.Event()) as copy:
        assert copy is not None and copy.read_bytes() == big.read_bytes()
    with pytest.raises(InvalidS3ObjectException, match="grew past"), \
            store.local_file(ref, scratch, 10 * MB, threading.Event()):
        pass
    stopped = threading.Event()
    stopped.set()
    with store.local_file(ref, scratch, 20 * MB, stopped) as copy:
        assert copy is None
    assert list(scratch.iterdir()) == []
    keys = [k for k in listed(server, bucket) if not k.startswith("file:")]
    assert keys == ["results/job-1/a.json", "results/job-1/big.bin", "results/small.json"]


def test_a_missing_bucket_is_refused_never_created(server: S3Server, tmp_path: Path) -> None:
    store = ObjectStore(server.objects())
    source = tmp_path / "a.json"
    source.write_bytes(b"x")
    with pytest.raises(OutputNotWritable, match="The output bucket absent-bkt does not exist"):
        store.check_output("absent-bkt", "")
    with pytest.raises(OutputNotWritable, match="absent-bkt does not exist"):
        store.put_bytes(ObjectRef("absent-bkt", "a.json"), b"x")
    with pytest.raises(OutputNotWritable, match="absent-bkt does not exist"):
        store.put_file(ObjectRef("absent-bkt", "a.json"), source)
    names = [b["Name"] for b in server.client().list_buckets()["Buckets"]]
    assert "absent-bkt" not in names
    assert server.root is None or not (server.root / "absent-bkt").exists()


def test_keys_the_local_root_refuses_are_refused_here_too(server: S3Server,
                                                          bucket: str) -> None:
    store = ObjectStore(server.objects())
    for name in ("../x.json", "a//b.json", "a/", "./a.json"):
        with pytest.raises(OutputNotWritable, match="is not one this store writes"):
            store.put_bytes(ObjectRef(bucket, name), b"x")
    with pytest.raises(OutputNotWritable, match="makes keys this store does not write"):
        store.check_output(bucket, "a//")
    assert listed(server, bucket) == []


def failing(server: S3Server, operation: str, part: int | None = None) -> Any:
    """A client factory whose ``operation`` fails like a dropped connection (one part only)."""
    def factory(_: object) -> Any:
        client = server.client()

        def drop(params: dict[str, Any], **_: Any) -> None:
            if part is None or params.get("PartNumber") == part:
                raise ConnectionClosedError(endpoint_url=server.endpoint)

        client.meta.events.register(f"before-parameter-build.s3.{operation}", drop)
        return client
    return factory


def test_a_failed_upload_leaves_no_object(server: S3Server, bucket: str,
                                          tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"p" * (20 * MB))
    store = ObjectStore(server.objects(), client_factory=failing(server, "UploadPart", 2))
    with pytest.raises(OutputNotWritable, match=f"Writing s3://{bucket}/out/big.bin failed: "
                                                "ConnectionClosedError"):
        store.put_file(ObjectRef(bucket, "out/big.bin"), big)
    store = ObjectStore(server.objects(), client_factory=failing(server, "PutObject"))
    with pytest.raises(OutputNotWritable, match="ConnectionClosedError"):
        store.put_bytes(ObjectRef(bucket, "out/a.json"), b"x")
    with pytest.raises(ClientError):
        server.client().head_object(Bucket=bucket, Key="out/big.bin")
    assert listed(server, bucket) == []  # no object, no part, no temporary file
    if server.name == "moto":  # rclone does not list multipart uploads
        assert server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_reader_never_sees_a_partial_object(server: S3Server, bucket: str,
                                              tmp_path: Path) -> None:
    store = ObjectStore(server.objects())
    ref, size = ObjectRef(bucket, "race.bin"), 9 * MB  # two parts each
    sources = []
    for n in range(2):
        sources.append(tmp_path / f"v{n}")
        sources[-1].write_bytes(bytes([65 + n]) * size)
    done, seen = threading.Event(), set()

    def write() -> None:
        try:
            for n in range(6):
                store.put_file(ref, sources[n % 2])
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    reader = ObjectStore(server.objects())
    while not done.is_set():
        try:
            data = reader.read(ref, size)
        except InvalidS3ObjectException:
            continue  # not written yet
        assert data is not None and len(data) == size and len(set(data)) == 1
        seen.add(data[0])
    writer.join(30)
    assert seen and reader.read(ref, size) == sources[1].read_bytes()


def test_allowlists(server: S3Server, bucket: str, tmp_path: Path) -> None:
    server.client().put_object(Bucket=bucket, Key="a.jpg", Body=b"a")
    store = ObjectStore(server.objects(buckets=["elsewhere"], output_buckets=["elsewhere"]))
    ref, denied = ObjectRef(bucket, "a.jpg"), rf"{bucket} is not one .*\(objects\.buckets\)"
    assert not store.readable(bucket) and store.readable("elsewhere")
    for read in (lambda: store.size(ref), lambda: store.read(ref, 10),
                 lambda: store.lines(ref, 10, threading.Event())):
        with pytest.raises(InvalidS3ObjectException, match=denied):
            read()
    with pytest.raises(InvalidS3ObjectException, match=denied), \
            store.local_file(ref, tmp_path, 10, threading.Event()):
        pass
    for write in (lambda: store.put_bytes(ObjectRef(bucket, "b.json"), b"x"),
                  lambda: store.check_output(bucket, "")):
        with pytest.raises(OutputNotWritable, match=r"objects\.output_buckets"):
            write()
    assert [k for k in listed(server, bucket) if not k.startswith("file:")] == ["a.jpg"]
    allowed = ObjectStore(server.objects(buckets=[bucket], output_buckets=[bucket]))
    assert allowed.read(ref, 10) == b"a"
    allowed.put_bytes(ObjectRef(bucket, "b.json"), b"x")


def test_wrong_keys_are_access_denied_on_rclone(rclone_s3: S3Server, tmp_path: Path) -> None:
    rclone_s3.make_bucket("keyed")
    rclone_s3.client().put_object(Bucket="keyed", Key="a.jsonl", Body=b"a\n")
    for key, secret in ((rclone_s3.key, "wrong-secret"), ("unknown-key", rclone_s3.secret)):
        config = rclone_s3.objects().model_copy(update={
            "s3_access_key_id": key, "s3_secret_access_key": secret})
        store = ObjectStore(config)
        with pytest.raises(OutputNotWritable, match="Access denied to the output bucket keyed"):
            store.check_output("keyed", "out/")
        with pytest.raises(OutputNotWritable, match="Access denied .*objects.s3_access_key_id"):
            store.put_bytes(ObjectRef("keyed", "out/b.json"), b"x")
        source = tmp_path / "b.json"
        source.write_bytes(b"x")
        with pytest.raises(OutputNotWritable, match="Access denied"):
            store.put_file(ObjectRef("keyed", "out/b.json"), source)
        with pytest.raises(InvalidS3ObjectException):
            store.lines(ObjectRef("keyed", "a.jsonl"), 10, threading.Event())
        message = str(pytest.raises(OutputNotWritable, store.check_output, "keyed", "").value)
        assert secret not in message and "wrong-secret" not in message
    assert listed(rclone_s3, "keyed") == ["a.jsonl", "file:a.jsonl"]
