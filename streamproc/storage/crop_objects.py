"""Face crops in the object store all nodes share (``console.face_crops_bucket``).

One object per indexed face, ``crops/<collection digest>/<FaceId>.jpg`` in the bucket, so a
DeleteFaces or DeleteCollection served by any node removes the crop for every node, and any
node's console shows a crop another node wrote. The cap (``max_bytes``) and the retention
hold for the whole prefix, so for the cluster, and are applied by a sweep: at start, then
at most every ``sweep_s``, queued by the crop written or read that finds it due. A sweep
lists the prefix, removes the crops past their retention, then, over the cap, the oldest
(``drop_oldest``) or newest (``drop_newest``) until the rest fit.

No request does the bucket's I/O but a crop's read: writes, removals and sweeps run on the
store's :class:`~.crop_writer.CropWriter`, in the order they were asked for, with the
store's lock never held across a network call. The lock guards only what the node knows:
the crops it listed or queued, the crops queued to be written (read back from memory until
they are), and the keys queued for removal (never shown again meanwhile).

Removals are never lost: a removal the writer's queue refuses leaves its keys doomed (not
shown) and makes the next request queue a sweep, which removes every doomed key it lists; a
write runs only while its crop is still the one queued for its key, so a crop removed while
its write waited is never written after its removal.

Between sweeps a node knows only what it listed and what it wrote or removed since, so the
cap can be exceeded by what other nodes wrote since its last sweep, and a crop another node
wrote can be shown up to ``sweep_s`` past its retention; the next sweep restores both. Ages
come from the store's last-modified times, read against this node's clock. A node that
does not keep crops (``keeps=False``: its console is off) still removes them.
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
from streamproc.storage.crop_writer import CropTask, CropWriter, TaskKind
from streamproc.storage.crops import (
    FACE_ID_PATTERN,
    FOLDER_PATTERN,
    CropsWhenFull,
    crop_folder,
    face_crop,
    is_face_id,
)
from streamproc.storage.objects import ListedObject, ObjectRef, ObjectStore

logger = logging.getLogger(__name__)

PREFIX = "crops/"
# Only objects named as this store names them (:meth:`SharedCropStore.key`) are its crops;
# anything else under the prefix is someone else's and is never counted or removed.
_CROP_KEY = re.compile(f"{re.escape(PREFIX)}{FOLDER_PATTERN}/{FACE_ID_PATTERN}\\.jpg")


class SharedCropStore:
    """Crops by (collection, FaceId) as objects in one bucket, bounded cluster-wide; thread-safe.

    ``start()`` before use and ``stop(timeout)`` at shutdown (its writer's thread);
    ``flush(timeout)`` waits for the I/O queued so far (tests, and DeleteCollection's caller
    needs none of it).
    """

    def __init__(self, objects: ObjectStore, bucket: str, max_bytes: int, retention_s: float,
                 when_full: CropsWhenFull = CropsWhenFull.DROP_OLDEST, sweep_s: float = 60.0,
                 clock: Callable[[], float] = time.time,
                 on_drop: Callable[[], None] | None = None, *, keeps: bool = True,
                 max_pending: int = 64) -> None:
        if max_bytes < 1 or retention_s <= 0 or sweep_s <= 0:
            msg = "a crop store needs max_bytes >= 1, retention_s > 0 and sweep_s > 0"
            raise ValueError(msg)
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self.when_full = when_full
        self.sweep_s = sweep_s
        self.keeps = keeps
        self._objects = objects
        self._clock = clock
        self._on_drop = on_drop
        self._lock = threading.Lock()
        # key -> (bytes, written at), oldest first: the last listing and this node's own since
        self._known: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._pending: dict[str, bytes] = {}  # queued to be written, not yet in the bucket
        self._doomed: set[str] = set()  # keys and collection prefixes queued for removal
        self._swept: float | None = None
        self._writer = CropWriter(self._run, max_pending, 16 * max_pending)
        self.bytes = 0  # of the crops this node knows of
        self.dropped = 0  # crops not kept, or removed for room by this node, one each

    def start(self) -> None:
        """Start the writer's thread."""
        self._writer.start()

    def stop(self, timeout: float) -> None:
        """Let the writer finish what is queued (within ``timeout``) and end its thread."""
        self._writer.stop(timeout)

    def report(self) -> dict[str, object]:
        """The writer's state for /health, shaped as the supervised stages report theirs."""
        alive = self._writer.running
        return {"state": "ok" if alive else "not started", "alive": alive,
                "queued": self._writer.queued, "dropped": self.dropped}

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the I/O queued so far; False if ``timeout`` passed first."""
        return self._writer.flush(timeout)

    def load(self) -> None:
        """Queue the first sweep (at start); a node that keeps no crops leaves it to others."""
        if self.keeps:
            with self._lock:
                self._queue_sweep(self._clock())

    def key(self, collection: str, face_id: str) -> str | None:
        """The key of this face's crop, or None for a FaceId that is not one."""
        if not is_face_id(face_id):
            return None
        return f"{PREFIX}{crop_folder(collection)}/{face_id}.jpg"

    def keep(self, collection: str, face_id: str, pixels: np.ndarray, box: np.ndarray) -> bool:
        """Crop and keep a face just indexed; False (logged, counted) when it cannot be."""
        if not self.keeps:
            return False
        try:
            jpeg = face_crop(pixels, box)
        except (ValueError, cv2.error) as exc:
            logger.warning("face crop of %s not kept: %s", face_id, exc)
            with self._lock:
                self._dropped()
            return False
        return self.put(collection, face_id, jpeg)

    def put(self, collection: str, face_id: str, jpeg: bytes) -> bool:
        """Queue a crop to be kept; False when the policy, size or full queue leaves it out.

        Each crop left out is counted; one whose write fails later is logged and counted then.
        """
        key = self.key(collection, face_id)
        if key is None or not self.keeps:
            return False
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            self._forget(key)
            room = self._make_room(len(jpeg))
            # Queued under the lock, so a DeleteFaces of this face is queued after it.
            if room is None or not self._writer.submit(CropTask(TaskKind.PUT, key, jpeg,
                                                                tuple(room))):
                self._dropped()  # the victims stay known and shown: nothing removes them
                return False
            for victim in room:
                self._doom(victim)
            self._doomed.discard(key)
            self._known[key] = (len(jpeg), now)
            self.bytes += len(jpeg)
            self._pending[key] = jpeg
        return True

    def get(self, collection: str, face_id: str) -> bytes | None:
        """The crop, or None (none kept, removed by any node, or past its retention)."""
        key = self.key(collection, face_id)
        if key is None or not self.keeps:
            return None
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            if key in self._doomed or key.rsplit("/", 1)[0] + "/" in self._doomed:
                return None
            known, pending = self._known.get(key), self._pending.get(key)
            expired = known is not None and known[1] + self.retention_s <= now
        if expired:
            self._remove([key], wait=False)  # a console read never waits on the writer
            return None
        if pending is not None:
            return pending
        try:  # read even when unknown here: another node may have written it since
            return self._objects.read(ObjectRef(self.bucket, key), self.max_bytes)
        except InvalidS3ObjectException:
            with self._lock:
                if key not in self._pending:
                    self._forget(key)
            return None

    def delete(self, collection: str, face_ids: Iterable[str]) -> None:
        """Remove the crops of these faces, for every node (DeleteFaces)."""
        self._remove([k for k in (self.key(collection, f) for f in face_ids) if k is not None])

    def delete_collection(self, collection: str) -> None:
        """Remove every crop of a collection, for every node (DeleteCollection)."""
        prefix = f"{PREFIX}{crop_folder(collection)}/"
        with self._lock:
            keys = tuple(k for k in self._known if k.startswith(prefix))
            for key in keys:
                self._doom(key)
            self._doomed.add(prefix)
        if not self._writer.submit(CropTask(TaskKind.PURGE, prefix, keys=keys), wait=True):
            logger.warning("face crops of a deleted collection queued for the next sweep "
                           "(the crop writer is behind)")
            with self._lock:
                self._swept = None  # doomed stays: the next request queues the sweep

    def clear(self) -> int:
        """Remove every crop in the bucket now (crops turned off, at start); how many."""
        try:
            listed = [o.key for o in self._objects.listing(self.bucket, PREFIX)
                      if _CROP_KEY.fullmatch(o.key)]
        except InvalidS3ObjectException as exc:
            logger.warning("face crops not removed (%s/%s): %s", self.bucket, PREFIX,
                           exc.message)
            return 0
        return len(self._delete_objects(listed))

    # ---- under the lock ----------------------------------------------------------------------
    def _sweep_if_due(self, now: float) -> None:
        if self._swept is None or now - self._swept >= self.sweep_s:
            self._queue_sweep(now)

    def _queue_sweep(self, now: float) -> None:
        if self._writer.submit(CropTask(TaskKind.SWEEP)):  # refused: the next request's
            self._swept = now

    def _make_room(self, size: int) -> list[str] | None:
        """The keys to remove so ``size`` more bytes fit, or None: no room.

        Only picked: the caller dooms them once the write that needs the room is queued, so a
        refused write hides nothing.
        """
        if size > self.max_bytes:
            return None
        if self.when_full is CropsWhenFull.DROP_NEWEST:
            return [] if self.bytes + size <= self.max_bytes else None
        victims, held = [], self.bytes
        for key, (nbytes, _) in self._known.items():
            if held + size <= self.max_bytes:
                break
            victims.append(key)
            held -= nbytes
        return victims

    def _doom(self, key: str) -> None:
        self._forget(key)
        self._pending.pop(key, None)
        self._doomed.add(key)

    def _forget(self, key: str) -> None:
        entry = self._known.pop(key, None)
        if entry is not None:
            self.bytes -= entry[0]

    def _dropped(self, count: int = 1) -> None:
        self.dropped += count
        if self._on_drop is not None:
            for _ in range(count):
                self._on_drop()

    # ---- requests to the writer ---------------------------------------------------------------
    def _remove(self, keys: list[str], *, wait: bool = True) -> None:
        if not keys:
            return
        with self._lock:
            for key in keys:
                self._doom(key)
        if not self._writer.submit(CropTask(TaskKind.DELETE, keys=tuple(keys)), wait=wait):
            logger.warning("%d face crops queued for the next sweep (the crop writer is "
                           "behind)", len(keys))
            with self._lock:
                self._swept = None  # doomed stays (never shown): the next request's sweep

    # ---- on the writer's thread: object I/O, never under the lock ----------------------------
    def _run(self, task: CropTask) -> None:
        if task.kind is TaskKind.PUT:
            self._write(task)
        elif task.kind is TaskKind.SWEEP:
            self._sweep(self._clock())
        else:
            self._delete_task(task)

    def _delete_task(self, task: CropTask) -> None:
        """DeleteFaces' or DeleteCollection's removals, done on the writer's thread.

        What fails stays doomed (never shown again) and the next request's sweep removes it:
        a deleted face's crop never comes back.
        """
        keys = list(task.keys)
        listed: list[str] | None = []
        if task.kind is TaskKind.PURGE:
            listed = self._listed(task.key)
            keys += listed or []
        keys = list(dict.fromkeys(keys))
        removed = set(self._delete_objects(keys))
        failed = [key for key in keys if key not in removed]
        with self._lock:
            for key in keys:
                self._forget(key)
            self._doomed.difference_update(removed)
            if task.kind is TaskKind.PURGE and listed is not None and not failed:
                self._doomed.discard(task.key)  # the whole prefix is gone
            if failed or listed is None:
                self._swept = None  # the next request queues the sweep that finishes it

    def _write(self, task: CropTask) -> None:
        if task.keys:  # removed for room: counted once really removed
            removed = self._delete_objects(list(task.keys))
            with self._lock:
                self._dropped(len(removed))
                self._doomed.difference_update(removed)  # the rest: the next sweep's
        with self._lock:
            if self._pending.get(task.key) is not task.data:
                return  # removed or replaced while queued: never written after its removal
        try:
            self._objects.put_bytes(ObjectRef(self.bucket, task.key), task.data)
            failed = None
        except OutputNotWritable as exc:
            failed = exc.message
        with self._lock:
            mine = self._pending.get(task.key) is task.data  # not replaced or removed since
            if mine:
                del self._pending[task.key]
            if failed is not None:
                logger.warning("face crop %s not kept: %s", task.key, failed)
                self._dropped()
                if mine:
                    self._forget(task.key)

    def _sweep(self, now: float) -> None:
        try:
            listed = self._objects.listing(self.bucket, PREFIX)
        except InvalidS3ObjectException as exc:
            logger.warning("face crops not swept (%s/%s): %s", self.bucket, PREFIX, exc.message)
            return
        crops = sorted((o for o in listed if _CROP_KEY.fullmatch(o.key)),
                       key=lambda o: (o.modified, o.key))
        with self._lock:  # removals the writer's queue refused, and those still queued
            doomed = set(self._doomed)
        unwanted = [o.key for o in crops if o.modified + self.retention_s <= now
                    or o.key in doomed or o.key.rsplit("/", 1)[0] + "/" in doomed]
        gone = set(self._delete_objects(unwanted))
        with self._lock:
            # A doomed key now gone or never listed needs nothing more; one whose removal
            # failed stays doomed, for the next sweep.
            failed = {k.rsplit("/", 1)[0] + "/" for k in unwanted if k not in gone}
            failed.update(k for k in unwanted if k not in gone)
            self._doomed.difference_update(doomed - failed)
            victims = self._relist([o for o in crops if o.key not in gone
                                    and o.key not in doomed])
        written = [k for k, queued in victims if not queued]
        if victims:  # others' writes since the last sweep (the slack)
            removed = self._delete_objects(written)
            with self._lock:
                # a victim still queued is never written (its write is skipped): one drop
                self._dropped(len(removed) + len(victims) - len(written))
                # a removal that failed stays doomed: the next sweep retries it
                self._doomed.difference_update([*removed, *(k for k, q in victims if q)])

    def _relist(self, current: list[ListedObject]) -> list[tuple[str, bool]]:
        """Under the lock: know ``current`` and the crops still queued; the keys over the cap.

        Each victim with whether it was still queued (not yet written: nothing to remove).
        """
        queued = [(k, self._known[k]) for k in self._known if k in self._pending]
        self._known = OrderedDict((o.key, (o.size, o.modified)) for o in current
                                  if o.key not in self._doomed and o.key not in self._pending
                                  and o.key.rsplit("/", 1)[0] + "/" not in self._doomed)
        self._known.update(queued)
        self.bytes = sum(size for size, _ in self._known.values())
        victims = []
        while self.bytes > self.max_bytes and self._known:
            newest = self.when_full is CropsWhenFull.DROP_NEWEST
            key = next(reversed(self._known)) if newest else next(iter(self._known))
            victims.append((key, key in self._pending))
            self._doom(key)
        return victims

    def _listed(self, prefix: str) -> list[str] | None:
        """The crops under ``prefix``; None when the listing failed (the prefix stays doomed)."""
        try:
            return [o.key for o in self._objects.listing(self.bucket, prefix)
                    if _CROP_KEY.fullmatch(o.key)]
        except InvalidS3ObjectException as exc:
            logger.warning("face crops of a deleted collection not removed yet (a later sweep "
                           "will): %s", exc.message)
            return None

    def _delete_objects(self, keys: list[str]) -> list[str]:
        """Remove ``keys`` from the bucket (1000 a call on S3); the keys removed."""
        if not keys:
            return []
        try:
            removed = self._objects.delete_many(self.bucket, keys)
        except OutputNotWritable as exc:  # left for a later sweep's retention
            logger.warning("cannot remove %d face crops: %s", len(keys), exc.message)
            return []
        if len(removed) < len(keys):
            logger.warning("cannot remove %d face crops (left for a later sweep)",
                           len(keys) - len(removed))
        return removed
