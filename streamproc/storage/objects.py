"""The one reader (and writer) of ``S3Object`` references: images, videos, manifests, results.

With ``objects.s3_endpoint`` set, objects come from that S3-compatible store through boto3
(``Version`` honoured); otherwise, with ``objects.local_root`` set, ``{Bucket, Name}`` is the
file ``ROOT/Bucket/Name``; with neither, S3 references are refused. Every failure to find or
read an object is :class:`~streamproc.errors.InvalidS3ObjectException`; callers decide what
"too large" means for them (an image, a video) from :meth:`ObjectStore.size`. Every failure
to write one is :class:`~streamproc.errors.OutputNotWritable`; writes are atomic
(:mod:`.object_writes`, :mod:`.object_s3`). :meth:`ObjectStore.listing` (a read) lists a
prefix and :meth:`ObjectStore.delete` (a write) removes an object, :meth:`ObjectStore.delete_many`
many. ``objects.buckets`` limits
every read to its buckets, ``objects.output_buckets`` every write and delete.

Keys are opaque strings, mapped to files only where the path spells the key back exactly
(:func:`~.object_keys.local_path`); lines are streamed by :mod:`.object_lines`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from streamproc.config import ObjectsConfig
from streamproc.errors import InvalidS3ObjectException, OutputNotWritable
from streamproc.storage.object_keys import (
    ListedObject,
    ObjectRef,
    local_object,
    local_path,
    writable_key,
)
from streamproc.storage.object_lines import ManifestLine, read_chunks, split_lines
from streamproc.storage.object_listing import list_local
from streamproc.storage.object_s3 import (
    check_s3_output,
    delete_many_s3,
    delete_s3,
    list_s3,
    make_client,
    put_s3,
)
from streamproc.storage.object_writes import (
    check_local_output,
    delete_local,
    delete_many_local,
    write_local,
)

__all__ = ["ListedObject", "ManifestLine", "ObjectRef", "ObjectStore", "local_path"]

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound", "403",
            "AccessDenied", "InvalidArgument", "400"}


class ObjectStore:
    """Reads and writes objects in S3 or the local root. Construction does no I/O."""

    def __init__(self, config: ObjectsConfig, client_factory: Any = None) -> None:
        self._config = config
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """True when S3 references can be resolved at all."""
        return self._config.s3_endpoint is not None or self._config.local_root is not None

    def readable(self, bucket: str) -> bool:
        """True when references may name ``bucket`` (``objects.buckets``).

        No I/O: it says nothing of whether the bucket exists.
        """
        allowed = self._config.buckets
        return self.available and (allowed is None or bucket in allowed)

    # ---- reads ------------------------------------------------------------------------------
    def size(self, ref: ObjectRef) -> int:
        """The object's size in bytes (InvalidS3ObjectException when it cannot be read)."""
        self._allow_read(ref)
        if self._config.s3_endpoint is not None:
            head = self._s3_call("head_object", ref)
            return int(head["ContentLength"])
        try:
            return self._local(ref).stat().st_size
        except OSError:
            raise InvalidS3ObjectException() from None

    def fingerprint(self, ref: ObjectRef) -> str:
        """What tells this object from another written under its name since (no content read).

        S3: its size, ETag and LastModified; the local root: its size, modification time (ns)
        and inode. InvalidS3ObjectException when it cannot be read.
        """
        self._allow_read(ref)
        if self._config.s3_endpoint is not None:
            head = self._s3_call("head_object", ref)
            return f"{head['ContentLength']}:{head.get('ETag', '')}:{head.get('LastModified', '')}"
        try:
            stat = self._local(ref).stat()
        except OSError:
            raise InvalidS3ObjectException() from None
        return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"

    def read(self, ref: ObjectRef, limit: int) -> bytes | None:
        """The whole object, or None if it holds more than ``limit`` bytes.

        At most ``limit + 1`` bytes are ever read, so an object that grew after
        :meth:`size` was asked cannot make the caller hold more than it allowed.
        """
        self._allow_read(ref)
        data = self._read_local(ref, limit) if self._config.s3_endpoint is None \
            else self._read_s3(ref, limit)
        return data if len(data) <= limit else None

    def _read_local(self, ref: ObjectRef, limit: int) -> bytes:
        try:
            with self._local(ref).open("rb") as file:
                return file.read(limit + 1)
        except OSError:
            raise InvalidS3ObjectException() from None

    def _read_s3(self, ref: ObjectRef, limit: int) -> bytes:
        body = self._s3_call("get_object", ref)["Body"]
        chunks, size = [], 0
        with closing(read_chunks(body, _CHUNK, ref.shown)) as stream:
            for chunk in stream:
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
        return b"".join(chunks)

    @contextmanager
    def local_file(self, ref: ObjectRef, scratch: Path, max_bytes: int,
                   stop: threading.Event) -> Iterator[Path | None]:
        """A local path holding the object for the ``with`` block (None if ``stop`` was set).

        Local objects are used in place; S3 objects are copied into ``scratch`` in 1 MiB
        chunks (checking ``stop`` between them, so a shutdown never waits for a large
        download) and removed afterwards.
        """
        self._allow_read(ref)
        if self._config.s3_endpoint is None:
            yield self._local(ref)
            return
        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / f"object-{uuid.uuid4().hex}"
        try:
            yield path if self._download(ref, path, max_bytes, stop) else None
        finally:
            path.unlink(missing_ok=True)

    def lines(self, ref: ObjectRef, max_line_bytes: int, stop: threading.Event,
              skip: int = 0) -> Iterator[ManifestLine]:
        """The object's lines, streamed (:func:`~.object_lines.split_lines`), after ``skip``.

        Memory stays about ``max_line_bytes`` plus two 1 MiB chunks, whatever the object's size; a
        longer line comes as ``data=None``. The object is opened now (missing or refused:
        InvalidS3ObjectException here); a failure while reading raises it from the iterator.
        The iterator ends early once ``stop`` is set.
        """
        self._allow_read(ref)
        source: BinaryIO | Any
        if self._config.s3_endpoint is not None:
            source = self._s3_call("get_object", ref)["Body"]
        else:
            try:
                source = self._local(ref).open("rb")
            except OSError:
                raise InvalidS3ObjectException() from None
        return split_lines(read_chunks(source, _CHUNK, ref.shown), max_line_bytes, stop, skip)

    def listing(self, bucket: str, prefix: str = "") -> list[ListedObject]:
        """Every object whose key starts with ``prefix`` in ``bucket``, by key.

        Key, size and last write of each (S3: ``list_objects_v2``, every page; the local root:
        :func:`~.object_listing.list_local`). InvalidS3ObjectException when the bucket may
        not be read (``objects.buckets``), does not exist or cannot be listed.
        """
        self._allow_read(ObjectRef(bucket, prefix))
        if self._config.s3_endpoint is not None:
            return list_s3(self._s3(), bucket, prefix)
        if self._config.local_root is None:
            raise InvalidS3ObjectException(
                "S3 objects are not available on this server: configure objects.local_root "
                "(files) or objects.s3_endpoint (an S3-compatible store)")
        return list_local(self._base(), bucket, prefix)

    def _allow_read(self, ref: ObjectRef) -> None:
        allowed = self._config.buckets
        if allowed is not None and ref.bucket not in allowed:
            raise InvalidS3ObjectException(
                f"The bucket {ref.bucket} is not one this server reads S3 objects from "
                "(objects.buckets)")

    # ---- writes -----------------------------------------------------------------------------
    def put_bytes(self, ref: ObjectRef, data: bytes) -> None:
        """Write ``data`` as ``ref``, atomically; OutputNotWritable when it cannot be."""
        self._put(ref, data)

    def put_file(self, ref: ObjectRef, path: Path) -> None:
        """Write the file at ``path`` as ``ref``, atomically (streamed, multipart on S3)."""
        self._put(ref, path)

    def delete(self, ref: ObjectRef) -> None:
        """Remove the object ``ref``; one that is not there is no error (as S3's DeleteObject).

        OutputNotWritable when the bucket may not be written (``objects.output_buckets``),
        does not exist, or the delete fails. A key the store never writes names no object.
        """
        self._allow_write(ref.bucket)
        if ref.version is not None:
            raise OutputNotWritable(f"The object {ref.shown} is deleted whole, not by version")
        if not writable_key(ref.bucket, ref.name):
            return
        if self._config.s3_endpoint is not None:
            delete_s3(self._s3(), ref)
        else:
            delete_local(self._base(), ref)

    def delete_many(self, bucket: str, names: list[str]) -> list[str]:
        """Remove these objects of ``bucket``; the names removed (or found not there).

        S3: ``delete_objects``, 1000 keys a call; the local root: one folder sync for all.
        A name that could not be removed is left out of the answer, never raised;
        OutputNotWritable when the bucket may not be written at all.
        """
        self._allow_write(bucket)
        names = [n for n in names if writable_key(bucket, n)]  # the rest name no object
        if self._config.s3_endpoint is not None:
            return delete_many_s3(self._s3(), bucket, names)
        return delete_many_local(self._base(), bucket, names)

    def check_output(self, bucket: str, prefix: str) -> None:
        """OutputNotWritable unless results can go under ``bucket``/``prefix``.

        Cheap, for a job's start. Local root: the bucket folder exists and takes a file;
        S3: ``head_bucket`` finds the bucket and lets these credentials at it.
        """
        self._allow_write(bucket)
        if not writable_key(bucket, f"{prefix}x"):
            raise OutputNotWritable(
                f"The output prefix {bucket}/{prefix} makes keys this store does not write "
                "(empty, '.' or '..' segments, a backslash or NUL, over 1024 characters)")
        if self._config.s3_endpoint is not None:
            check_s3_output(self._s3(), bucket)
        else:
            check_local_output(self._base(), bucket, prefix)

    def _put(self, ref: ObjectRef, source: bytes | Path) -> None:
        self._allow_write(ref.bucket)
        if ref.version is not None or not writable_key(ref.bucket, ref.name):
            raise OutputNotWritable(f"The output key {ref.shown} is not one this store writes")
        if self._config.s3_endpoint is not None:
            put_s3(self._s3(), ref, source)
        else:
            write_local(self._base(), ref, source)

    def _allow_write(self, bucket: str) -> None:
        if not self.available:
            raise OutputNotWritable(
                "No object store to write to: configure objects.local_root or "
                "objects.s3_endpoint")
        allowed = self._config.output_buckets
        if allowed is not None and bucket not in allowed:
            raise OutputNotWritable(
                f"The bucket {bucket} is not one jobs may write to (objects.output_buckets)")

    # ---- local root -------------------------------------------------------------------------
    def _base(self) -> Path:
        root = self._config.local_root
        if root is None:  # callers check available and s3_endpoint first
            raise OutputNotWritable("objects.local_root is not set")
        return Path(root).expanduser().resolve()

    def _local(self, ref: ObjectRef) -> Path:
        root = self._config.local_root
        if root is None:
            raise InvalidS3ObjectException(
                "S3 objects are not available on this server: configure objects.local_root "
                "(files) or objects.s3_endpoint (an S3-compatible store)")
        if ref.version is not None:
            raise InvalidS3ObjectException(
                "S3Object.Version needs an S3 endpoint (objects.s3_endpoint); the local "
                "object root keeps one version of each object")
        path = local_object(self._base(), ref)
        if path is None:
            raise InvalidS3ObjectException()
        return path

    # ---- S3 ----------------------------------------------------------------------------------
    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        factory = self._factory if self._factory is not None else make_client
        return factory(self._config)

    def _s3_call(self, operation: str, ref: ObjectRef) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        args = {"Bucket": ref.bucket, "Key": ref.name}
        if ref.version is not None:
            args["VersionId"] = ref.version
        try:
            answer: dict[str, Any] = getattr(self._s3(), operation)(**args)
            return answer
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in _MISSING:
                logger.warning("S3 %s of %s: %s", operation, ref.shown, code)
            raise InvalidS3ObjectException() from None
        except BotoCoreError as exc:  # endpoint unreachable, timeouts, bad credentials setup
            logger.warning("S3 %s of %s: %s", operation, ref.shown, exc)
            raise InvalidS3ObjectException(
                f"Unable to get object from S3: {type(exc).__name__}") from None

    def _download(self, ref: ObjectRef, path: Path, max_bytes: int,
                  stop: threading.Event) -> bool:
        body = self._s3_call("get_object", ref)["Body"]
        written = 0
        with closing(read_chunks(body, _CHUNK, ref.shown)) as stream, open(path, "wb") as out:
            for chunk in stream:
                if stop.is_set():
                    return False
                written += len(chunk)
                if written > max_bytes:
                    raise InvalidS3ObjectException(
                        f"s3://{ref.shown} grew past {max_bytes} bytes")
                try:
                    out.write(chunk)
                except OSError as exc:  # scratch full: still the object cannot be read here
                    raise InvalidS3ObjectException(
                        f"Reading s3://{ref.shown} failed: {type(exc).__name__}") from None
        return True
