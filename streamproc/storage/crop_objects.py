"""Face crops in the object store all nodes share (``console.face_crops_bucket``).

One object per indexed face, ``crops/<collection digest>/<FaceId>.jpg`` in the bucket, so a
DeleteFaces or DeleteCollection served by any node removes the crop for every node, and any
node's console shows a crop another node wrote. The cap (``max_bytes``) and the retention
hold for the whole prefix, so for the cluster, and are applied by a sweep: at load, then at
most every ``sweep_s``, run by the crop written or read that finds it due (no thread of its
own). A sweep lists the prefix, removes the crops past their retention, then, over the cap,
the oldest (``drop_oldest``) or newest (``drop_newest``) until the rest fit.

Between sweeps a node knows only what it listed and what it wrote or removed since, so the
cap can be exceeded by what other nodes wrote since its last sweep, and a crop another node
wrote can be shown up to ``sweep_s`` past its retention; the next sweep restores both. Ages
come from the store's last-modified times, read against this node's clock.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import cv2
import numpy as np

from streamproc.errors import InvalidS3ObjectException, OutputNotWritable
from streamproc.storage.crops import CropsWhenFull, crop_folder, face_crop, is_face_id
from streamproc.storage.objects import ListedObject, ObjectRef, ObjectStore

logger = logging.getLogger(__name__)

PREFIX = "crops/"
# Only objects named as this store names them are its crops; anything else under the
# prefix is someone else's and is never counted or removed.
_CROP_KEY = re.compile(r"crops/[0-9a-f]{32}/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\.jpg")


class SharedCropStore:
    """Crops by (collection, FaceId) as objects in one bucket, bounded cluster-wide; thread-safe.

    Writes, removals for room and sweeps on this node take one lock (a crop is a few KB);
    reads of a crop take it only to look up and update what the node knows.
    """

    def __init__(self, objects: ObjectStore, bucket: str, max_bytes: int, retention_s: float,
                 when_full: CropsWhenFull = CropsWhenFull.DROP_OLDEST, sweep_s: float = 60.0,
                 clock: Callable[[], float] = time.time,
                 on_drop: Callable[[], None] | None = None) -> None:
        if max_bytes < 1 or retention_s <= 0 or sweep_s <= 0:
            msg = "a crop store needs max_bytes >= 1, retention_s > 0 and sweep_s > 0"
            raise ValueError(msg)
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self.when_full = when_full
        self.sweep_s = sweep_s
        self._objects = objects
        self._clock = clock
        self._on_drop = on_drop
        self._lock = threading.Lock()
        # key -> (bytes, written at), oldest first: the last listing and this node's own since
        self._known: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._swept: float | None = None
        self.bytes = 0  # of the crops this node knows of
        self.dropped = 0  # crops not kept or removed for room by this node, one each

    def load(self) -> None:
        """Sweep once (at start). A store that cannot be listed now is logged, not raised."""
        with self._lock:
            self._sweep(self._clock())

    def key(self, collection: str, face_id: str) -> str | None:
        """The key of this face's crop, or None for a FaceId that is not one."""
        if not is_face_id(face_id):
            return None
        return f"{PREFIX}{crop_folder(collection)}/{face_id}.jpg"

    def keep(self, collection: str, face_id: str, pixels: np.ndarray, box: np.ndarray) -> bool:
        """Crop and keep a face just indexed; False (logged, counted) when it cannot be."""
        try:
            jpeg = face_crop(pixels, box)
        except (ValueError, cv2.error) as exc:
            logger.warning("face crop of %s not kept: %s", face_id, exc)
            with self._lock:
                self._dropped()
            return False
        return self.put(collection, face_id, jpeg)

    def put(self, collection: str, face_id: str, jpeg: bytes) -> bool:
        """Keep a crop; False when the policy, its size or the store leaves it out (counted)."""
        key = self.key(collection, face_id)
        if key is None:
            return False
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            self._forget(key)
            if not self._make_room(len(jpeg)):
                self._dropped()
                return False
            try:
                self._objects.put_bytes(ObjectRef(self.bucket, key), jpeg)
            except OutputNotWritable as exc:
                logger.warning("face crop of %s not kept: %s", face_id, exc.message)
                self._dropped()
                return False
            self._known[key] = (len(jpeg), now)
            self.bytes += len(jpeg)
        return True

    def get(self, collection: str, face_id: str) -> bytes | None:
        """The crop, or None (none kept, removed by any node, or past its retention)."""
        key = self.key(collection, face_id)
        if key is None:
            return None
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            known = self._known.get(key)
        if known is not None and known[1] + self.retention_s <= now:
            self._remove([key])
            return None
        try:  # read even when unknown here: another node may have written it since
            return self._objects.read(ObjectRef(self.bucket, key), self.max_bytes)
        except InvalidS3ObjectException:
            with self._lock:
                self._forget(key)
            return None

    def delete(self, collection: str, face_ids: Iterable[str]) -> None:
        """Remove the crops of these faces, for every node (DeleteFaces)."""
        self._remove([k for k in (self.key(collection, f) for f in face_ids) if k is not None])

    def delete_collection(self, collection: str) -> None:
        """Remove every crop of a collection, for every node (DeleteCollection)."""
        prefix = f"{PREFIX}{crop_folder(collection)}/"
        try:
            listed = [o.key for o in self._objects.listing(self.bucket, prefix)]
        except InvalidS3ObjectException as exc:
            logger.warning("face crops of a deleted collection not removed: %s", exc.message)
            listed = []
        with self._lock:
            listed += [k for k in self._known if k.startswith(prefix)]
        self._remove(list(dict.fromkeys(listed)))

    def clear(self) -> int:
        """Remove every crop in the bucket (crops turned off); how many were there."""
        try:
            listed = [o.key for o in self._objects.listing(self.bucket, PREFIX)
                      if _CROP_KEY.fullmatch(o.key)]
        except InvalidS3ObjectException as exc:
            logger.warning("face crops not removed (%s/%s): %s", self.bucket, PREFIX,
                           exc.message)
            return 0
        self._remove(listed)
        return len(listed)

    # ---- under the lock ----------------------------------------------------------------------
    def _sweep_if_due(self, now: float) -> None:
        if self._swept is None or now - self._swept >= self.sweep_s:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._swept = now
        try:
            listed = self._objects.listing(self.bucket, PREFIX)
        except InvalidS3ObjectException as exc:
            logger.warning("face crops not swept (%s/%s): %s", self.bucket, PREFIX, exc.message)
            return
        current: list[ListedObject] = []
        for item in sorted(listed, key=lambda o: (o.modified, o.key)):
            if not _CROP_KEY.fullmatch(item.key):
                continue
            if item.modified + self.retention_s <= now:
                self._delete_object(item.key)
            else:
                current.append(item)
        self._known = OrderedDict((o.key, (o.size, o.modified)) for o in current)
        self.bytes = sum(o.size for o in current)
        while self.bytes > self.max_bytes:  # others' writes since the last sweep (the slack)
            newest = self.when_full is CropsWhenFull.DROP_NEWEST
            key = next(reversed(self._known)) if newest else next(iter(self._known))
            self._delete_object(key)
            self._forget(key)
            self._dropped()

    def _make_room(self, size: int) -> bool:
        if size > self.max_bytes:
            return False
        if self.when_full is CropsWhenFull.DROP_NEWEST:
            return self.bytes + size <= self.max_bytes
        while self.bytes + size > self.max_bytes and self._known:
            oldest = next(iter(self._known))
            self._delete_object(oldest)
            self._forget(oldest)
            self._dropped()
        return True

    def _forget(self, key: str) -> None:
        entry = self._known.pop(key, None)
        if entry is not None:
            self.bytes -= entry[0]

    def _dropped(self) -> None:
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()

    # ---- object I/O ---------------------------------------------------------------------------
    def _remove(self, keys: list[str]) -> None:
        for key in keys:
            self._delete_object(key)
        with self._lock:
            for key in keys:
                self._forget(key)

    def _delete_object(self, key: str) -> None:
        try:
            self._objects.delete(ObjectRef(self.bucket, key))
        except OutputNotWritable as exc:  # left for a later sweep's retention
            logger.warning("cannot remove face crop %s: %s", key, exc.message)
