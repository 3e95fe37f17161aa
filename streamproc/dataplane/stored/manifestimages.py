"""One manifest line's image: allowed, read and decoded, or the reason it cannot be.

The limits are DetectModerationLabels' own: at most ``images.s3_max_bytes`` are read
(never more than one byte past it), and the header is checked before any pixel is
decoded, so an image bomb (a small file that claims a huge canvas) is refused unread
(``images.max_pixels``). Large decodes hand their freed memory back afterwards, as the API's
do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streamproc.dataplane.stored.manifest import (
    ERROR_ACCESS_DENIED,
    ERROR_IMAGE_TOO_LARGE,
    ERROR_INVALID_IMAGE,
    ERROR_INVALID_IMAGE_DIMENSION,
    ERROR_INVALID_S3_OBJECT,
    ImageLine,
    LineError,
)
from streamproc.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
    InvalidS3ObjectException,
)
from streamproc.faces.images import decode_image, release_memory
from streamproc.storage.objects import ObjectStore

_RELEASE_BYTES = 16 * 1024 * 1024  # as the API's image loader: below it glibc reuses


@dataclass(frozen=True)
class ImageLimits:
    """What an image of a manifest may be (DetectModerationLabels' limits)."""

    max_bytes: int  # images.s3_max_bytes
    max_pixels: int  # images.max_pixels
    min_side: int  # the API's minimum side (80 px)


class ImageReader:
    """Reads a line's image through the shared object store."""

    def __init__(self, objects: ObjectStore, limits: ImageLimits,
                 release: Callable[[], None] = release_memory) -> None:
        self._objects = objects
        self._limits = limits
        self._release = release

    def load(self, line: ImageLine) -> np.ndarray | LineError:
        """The image's BGR pixels, or the line's error."""
        def error(code: str, message: str) -> LineError:
            return LineError(line.number, code, message, line.source_ref)

        limits = self._limits
        if not self._objects.readable(line.ref.bucket):
            return error(ERROR_ACCESS_DENIED, f"Bucket {line.ref.bucket} is not one this "
                         "server may read (objects.buckets)")
        try:
            data = self._objects.read(line.ref, limits.max_bytes)
        except InvalidS3ObjectException as exc:
            return error(ERROR_INVALID_S3_OBJECT, exc.message)
        if data is None:
            return error(ERROR_IMAGE_TOO_LARGE,
                         f"The object is larger than {limits.max_bytes} bytes")
        try:
            pixels = decode_image(data, limits.max_pixels, limits.min_side)
        except ImageTooLargeException as exc:
            return error(ERROR_IMAGE_TOO_LARGE, exc.message)
        except InvalidImageFormatException as exc:
            return error(ERROR_INVALID_IMAGE, exc.message)
        except InvalidParameterException as exc:
            return error(ERROR_INVALID_IMAGE_DIMENSION, exc.message)
        if max(pixels.nbytes, len(data)) >= _RELEASE_BYTES:
            del data
            self._release()
        return pixels
