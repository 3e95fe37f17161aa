"""Resolving the ``Image`` request structure (Bytes or S3Object) to pixels.

Reading (S3) and decoding are the memory-hungry part of an image request: a 15 MiB
object, then up to ``images.max_pixels`` x 3 bytes of pixels and the decoder's working
set. At most ``images.max_concurrent_decodes`` requests do it at once (the others wait
their turn, never refused), and a large decode hands its freed memory back afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from streamproc.api.s3objects import object_ref
from streamproc.config import ImagesConfig
from streamproc.errors import ImageTooLargeException, InvalidParameterException
from streamproc.faces.images import decode_image, release_memory
from streamproc.storage.object_keys import ObjectRef
from streamproc.storage.objects import ObjectStore

# Rekognition: "The minimum image dimensions is 80 pixels for both height and width";
# smaller gets InvalidParameterException ("Request has invalid parameters").
MIN_IMAGE_SIDE = 80
# Decodes at least this large (pixels x 3 bytes, or the encoded bytes) are followed by
# release_memory(): below it, glibc reuses what was freed anyway.
_RELEASE_BYTES = 16 * 1024 * 1024


class ImageLoader:
    """Reads ``Image.Bytes``, or ``Image.S3Object`` through the shared object store."""

    def __init__(self, config: ImagesConfig, objects: ObjectStore,
                 release: Callable[[], None] = release_memory) -> None:
        self._config = config
        self._objects = objects
        self._release = release
        self._slots = threading.BoundedSemaphore(config.max_concurrent_decodes)

    def load(self, image: dict[str, Any], field: str = "Image") -> np.ndarray:
        """Return the BGR pixels of a validated ``Image`` structure."""
        has_bytes, has_s3 = "Bytes" in image, "S3Object" in image
        if has_bytes == has_s3:
            msg = f"{field} must have exactly one of Bytes and S3Object"
            raise InvalidParameterException(msg)
        if has_bytes:
            return self._pixels(lambda: image["Bytes"])
        ref = object_ref(image["S3Object"])
        return self._pixels(lambda: self._read_s3(ref))

    def load_object(self, ref: ObjectRef) -> np.ndarray:
        """Return the BGR pixels of the S3 object ``ref`` (a manifest's source-ref)."""
        return self._pixels(lambda: self._read_s3(ref))

    def _pixels(self, read: Callable[[], bytes]) -> np.ndarray:
        with self._slots:
            pixels, encoded = self._decode(read)
        if max(pixels.nbytes, encoded) >= _RELEASE_BYTES:
            self._release()
        return pixels

    def _decode(self, read: Callable[[], bytes]) -> tuple[np.ndarray, int]:
        """The pixels and the encoded size; S3 bytes are freed when this returns."""
        data = read()
        return decode_image(data, self._config.max_pixels, MIN_IMAGE_SIDE), len(data)

    def _read_s3(self, ref: ObjectRef) -> bytes:
        limit = self._config.s3_max_bytes
        data = self._objects.read(ref, limit) if self._objects.size(ref) <= limit else None
        if data is None:
            raise ImageTooLargeException(f"S3 object is larger than {limit} bytes")
        return data
