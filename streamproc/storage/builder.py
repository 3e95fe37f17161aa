"""Background index rebuilds, one collection at a time."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

import numpy as np

from streamproc.lifecycle import Service
from streamproc.storage.index import FaceIndex, build_index

logger = logging.getLogger(__name__)
Snapshot = Callable[[], tuple[np.ndarray, np.ndarray]]


class IndexBuilder(Service):
    """Rebuilds indexes off the request path; searches use the old index meanwhile.

    A FAISS build cannot be interrupted, so ``stop`` abandons one in progress after its
    timeout (the thread is a daemon; the half-built index is discarded).
    """

    def __init__(self) -> None:
        super().__init__("index-builder")
        self._jobs: queue.Queue[tuple[str, FaceIndex, Snapshot]] = queue.Queue(maxsize=1024)

    def submit(self, name: str, index: FaceIndex, snapshot: Snapshot) -> bool:
        """Queue a rebuild (False if the queue is full; the next change will ask again)."""
        if index.rebuilding:
            return False
        index.begin_rebuild()
        try:
            self._jobs.put_nowait((name, index, snapshot))
        except queue.Full:
            index.abort_rebuild()
            return False
        return True

    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            try:
                name, index, snapshot = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            self.busy = f"rebuilding the index of collection {name}"
            try:
                self._rebuild(name, index, snapshot)
            finally:
                self.busy = None

    def _rebuild(self, name: str, index: FaceIndex, snapshot: Snapshot) -> None:
        started = time.monotonic()
        try:
            ids, vectors = snapshot()
            new, kind = build_index(index.dim, ids, vectors, index.policy)
            if self.stopping:
                index.abort_rebuild()
                return
            index.finish_rebuild(new, kind, len(ids), int(ids.max()) if len(ids) else -1)
            logger.info("collection %s: rebuilt as %s over %d faces in %.1fs", name, kind,
                        len(ids), time.monotonic() - started)
        except Exception:
            index.abort_rebuild()
            logger.exception("rebuilding the index of collection %s failed", name)

    def _on_stop(self) -> None:
        while True:
            try:
                _, index, _ = self._jobs.get_nowait()
            except queue.Empty:
                return
            index.abort_rebuild()
