"""Resolving the ``Image`` request structure (Bytes or S3Object) to pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamproc.config import ImagesConfig
from streamproc.errors import (
    ImageTooLargeException,
    InvalidParameterException,
    InvalidS3ObjectException,
)
from streamproc.faces.images import decode_image


class ImageLoader:
    """Reads ``Image.Bytes`` or, when a local object root is configured, ``Image.S3Object``."""

    def __init__(self, config: ImagesConfig) -> None:
        self._config = config

    def load(self, image: dict[str, Any], field: str = "Image") -> np.ndarray:
        """Return the BGR pixels of a validated ``Image`` structure."""
        has_bytes, has_s3 = "Bytes" in image, "S3Object" in image
        if has_bytes == has_s3:
            msg = f"{field} must have exactly one of Bytes and S3Object"
            raise InvalidParameterException(msg)
        data = image["Bytes"] if has_bytes else self._read_s3(image["S3Object"])
        return decode_image(data, self._config.max_pixels)

    def _read_s3(self, obj: dict[str, Any]) -> bytes:
        root = self._config.s3_local_root
        if root is None:
            raise InvalidS3ObjectException(
                "S3 images are not available on this server: configure "
                "images.s3_local_root to read them from local files, or send Image.Bytes"
            )
        if "Bucket" not in obj or "Name" not in obj:
            raise InvalidParameterException("S3Object needs Bucket and Name")
        base = Path(root).expanduser().resolve()
        path = (base / obj["Bucket"] / obj["Name"]).resolve()
        # Refuse names like ../../etc/passwd that would leave the object root.
        if base not in path.parents or not path.is_file():
            raise InvalidS3ObjectException()
        if path.stat().st_size > self._config.s3_max_bytes:
            raise ImageTooLargeException(
                f"S3 object is larger than {self._config.s3_max_bytes} bytes")
        return path.read_bytes()
