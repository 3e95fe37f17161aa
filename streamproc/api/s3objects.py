"""The wire's ``S3Object`` structure, read into an :class:`ObjectRef`.

Images (``Image.S3Object``) and videos (``Video.S3Object``) name objects alike; the API reads
the structure here, once, and everything below it sees only the ``ObjectRef``. Written back
(a job's Get), it is the jobs' stored form: :func:`streamproc.jobs.request.s3_object`.
"""

from __future__ import annotations

from typing import Any

from streamproc.errors import InvalidParameterException
from streamproc.storage.objects import ObjectRef


def object_ref(obj: dict[str, Any]) -> ObjectRef:
    """From a validated ``S3Object`` dict (botocore's model leaves Bucket and Name optional)."""
    if "Bucket" not in obj or "Name" not in obj:
        raise InvalidParameterException("S3Object needs Bucket and Name")
    return ObjectRef(obj["Bucket"], obj["Name"], obj.get("Version"))

