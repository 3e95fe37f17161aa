"""Turning request image bytes into pixels, with limits checked before decoding."""

from __future__ import annotations

import ctypes
import functools
import io
import warnings
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from streamproc.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
)

_FORMATS = {"JPEG", "PNG"}


def decode_image(data: bytes, max_pixels: int, min_side: int = 1) -> np.ndarray:
    """Decode JPEG/PNG bytes to an 8-bit BGR array.

    The header is read first (Pillow reads no pixels on ``open``), so a decompression
    bomb, or an image under ``min_side`` pixels a side, is refused before any large
    allocation. OpenCV converts 16-bit and alpha images to 8-bit BGR as it decodes.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt, (width, height) = probe.format, probe.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageTooLargeException("Image dimensions are too large") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidImageFormatException() from None
    if fmt not in _FORMATS:
        raise InvalidImageFormatException(
            f"Request has invalid image format: {fmt}; only JPEG and PNG are supported"
        )
    if width * height > max_pixels:
        raise ImageTooLargeException(
            f"Image dimensions {width}x{height} exceed the limit of {max_pixels} pixels"
        )
    if min(width, height) < min_side:
        raise InvalidParameterException(
            f"Request has invalid parameters: an image must be at least {min_side} pixels "
            f"high and wide; this one is {width}x{height}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidImageFormatException()
    return image


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc ``malloc_trim``).

    glibc keeps what a thread freed in that thread's arena, so RSS stays at the peak of a
    burst of large images long after it; trimming returns the free pages. Elsewhere a no-op.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
