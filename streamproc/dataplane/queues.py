"""Bounded queues with a named policy for when they are full; every drop is counted."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")


class DropPolicy(str, Enum):
    """What ``put`` does on a full queue."""

    DROP_OLDEST = "DROP_OLDEST"  # live video: the newest frame is the one worth analysing
    DROP_NEWEST = "DROP_NEWEST"  # keep what is queued, refuse the new item
    BLOCK = "BLOCK"  # wait for room (in short, stop-aware steps)


class BoundedQueue(Generic[T]):
    """A deque with a hard size limit and a :class:`DropPolicy`."""

    def __init__(self, maxsize: int, policy: DropPolicy,
                 on_drop: Callable[[int], None] | None = None) -> None:
        if maxsize < 1:
            msg = "maxsize must be at least 1"
            raise ValueError(msg)
        self.maxsize = maxsize
        self.policy = policy
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._on_drop = on_drop
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def _drop(self, count: int = 1) -> None:
        self.dropped += count
        if self._on_drop is not None:
            self._on_drop(count)

    def put(self, item: T, stop: threading.Event | None = None, timeout: float = 1.0) -> bool:
        """Add ``item``; False if it (or, for DROP_OLDEST, nothing) was refused."""
        with self._cond:
            if len(self._items) >= self.maxsize:
                if self.policy is DropPolicy.DROP_OLDEST:
                    self._items.popleft()
                    self._drop()
                elif self.policy is DropPolicy.DROP_NEWEST:
                    self._drop()
                    return False
                else:
                    deadline = time.monotonic() + timeout
                    while len(self._items) >= self.maxsize:
                        left = deadline - time.monotonic()
                        if left <= 0 or (stop is not None and stop.is_set()):
                            self._drop()
                            return False
                        self._cond.wait(min(left, 0.1))
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: float = 0.0) -> T | None:
        """Oldest item, waiting up to ``timeout``; None if empty."""
        with self._cond:
            if not self._items and timeout > 0:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def drain(self) -> list[T]:
        """Remove and return everything queued."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return items
