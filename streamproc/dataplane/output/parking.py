"""Checks of one destination's parked topics, off the sender's thread, with backoff.

A sender parks a topic (its records wait apart in the outbox, in order) when the
destination cannot take records for it now, and sends the other topics' records meanwhile:

- a topic it has not sent to yet: a Kafka send to a topic without metadata blocks up to
  ``kafka.max_block_ms``, so every topic is checked once before its first record is sent,
  and a missing one (auto-creation off) never blocks the sender's thread;
- a topic whose send or acknowledgement said it is not there or not authorised (a missing
  ACL): checked again after 2 s, then 4, 8, ... up to ``kafka.topic_retry_max_s``, the
  backoff growing until one of its records is acknowledged.

Each check runs on a short-lived thread of its own, at most ``slots`` at a time, first-time
checks first, so one missing topic (whose check blocks) delays neither the others' records
nor the first check of a new topic much. :class:`TopicChecks` only schedules and runs
checks; what a verdict means for the outbox is the sender's decision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SLOTS = 4  # checks of one destination running at once


@dataclass(frozen=True)
class Verdict:
    """What a check found: ready (``reason`` and ``error`` None), or why not."""

    topic: str
    reason: str | None = None  # the topic's trouble
    error: BaseException | None = None  # the destination's trouble


class TopicChecks:
    """Parked topics of one destination: when each is checked next, and the checks."""

    def __init__(self, destination: str, check: Callable[[str, str], str | None],
                 wake: Callable[[], None], retry_s: float, retry_max_s: float,
                 slots: int = SLOTS) -> None:
        self._destination = destination
        self._check = check
        self._wake = wake
        self._retry_s, self._retry_max_s = retry_s, retry_max_s
        self._slots = slots
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}  # parked topic -> monotonic time of its next check
        self._strikes: dict[str, int] = {}  # topic -> failures since its last acknowledgement
        self._running: set[str] = set()
        self._verdicts: list[Verdict] = []
        self._stopped = False

    def park(self, topic: str, failed: bool) -> None:
        """Check ``topic``: at once if it never failed, else once its backoff passed."""
        with self._lock:
            if failed:
                self._strikes[topic] = self._strikes.get(topic, 0) + 1
            self._due[topic] = time.monotonic() + self._delay_locked(topic)

    def retry(self, topic: str, after_s: float) -> None:
        """Check ``topic`` again in ``after_s`` (the destination failed its check)."""
        with self._lock:
            self._due[topic] = time.monotonic() + after_s

    def forget(self, topic: str, strikes: bool = False) -> None:
        """``topic`` is no longer parked (and, ``strikes``, its failures are forgotten)."""
        with self._lock:
            self._due.pop(topic, None)
            if strikes:
                self._strikes.pop(topic, None)

    def acknowledged(self, topics: set[str]) -> None:
        """Records of ``topics`` were acknowledged: their backoff starts over."""
        if not topics:
            return
        with self._lock:
            for topic in topics:
                self._strikes.pop(topic, None)

    def delay(self, topic: str) -> float:
        """Seconds a failed ``topic`` waits before its next check."""
        with self._lock:
            return self._delay_locked(topic)

    def _delay_locked(self, topic: str) -> float:
        strikes = self._strikes.get(topic, 0)
        if strikes == 0:
            return 0.0
        return min(self._retry_s * 2 ** min(strikes - 1, 30), self._retry_max_s)

    def verdicts(self) -> list[Verdict]:
        """Verdicts of the checks that ended since the last call."""
        with self._lock:
            verdicts, self._verdicts = self._verdicts, []
            return verdicts

    def start_due(self) -> None:
        """Start the checks whose time came, first-time ones first, within the slots."""
        now = time.monotonic()
        with self._lock:
            if self._stopped:
                return
            due = sorted((self._strikes.get(t, 0), at, t) for t, at in self._due.items()
                         if at <= now and t not in self._running)
            starting = [t for _, _, t in due[:max(0, self._slots - len(self._running))]]
            for topic in starting:
                self._running.add(topic)
                del self._due[topic]
        for topic in starting:
            threading.Thread(target=self._run, args=(topic,), daemon=True,
                             name=f"check {self._destination} {topic}").start()

    def stop(self) -> None:
        """No new checks; those running end on their own (within ``kafka.max_block_ms``)."""
        with self._lock:
            self._stopped = True

    def resume(self) -> None:
        """Checks start again (a sender started after a stop)."""
        with self._lock:
            self._stopped = False

    def _run(self, topic: str) -> None:
        try:
            verdict = Verdict(topic, reason=self._check(self._destination, topic))
        except Exception as exc:  # whatever it was, it is the sender's to judge
            verdict = Verdict(topic, error=exc)
        with self._lock:
            self._running.discard(topic)
            self._verdicts.append(verdict)
        self._wake()
