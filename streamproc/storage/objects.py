"""The one reader of ``S3Object`` references, for images and videos alike.

With ``objects.s3_endpoint`` set, objects come from that S3-compatible store through boto3
(``Version`` honoured); otherwise, with ``objects.local_root`` set, ``{Bucket, Name}`` is the
file ``ROOT/Bucket/Name``; with neither, S3 references are refused. Every failure to find or
read an object is :class:`~streamproc.errors.InvalidS3ObjectException`; callers decide what
"too large" means for them (an image, a video) from :meth:`ObjectStore.size`.

A key is an opaque string, as in S3: ``./face.jpg``, ``face.jpg/`` and ``a//b`` are other
keys than ``face.jpg`` and ``a/b``. So the local root maps a key to a file only where the
path spells the key back exactly (:func:`local_path`); every other key is a missing object.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.config import ObjectsConfig
from streamproc.errors import InvalidS3ObjectException

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound", "403",
            "AccessDenied", "InvalidArgument", "400"}
# S3's bucket names (the legacy rules, which also allow capitals and _, as Rekognition's
# pattern does): 3-255 characters, a letter or digit at each end, never "..".
_BUCKET = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{1,253}[0-9A-Za-z]")
_MAX_KEY = 1024  # S3's (and S3ObjectName's) limit on a key
_MAX_SEGMENT = 255  # bytes in one file name (NAME_MAX)


@dataclass(frozen=True)
class ObjectRef:
    """An S3 object: bucket, key and (S3 endpoints only) version.

    The wire's ``S3Object`` is read into one at the API (:mod:`streamproc.api.s3objects`);
    below it only this value travels.
    """

    bucket: str
    name: str
    version: str | None = None

    @property
    def shown(self) -> str:
        """``bucket/name``, as messages and logs name the object."""
        return f"{self.bucket}/{self.name}"


def local_path(base: Path, bucket: str, key: str) -> Path | None:
    """``base/bucket/key`` if that path names the key and nothing else, else None.

    The bucket must be one valid bucket name; the key's segments must be real names (not
    empty, ``.`` or ``..``, no trailing ``/``), hold no NUL or backslash, encode as UTF-8
    and fit a file name, so that no normalisation can turn it into another key's file.
    """
    if _BUCKET.fullmatch(bucket) is None or ".." in bucket:
        return None
    if not key or len(key) > _MAX_KEY or "\x00" in key or "\\" in key:
        return None
    segments = key.split("/")
    try:
        sizes = [len(segment.encode("utf-8")) for segment in segments]
    except UnicodeEncodeError:  # an unpaired surrogate
        return None
    if any(seg in ("", ".", "..") for seg in segments) or max(sizes) > _MAX_SEGMENT:
        return None
    return base.joinpath(bucket, *segments)


class ObjectStore:
    """Reads objects from S3 or the local root. Construction does no I/O."""

    def __init__(self, config: ObjectsConfig, client_factory: Any = None) -> None:
        self._config = config
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """True when S3 references can be resolved at all."""
        return self._config.s3_endpoint is not None or self._config.local_root is not None

    # ---- public -----------------------------------------------------------------------------
    def size(self, ref: ObjectRef) -> int:
        """The object's size in bytes (InvalidS3ObjectException when it cannot be read)."""
        if self._config.s3_endpoint is not None:
            head = self._s3_call("head_object", ref)
            return int(head["ContentLength"])
        try:
            return self._local(ref).stat().st_size
        except OSError:
            raise InvalidS3ObjectException() from None

    def read(self, ref: ObjectRef, limit: int) -> bytes | None:
        """The whole object, or None if it holds more than ``limit`` bytes.

        At most ``limit + 1`` bytes are ever read, so an object that grew after
        :meth:`size` was asked cannot make the caller hold more than it allowed.
        """
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
        try:
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
            return b"".join(chunks)
        except Exception as exc:
            raise InvalidS3ObjectException(f"Reading s3://{ref.shown} failed: "
                                           f"{type(exc).__name__}") from None
        finally:
            body.close()

    @contextmanager
    def local_file(self, ref: ObjectRef, scratch: Path, max_bytes: int,
                   stop: threading.Event) -> Iterator[Path | None]:
        """A local path holding the object for the ``with`` block (None if ``stop`` was set).

        Local objects are used in place; S3 objects are copied into ``scratch`` in 1 MiB
        chunks (checking ``stop`` between them, so a shutdown never waits for a large
        download) and removed afterwards.
        """
        if self._config.s3_endpoint is None:
            yield self._local(ref)
            return
        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / f"object-{uuid.uuid4().hex}"
        try:
            yield path if self._download(ref, path, max_bytes, stop) else None
        finally:
            path.unlink(missing_ok=True)

    # ---- local root -------------------------------------------------------------------------
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
        base = Path(root).expanduser().resolve()
        path = local_path(base, ref.bucket, ref.name)
        try:
            # A symlink inside the root still may not lead out of it, nor out of its bucket
            # (an object of one bucket is never another bucket's file).
            if path is None or not path.is_file():
                raise InvalidS3ObjectException()
            bucket = (base / ref.bucket).resolve(strict=True)
            if base not in bucket.parents:
                raise InvalidS3ObjectException()
            if bucket not in path.resolve(strict=True).parents:
                raise InvalidS3ObjectException()
        except (OSError, ValueError):
            raise InvalidS3ObjectException() from None
        return path

    # ---- S3 ----------------------------------------------------------------------------------
    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        cfg = self._config
        if self._factory is not None:
            return self._factory(cfg)
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3", endpoint_url=cfg.s3_endpoint, region_name=cfg.s3_region,
            aws_access_key_id=cfg.s3_access_key_id,
            aws_secret_access_key=cfg.s3_secret_access_key,
            config=BotoConfig(s3={"addressing_style": cfg.s3_addressing_style},
                              connect_timeout=cfg.timeout_s, read_timeout=cfg.timeout_s,
                              retries={"max_attempts": 3, "mode": "standard"}))

    def _s3_call(self, operation: str, ref: ObjectRef) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        args = {"Bucket": ref.bucket, "Key": ref.name}
        if ref.version is not None:
            args["VersionId"] = ref.version
        try:
            return getattr(self._s3(), operation)(**args)
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
        try:
            with open(path, "wb") as out:
                for chunk in iter(lambda: body.read(_CHUNK), b""):
                    if stop.is_set():
                        return False
                    written += len(chunk)
                    if written > max_bytes:
                        raise InvalidS3ObjectException(
                            f"s3://{ref.shown} grew past {max_bytes} bytes")
                    out.write(chunk)
        except InvalidS3ObjectException:
            raise
        except Exception as exc:
            raise InvalidS3ObjectException(f"Reading s3://{ref.shown} failed: "
                                           f"{type(exc).__name__}") from None
        finally:
            body.close()
        return True
