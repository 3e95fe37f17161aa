"""Turning request image bytes into pixels, with limits checked before decoding."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from streamproc.errors import ImageTooLargeException, InvalidImageFormatException

_FORMATS = {"JPEG", "PNG"}


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode JPEG/PNG bytes to a BGR array.

    The header is read first (Pillow reads no pixels on ``open``), so a decompression
    bomb is refused before any large allocation.
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
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidImageFormatException()
    return image
