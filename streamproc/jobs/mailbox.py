"""Events for the jobs' scheduler: new jobs and ended launches, bounded by construction.

An ended launch is kept per job (the latest attempt wins), so the mailbox never holds more
than one entry per running job: its policy when "full" is COALESCE, as the processors'.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class LaunchEnded:
    """A launch finished its work (``error`` None) or failed with ``error``."""

    job_id: str
    attempt: int
    error: str | None


@dataclass(frozen=True)
class StageDown:
    """A shared stage gave up for good: every running and queued job fails with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Batch:
    """What happened since the last take."""

    ended: tuple[LaunchEnded, ...] = ()  # one per job, in the order the jobs first ended
    down: StageDown | None = None


class JobMailbox:
    """Thread-safe; :meth:`take` hands the batch to the scheduler's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ended: dict[str, LaunchEnded] = {}
        self._down: StageDown | None = None
        self.wake = threading.Event()

    def changed(self) -> None:
        """A job was queued: look at the queue now."""
        self.wake.set()

    def job_ended(self, job_id: str, attempt: int, error: str | None) -> None:
        """A launch finished its work (error None) or failed (``JobEvents``, for launches)."""
        with self._lock:
            current = self._ended.get(job_id)
            if current is None or current.attempt <= attempt:
                self._ended[job_id] = LaunchEnded(job_id, attempt, error)
        self.wake.set()

    def fail_all(self, reason: str) -> None:
        """A shared stage gave up: every running job fails with ``reason``."""
        with self._lock:
            self._down = StageDown(reason)
        self.wake.set()

    def take(self) -> Batch:
        """Everything posted since the last take."""
        with self._lock:
            self.wake.clear()
            ended, self._ended = self._ended, {}
            down, self._down = self._down, None
        return Batch(tuple(ended.values()), down)
