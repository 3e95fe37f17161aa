"""Face crops for the console: small JPEGs kept only where the operator chose to keep them.

Rekognition stores no images, so this is opt-out (``console.face_crops``). One file per
indexed face under ``<data_dir>/crops/<collection digest>/<FaceId>.jpg``, at most
``max_bytes`` in all and each for ``retention_s`` after it was written. When one more crop
would not fit, the named policy decides (:class:`CropsWhenFull`) and the drop is counted.
:class:`CropStore` is local to one daemon: in cluster mode, where a DeleteFaces served by
another node would leave this node's crop behind, crops are kept in the object store instead
(:class:`~.crop_objects.SharedCropStore`, ``console.face_crops_bucket``) or not at all. Both
are :class:`Crops`, which the console and the collection handlers use. A crop that cannot
be made or written never fails the IndexFaces that asked for it (:meth:`CropStore.keep`).
Retention is applied at start and at every crop written or read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

logger = logging.getLogger(__name__)

CROP_SIDE = 160  # pixels: the console's grid shows them at 96-128
FACE_ID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_FOLDER_HEX = 32  # hex digits of a collection's digest that name its folder
FOLDER_PATTERN = f"[0-9a-f]{{{_FOLDER_HEX}}}"  # what crop_folder makes, for key matching
_FACE_ID = re.compile(FACE_ID_PATTERN)


class CropsWhenFull(str, Enum):
    """What a full crop store does with one more crop."""

    DROP_OLDEST = "drop_oldest"  # remove the oldest crops until the new one fits
    DROP_NEWEST = "drop_newest"  # keep what is there; the new crop is not written


class Crops(Protocol):
    """Where face crops are kept: on this node's disk or in the object store all nodes share."""

    def keep(self, collection: str, face_id: str, pixels: np.ndarray, box: np.ndarray) -> bool:
        """Crop and keep a face just indexed; False (logged, counted) when it cannot be."""
        ...

    def put(self, collection: str, face_id: str, jpeg: bytes) -> bool:
        """Keep a crop; False when the policy (or its size) leaves it out (counted)."""
        ...

    def get(self, collection: str, face_id: str) -> bytes | None:
        """The crop, or None (none kept, dropped, or past its retention)."""
        ...

    def delete(self, collection: str, face_ids: Iterable[str]) -> None:
        """Remove the crops of these faces (DeleteFaces)."""
        ...

    def delete_collection(self, collection: str) -> None:
        """Remove every crop of a collection (DeleteCollection)."""
        ...

    def stop(self, timeout: float) -> None:
        """Finish the object I/O queued for the bucket (at shutdown); the disk's has none."""
        ...


def face_crop(pixels: np.ndarray, box: np.ndarray, side: int = CROP_SIDE) -> bytes:
    """A JPEG of the face in ``box`` (x1, y1, x2, y2) with a margin, at most ``side`` wide."""
    h, w = pixels.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    margin = 0.25 * max(x2 - x1, y2 - y1)
    left, top = max(0, int(x1 - margin)), max(0, int(y1 - margin))
    right, bottom = min(w, int(x2 + margin) + 1), min(h, int(y2 + margin) + 1)
    crop = pixels[top:bottom, left:right]
    if crop.size == 0:  # a box outside the image: no crop (never the whole photo)
        msg = "the face's box lies outside the image"
        raise ValueError(msg)
    return jpeg_within(crop, side, 85)


def jpeg_within(pixels: np.ndarray, side: int, quality: int) -> bytes:
    """A JPEG of ``pixels`` scaled down (never up) to a longest side of ``side`` pixels."""
    scale = side / max(pixels.shape[:2])
    if scale < 1:
        pixels = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        msg = "cannot encode an image as JPEG"
        raise ValueError(msg)
    return bytes(jpeg.tobytes())


def is_face_id(face_id: str) -> bool:
    """True for a FaceId as this server makes them (so a crop's name can be no path)."""
    return _FACE_ID.fullmatch(face_id) is not None


def crop_folder(collection: str) -> str:
    """The folder (or key segment) of a collection's crops."""
    # A digest, not the name: a collection id may be "." or "..".
    return hashlib.sha256(collection.encode()).hexdigest()[:_FOLDER_HEX]


class CropStore:
    """Crops by (collection, FaceId), bounded in bytes and in age; thread-safe."""

    def __init__(self, root: Path, max_bytes: int, retention_s: float,
                 when_full: CropsWhenFull = CropsWhenFull.DROP_OLDEST,
                 clock: Callable[[], float] = time.time,
                 on_drop: Callable[[], None] | None = None) -> None:
        if max_bytes < 1 or retention_s <= 0:
            msg = "a crop store needs max_bytes >= 1 and retention_s > 0"
            raise ValueError(msg)
        self.root = root
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self.when_full = when_full
        self._clock = clock
        self._on_drop = on_drop
        self._lock = threading.Lock()
        # path -> (bytes, written at), oldest first
        self._files: OrderedDict[Path, tuple[int, float]] = OrderedDict()
        self.bytes = 0
        self.dropped = 0  # crops not kept for room (either policy), counted one each

    def load(self) -> None:
        """Create the folder (0700) and take stock of the crops already there (at start).

        Files a crash left half-written (``*.part``) are removed: they were never kept.
        """
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # mkdir leaves an existing folder's mode as it was
        for partial in self.root.glob("*/*.part"):
            partial.unlink(missing_ok=True)
        found = []
        for path in self.root.glob("*/*.jpg"):
            stat = path.stat()
            found.append((stat.st_mtime, path, stat.st_size))
        with self._lock:
            for mtime, path, size in sorted(found):
                self._files[path] = (size, mtime)
                self.bytes += size
            self._expire(self._clock())

    def path(self, collection: str, face_id: str) -> Path | None:
        """Where this face's crop lives, or None for a FaceId that is not one."""
        if not is_face_id(face_id):
            return None
        return self.root / crop_folder(collection) / f"{face_id}.jpg"

    def keep(self, collection: str, face_id: str, pixels: np.ndarray, box: np.ndarray) -> bool:
        """Crop and keep a face just indexed; False (logged, counted) when it cannot be.

        The face is already in the collection: a crop that cannot be made or written (a
        box outside the image, a full or read-only disk) is a missing picture, never a
        failed IndexFaces.
        """
        try:
            return self.put(collection, face_id, face_crop(pixels, box))
        except (OSError, ValueError, cv2.error) as exc:
            logger.warning("face crop of %s not kept: %s", face_id,
                           getattr(exc, "strerror", None) or exc)
            with self._lock:
                self._dropped()
            return False

    def put(self, collection: str, face_id: str, jpeg: bytes) -> bool:
        """Keep a crop; False when the policy (or its size) leaves it out (counted)."""
        path = self.path(collection, face_id)
        if path is None:
            return False
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._forget(path)
            if not self._make_room(len(jpeg)):
                self._dropped()
                return False
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(jpeg)
            partial.replace(path)
            self._files[path] = (len(jpeg), now)
            self.bytes += len(jpeg)
        return True

    def get(self, collection: str, face_id: str) -> bytes | None:
        """The crop, or None (none kept, dropped, or past its retention)."""
        path = self.path(collection, face_id)
        with self._lock:
            self._expire(self._clock())
            if path is None or path not in self._files:
                return None
            try:
                return path.read_bytes()
            except OSError:
                self._forget(path)
                return None

    def delete(self, collection: str, face_ids: Iterable[str]) -> None:
        """Remove the crops of these faces (DeleteFaces)."""
        with self._lock:
            for face_id in face_ids:
                path = self.path(collection, face_id)
                if path is not None:
                    self._forget(path)

    def delete_collection(self, collection: str) -> None:
        """Remove every crop of a collection (DeleteCollection)."""
        folder = self.root / crop_folder(collection)
        with self._lock:
            for path in [p for p in self._files if p.parent == folder]:
                self._forget(path)

    def stop(self, timeout: float) -> None:
        """Nothing to finish: every write and removal here is done in its call."""

    def _make_room(self, size: int) -> bool:
        if size > self.max_bytes:
            return False
        if self.when_full is CropsWhenFull.DROP_NEWEST:
            return self.bytes + size <= self.max_bytes
        while self.bytes + size > self.max_bytes and self._files:
            self._forget(next(iter(self._files)))
            self._dropped()
        return True

    def _dropped(self) -> None:
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()

    def _expire(self, now: float) -> None:
        while self._files:
            path, (_, written) = next(iter(self._files.items()))
            if written + self.retention_s > now:
                return
            self._forget(path)

    def _forget(self, path: Path) -> None:
        entry = self._files.pop(path, None)
        if entry is not None:
            self.bytes -= entry[0]
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("cannot remove face crop %s: %s", path.name, exc.strerror or exc)
