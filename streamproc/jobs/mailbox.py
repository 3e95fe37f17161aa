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

    def take(self) -> dict[str, tuple[int, str | None]]:
        """Every launch that ended since the last take: job id -> (attempt, error)."""
        with self._lock:
            self.wake.clear()
            ended, self._ended = self._ended, {}
        return ended
