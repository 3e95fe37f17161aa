"""Resolving the ``Image`` request structure (Bytes or S3Object) to pixels."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamproc.config import ImagesConfig
from streamproc.errors import ImageTooLargeException, InvalidParameterException
from streamproc.faces.images import decode_image
from streamproc.storage.objects import ObjectRef, ObjectStore


class ImageLoader:
    """Reads ``Image.Bytes``, or ``Image.S3Object`` through the shared object store."""

    def __init__(self, config: ImagesConfig, objects: ObjectStore) -> None:
        self._config = config
        self._objects = objects

    def load(self, image: dict[str, Any], field: str = "Image") -> np.ndarray:
        """Return the BGR pixels of a validated ``Image`` structure."""
        has_bytes, has_s3 = "Bytes" in image, "S3Object" in image
        if has_bytes == has_s3:
            msg = f"{field} must have exactly one of Bytes and S3Object"
            raise InvalidParameterException(msg)
        data = image["Bytes"] if has_bytes else self._read_s3(image["S3Object"])
        return decode_image(data, self._config.max_pixels)

    def _read_s3(self, obj: dict[str, Any]) -> bytes:
        ref = ObjectRef.from_wire(obj)
        if self._objects.size(ref) > self._config.s3_max_bytes:
            raise ImageTooLargeException(
                f"S3 object is larger than {self._config.s3_max_bytes} bytes")
        return self._objects.read(ref)
