"""The thread that does a shared crop store's object I/O, so no request waits on the bucket.

IndexFaces, DeleteFaces, DeleteCollection and the console's reads only queue work here
(:class:`CropTask`); one thread runs it in order, so a crop written and then deleted is
deleted last. An unreachable endpoint then costs crops (and this thread's time), never a
request's. Two bounds, each a named policy:

* crops to write: at most ``max_crops`` queued; one more is refused (``DROP_NEWEST``, and
  the store counts it as dropped): a crop is only a picture for the console;
* removals and sweeps: at most ``max_removals`` queued; one more removal from DeleteFaces or
  DeleteCollection waits for room up to ``wait_s`` (``BLOCK``); past that it is refused and
  the store keeps its keys doomed for its next sweep, so no removal is lost. A console read
  never waits. A sweep never waits: one refused is queued by the next request that finds it
  due.

Hook order: ``start()`` -> ``submit()``... -> ``stop(timeout)``: stop lets the thread
finish what is queued (removals too) within ``timeout``, then abandons it with an error
log (the thread is a daemon: an endpoint that never answers cannot hold the exit).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

logger = logging.getLogger(__name__)


class TaskKind(str, Enum):
    """What one queued piece of crop I/O does."""

    PUT = "put"  # write one crop (after removing ``keys`` to make room for it)
    DELETE = "delete"  # remove ``keys``
    SWEEP = "sweep"  # list the prefix, apply retention and the cap
    PURGE = "purge"  # list ``key`` (a collection's prefix) and remove all of it and ``keys``


@dataclass(frozen=True)
class CropTask:
    """One piece of object I/O for the writer."""

    kind: TaskKind
    key: str = ""
    data: bytes = b""
    keys: tuple[str, ...] = field(default_factory=tuple)


class CropWriter:
    """Runs :class:`CropTask` s on one thread, bounded as the module says; thread-safe."""

    def __init__(self, run: Callable[[CropTask], None], max_crops: int, max_removals: int,
                 wait_s: float = 5.0) -> None:
        if max_crops < 1 or max_removals < 1:
            msg = "a crop writer needs max_crops >= 1 and max_removals >= 1"
            raise ValueError(msg)
        self._run = run
        self._max = {True: max_crops, False: max_removals}  # by "is a crop"
        self._wait_s = wait_s
        self._cond = threading.Condition()
        self._tasks: deque[CropTask] = deque()
        self._counts = {True: 0, False: 0}
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (again after a stop).

        RuntimeError while the thread a timed-out ``stop()`` abandoned still runs: starting
        anew would leave two threads, or one that refuses every submit.
        """
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                if self._stopping:
                    msg = "the crop writer's previous thread has not ended; cannot start"
                    raise RuntimeError(msg)
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="crop-writer",
                                            daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        """True while the thread is alive (also one abandoned by a stop that timed out)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def queued(self) -> int:
        """Tasks queued and not yet taken (for /health)."""
        with self._cond:
            return len(self._tasks)

    def submit(self, task: CropTask, wait: bool = False) -> bool:
        """Queue ``task``; False when refused (the queue's policy, or the writer stopping).

        ``wait``: a removal waits up to ``wait_s`` for room (never under a caller's lock).
        """
        crop = task.kind is TaskKind.PUT
        with self._cond:
            if wait and not crop:
                self._cond.wait_for(lambda: self._stopping or self._counts[False]
                                    < self._max[False], self._wait_s)
            if self._stopping or self._counts[crop] >= self._max[crop]:
                return False
            self._tasks.append(task)
            self._counts[crop] += 1
            self._cond.notify_all()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far has run; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._tasks and not self._busy, timeout)

    def stop(self, timeout: float) -> bool:
        """Run what is queued, then end the thread; False (logged) when it took too long."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.error("the crop writer did not finish within %.1f s; abandoned with %d "
                         "tasks queued (crops past retention go at the next start's sweep)",
                         timeout, len(self._tasks))
            return False
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._tasks or self._stopping)
                if not self._tasks:
                    return  # stopping, and nothing left to run
                task = self._tasks.popleft()
                self._counts[task.kind is TaskKind.PUT] -= 1
                self._busy = True
                self._cond.notify_all()  # room for a removal waiting in submit()
            try:
                self._run(task)
            except Exception:  # one bad task must not end the writer for the node
                logger.exception("face crop %s task failed", task.kind.value)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
