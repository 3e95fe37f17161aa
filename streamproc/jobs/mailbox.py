"""Events for the jobs' scheduler: new jobs and ended launches, bounded by construction.

An ended launch is kept per job (the latest attempt wins), so the mailbox never holds more
than one entry per running job: its policy when "full" is COALESCE, as the processors'.
"""

from __future__ import annotations

import threading


class JobMailbox:
    """Thread-safe; :meth:`take` hands the batch to the scheduler's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ended: dict[str, tuple[int, str | None]] = {}
        self._fail_all: str | None = None
        self.wake = threading.Event()

    def changed(self) -> None:
        """A job was queued: look at the queue now."""
        self.wake.set()

    def job_ended(self, job_id: str, attempt: int, error: str | None) -> None:
        """A launch finished its work (error None) or failed."""
        with self._lock:
            current = self._ended.get(job_id)
            if current is None or current[0] <= attempt:
                self._ended[job_id] = (attempt, error)
        self.wake.set()

    def fail_all(self, reason: str) -> None:
        """A shared stage gave up: every running job fails with ``reason``."""
        with self._lock:
            self._fail_all = reason
        self.wake.set()

    def take(self) -> tuple[dict[str, tuple[int, str | None]], str | None]:
        """What happened since the last take.

        Launches that ended (job id -> (attempt, error)), and why every running job must
        fail, if a shared stage gave up.
        """
        with self._lock:
            self.wake.clear()
            ended, self._ended = self._ended, {}
            fail_all, self._fail_all = self._fail_all, None
        return ended, fail_all
