"""Object references, and which keys the object store maps to files.

A key is an opaque string, as in S3: ``./face.jpg``, ``face.jpg/`` and ``a//b`` are other
keys than ``face.jpg`` and ``a/b``. So the local root maps a key to a file only where the
path spells the key back exactly (:func:`local_path`); every other key is a missing object,
and never a key the store writes (on S3 too, so that a job's output works on either store).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from streamproc.errors import InvalidParameterException

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


@dataclass(frozen=True)
class ListedObject:
    """One object of a listing: its key, size in bytes and last write (epoch seconds)."""

    key: str
    size: int
    modified: float


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


def local_object(base: Path, ref: ObjectRef) -> Path | None:
    """The existing file that holds ``ref`` under ``base``, or None.

    A symlink inside the root still may not lead out of it, nor out of its bucket (an object
    of one bucket is never another bucket's file).
    """
    path = local_path(base, ref.bucket, ref.name)
    try:
        if path is None or not path.is_file():
            return None
        bucket = (base / ref.bucket).resolve(strict=True)
        if base not in bucket.parents or bucket not in path.resolve(strict=True).parents:
            return None
    except (OSError, ValueError, RuntimeError):
        return None
    return path


def writable_key(bucket: str, key: str) -> bool:
    """True when ``bucket``/``key`` is one the store may write (the rules of :func:`local_path`)."""
    return local_path(Path("/"), bucket, key) is not None


def check_prefix(bucket: str, prefix: str) -> None:
    """InvalidParameterException unless keys under ``bucket``/``prefix`` are ones written.

    The one rule for every OutputConfig S3KeyPrefix at Start (a media-analysis job's, a
    training's): a malformed prefix (``../``, ``/etc/``: empty, '.' or '..' segments, a
    backslash or NUL, over 1024 characters) is the request's fault, decided before any
    bucket is asked; a bucket the server may not write stays AccessDeniedException.
    """
    if not writable_key(bucket, f"{prefix}x"):
        raise InvalidParameterException(
            f"OutputConfig {bucket}/{prefix} makes keys this server does not write (empty, "
            "'.' or '..' segments, a backslash or NUL, over 1024 characters)")
