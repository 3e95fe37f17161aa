"""The S3 client, writes to an S3-compatible store, and the cheap check that a bucket takes them.

S3 makes an object visible only once its upload is complete: ``put_object`` for bytes,
boto3's transfer manager for files (multipart above ``_MULTIPART`` bytes, parts sent in
order by a few threads; a failed part aborts the whole upload, so no part is ever seen).
Every failure to write or delete is :class:`~streamproc.errors.OutputNotWritable`, every
failure to list :class:`~streamproc.errors.InvalidS3ObjectException`, their messages built
from the error code alone (never the exception text, which can carry request details).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from streamproc.config import ObjectsConfig
from streamproc.errors import InvalidS3ObjectException, OutputNotWritable
from streamproc.storage.object_keys import ListedObject, ObjectRef, writable_key

logger = logging.getLogger(__name__)
_MULTIPART = 8 << 20  # boto3's default threshold and part size
_THREADS = 4  # parts in flight; S3-compatible servers such as rclone prefer parts in order
_BATCH = 1000  # keys one DeleteObjects call takes at most (S3's limit)
_MISSING = {"404", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "Forbidden"}


def put_s3(client: Any, ref: ObjectRef, source: bytes | Path) -> None:
    """Upload ``source`` (bytes, or a file's contents) as ``ref``; OutputNotWritable on error."""
    from boto3.exceptions import S3UploadFailedError
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if isinstance(source, bytes):
            client.put_object(Bucket=ref.bucket, Key=ref.name, Body=source)
        else:
            config = TransferConfig(multipart_threshold=_MULTIPART,
                                    multipart_chunksize=_MULTIPART, max_concurrency=_THREADS)
            client.upload_file(str(source), ref.bucket, ref.name, Config=config)
    except ClientError as exc:
        raise _refused(ref.bucket, f"Writing s3://{ref.shown}", _code(exc)) from None
    except S3UploadFailedError as exc:  # upload_file's wrapping of a ClientError
        cause = exc.__context__
        code = _code(cause) if isinstance(cause, ClientError) else "S3UploadFailedError"
        raise _refused(ref.bucket, f"Writing s3://{ref.shown}", code) from None
    except BotoCoreError as exc:  # endpoint unreachable, timeouts, a connection lost
        logger.warning("S3 write of %s: %s", ref.shown, type(exc).__name__)
        raise OutputNotWritable(
            f"Writing s3://{ref.shown} failed: {type(exc).__name__}") from None


def delete_s3(client: Any, ref: ObjectRef) -> None:
    """Delete ``ref`` (a missing object is no error, as in S3); OutputNotWritable on error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.delete_object(Bucket=ref.bucket, Key=ref.name)
    except ClientError as exc:
        raise _refused(ref.bucket, f"Deleting s3://{ref.shown}", _code(exc)) from None
    except BotoCoreError as exc:
        logger.warning("S3 delete of %s: %s", ref.shown, type(exc).__name__)
        raise OutputNotWritable(
            f"Deleting s3://{ref.shown} failed: {type(exc).__name__}") from None


def delete_many_s3(client: Any, bucket: str, names: list[str]) -> list[str]:
    """Delete these keys of ``bucket``, 1000 a ``delete_objects`` call; the keys deleted.

    A key S3 reports an error for is left out of the answer; a call that fails as a whole
    leaves its keys out and the rest go on (OutputNotWritable only for a missing or
    refused bucket, which no later call would find either).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    done: list[str] = []
    for start in range(0, len(names), _BATCH):
        batch = names[start:start + _BATCH]
        try:
            answer = client.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": k} for k in batch], "Quiet": True})
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING or code in _DENIED:
                raise _refused(bucket, f"Deleting from s3://{bucket}", code) from None
            logger.warning("S3 delete of %d keys in %s: %s", len(batch), bucket, code)
            continue
        except BotoCoreError as exc:
            logger.warning("S3 delete of %d keys in %s: %s", len(batch), bucket,
                           type(exc).__name__)
            continue
        failed = {e.get("Key") for e in answer.get("Errors", [])}
        done += [k for k in batch if k not in failed]
    return done


def list_s3(client: Any, bucket: str, prefix: str) -> list[ListedObject]:
    """Every object under ``bucket``/``prefix``, by key (``list_objects_v2``, all pages).

    Keys the store would not write (:func:`~.object_keys.writable_key`) are left out, as
    the local root leaves them out. InvalidS3ObjectException when the bucket cannot be listed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    found = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                       Prefix=prefix):
            found += [ListedObject(o["Key"], int(o["Size"]), o["LastModified"].timestamp())
                      for o in page.get("Contents", []) if writable_key(bucket, o["Key"])]
    except ClientError as exc:
        code = _code(exc)
        if code in _MISSING:
            raise InvalidS3ObjectException(f"The bucket {bucket} does not exist") from None
        logger.warning("S3 listing of %s/%s: %s", bucket, prefix, code)
        raise InvalidS3ObjectException(f"Listing s3://{bucket}/{prefix} failed: {code}") from None
    except BotoCoreError as exc:
        logger.warning("S3 listing of %s/%s: %s", bucket, prefix, type(exc).__name__)
        raise InvalidS3ObjectException(
            f"Listing s3://{bucket}/{prefix} failed: {type(exc).__name__}") from None
    return sorted(found, key=lambda o: o.key)


def make_client(cfg: ObjectsConfig) -> Any:
    """The boto3 S3 client for ``cfg`` (path or virtual addressing, timeouts, 3 attempts)."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3", endpoint_url=cfg.s3_endpoint, region_name=cfg.s3_region,
        aws_access_key_id=cfg.s3_access_key_id,
        aws_secret_access_key=cfg.s3_secret_access_key,
        config=BotoConfig(s3={"addressing_style": cfg.s3_addressing_style},
                          connect_timeout=cfg.timeout_s, read_timeout=cfg.timeout_s,
                          retries={"max_attempts": 3, "mode": "standard"}))


def check_s3_output(client: Any, bucket: str) -> None:
    """OutputNotWritable unless ``head_bucket`` finds ``bucket`` and lets us at it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        raise _refused(bucket, f"Checking the output bucket {bucket}", _code(exc)) from None
    except BotoCoreError as exc:
        raise OutputNotWritable(
            f"Checking the output bucket {bucket} failed: {type(exc).__name__}") from None


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or "unknown error"


def _refused(bucket: str, what: str, code: str) -> OutputNotWritable:
    if code in _MISSING:
        return OutputNotWritable(f"The output bucket {bucket} does not exist")
    if code in _DENIED:
        return OutputNotWritable(
            f"Access denied to the output bucket {bucket} ({code}): check "
            "objects.s3_access_key_id, its secret and its permissions")
    logger.warning("%s: %s", what, code)
    return OutputNotWritable(f"{what} failed: {code}")
