"""Finding enrolment photos and videos, naming their people, and making API-ready images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# The sampling and encoding are the enrolment rule's (the console's video upload uses them).
from streamproc.console.enrolment import MAX_IMAGE_BYTES, MediaError, encode_jpeg, video_frames

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".ts", ".m4v"})
_NOT_IN_ID = re.compile(r"[^a-zA-Z0-9_.\-:]+")  # ExternalImageId's pattern, inverted
__all__ = ["IMAGE_SUFFIXES", "MAX_IMAGE_BYTES", "VIDEO_SUFFIXES", "Item", "MediaError",
           "encode_jpeg", "external_id", "find_items", "image_bytes", "video_frames"]


@dataclass(frozen=True)
class Item:
    """One file to enrol and the person it shows."""

    path: Path
    person: str
    video: bool


def external_id(name: str) -> str:
    """A valid ExternalImageId from a folder name or file stem (``Jane Doe`` -> ``Jane_Doe``)."""
    return _NOT_IN_ID.sub("_", name).strip("_")[:255] or "unnamed"


def find_items(paths: list[Path]) -> tuple[list[Item], list[Path]]:
    """Files to enrol, and those skipped (neither image nor video), in a stable order.

    A file directly named or directly in a given folder is its own person (its stem); a
    file in a sub-folder belongs to the person named by that sub-folder.
    """
    items: list[Item] = []
    skipped: list[Path] = []
    for root in paths:
        if not root.is_dir():
            items.append(Item(root, external_id(root.stem), root.suffix.lower() in VIDEO_SUFFIXES))
            continue
        for path in sorted(p for p in root.rglob("*") if not p.is_dir()):
            suffix = path.suffix.lower()
            if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                skipped.append(path)
                continue
            owner = path.stem if path.parent == root else path.parent.name
            items.append(Item(path, external_id(owner), suffix in VIDEO_SUFFIXES))
    return items, skipped


def image_bytes(path: Path) -> bytes:
    """JPEG or PNG bytes under 5 MB: as they are when they fit, else re-encoded as JPEG."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"unreadable: {exc.strerror or exc}") from None
    if len(data) <= MAX_IMAGE_BYTES and (data[:3] == b"\xff\xd8\xff" or
                                         data[:8] == b"\x89PNG\r\n\x1a\n"):
        return data
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError("not a readable image")
    return encode_jpeg(image)
