"""The one shape of a control loop: wait on a mailbox, take a turn, halt with deadlines.

The processors' reconciler and the jobs' scheduler are both loops that make what runs on
this node (sessions, job launches: *workers*) match what the state says should run. Each
takes the same shape from here::

    while not stopping: beat; wait for the mailbox (or the tick); reconcile_once()
    stop(): end the loop, then halt every worker, each with a deadline, abandoning the rest

A worker is never waited for on the loop's thread: :class:`Halts` asks it to end and checks
it on later turns (the loop ticks faster while a halt is pending); one that has not ended by
its deadline is abandoned, so a worker stuck in a read cannot stall the loop or the
daemon's shutdown. The loop's tables are owned by its thread (and by ``stop`` once the
thread has ended); what other threads may read is published as fresh immutable values.

The mailbox is the subclass's: ``reconcile_once`` takes its events and clears ``wake``
(under the mailbox's lock, so a post after the take sets it again), else the loop would
turn without pause.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from streamproc.lifecycle import Service

W = TypeVar("W")
W_contra = TypeVar("W_contra", contravariant=True)


class Halting(Protocol[W_contra]):
    """How a loop's runtime ends a worker without blocking."""

    def begin_halt(self, worker: W_contra) -> None:
        """Ask the worker to end; returns at once."""

    def halted(self, worker: W_contra) -> bool:
        """True once the worker's threads have finished."""

    def abandon(self, worker: W_contra) -> None:
        """Give up waiting for a worker that did not end by its deadline."""


@dataclass(frozen=True)
class _Halt(Generic[W]):
    key: str
    worker: W
    deadline: float


class Halts(Generic[W]):
    """Workers asked to end, each with a deadline; owned by the loop's thread.

    ``clock`` decides the deadlines (a test's manual clock); :meth:`drain` also bounds its
    wait in real time, so a shutdown ends even if that clock stands still. The list is
    under a lock all the same: ``stop`` drains it on the stopping thread, and a loop thread
    stuck in a turn past its join timeout may still begin a halt meanwhile; without the lock
    that halt could be dropped, never waited for nor abandoned.
    """

    def __init__(self, runtime: Halting[W], timeout_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._runtime = runtime
        self._timeout = timeout_s
        self._clock = clock
        self._pending: list[_Halt[W]] = []
        self._lock = threading.RLock()  # re-entrant: finish() reads keys() under it

    @property
    def timeout_s(self) -> float:
        """How long a worker has to end once asked."""
        return self._timeout

    def begin(self, key: str, worker: W) -> None:
        """Ask ``worker`` (the worker of ``key``) to end; it has ``timeout_s`` to do so."""
        self._runtime.begin_halt(worker)
        with self._lock:
            self._pending.append(_Halt(key, worker, self._clock() + self._timeout))

    @property
    def pending(self) -> bool:
        """Whether some halt is not over yet."""
        return bool(self._pending)

    def holds(self, key: str) -> bool:
        """Whether a worker of ``key`` is still halting."""
        with self._lock:
            return any(h.key == key for h in self._pending)

    def keys(self) -> set[str]:
        """The keys whose workers are still halting."""
        with self._lock:
            return {h.key for h in self._pending}

    def finish(self) -> set[str]:
        """Keys whose halt is over now: the worker ended, or was abandoned at its deadline.

        A key with two halts (a worker relaunched and halted again) is over once both are.
        """
        with self._lock:
            now, pending, over = self._clock(), [], set()
            for halt in self._pending:
                if self._runtime.halted(halt.worker):
                    over.add(halt.key)
                elif now >= halt.deadline:
                    self._runtime.abandon(halt.worker)
                    over.add(halt.key)
                else:
                    pending.append(halt)
            self._pending = pending
            return over - self.keys()

    def drain(self, poll_s: float = 0.02) -> set[str]:
        """At shutdown: wait for every pending halt until its deadline; the keys over.

        No halt here was begun later than now, so none has a deadline past ``timeout_s``
        from now: a halt still pending then (a clock that stood still) is abandoned.
        """
        give_up = time.monotonic() + self._timeout
        over: set[str] = set()
        while self._pending:
            over |= self.finish()
            if not self._pending:
                break
            if time.monotonic() >= give_up:
                over |= self._abandon_all()
                break
            time.sleep(poll_s)
        return over

    def _abandon_all(self) -> set[str]:
        with self._lock:
            pending, self._pending = self._pending, []
        for halt in pending:
            self._runtime.abandon(halt.worker)
        return {h.key for h in pending}


class ControlLoop(Service, Generic[W]):
    """A loop over a mailbox; subclasses write :meth:`reconcile_once` and :meth:`_halt_all`.

    A subclass that acts when a key's halt is over (settle a stop, release a claim) writes
    :meth:`_halts_over` and calls :meth:`_finish_halts` in its turn: ``stop`` hands it the
    keys its drain ends too.
    """

    fast_tick_s = 0.05  # while a halt is pending: notice its end soon

    def __init__(self, name: str, wake: threading.Event, tick_s: float,
                 halts: Halts[W]) -> None:
        super().__init__(name)
        self._wake = wake  # the mailbox's: set by every post
        self._tick_s = tick_s
        self.halts = halts

    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            self._wake.wait(self.fast_tick_s if self.halts.pending else self._tick_s)
            if not self.stopping:
                self.reconcile_once()

    def _on_stop(self) -> None:
        self._wake.set()  # the loop sees the stop now, not at its next tick

    def reconcile_once(self) -> None:
        """One turn: take the mailbox's events, converge every item, finish halts."""
        raise NotImplementedError

    def _halt_all(self) -> None:
        """At shutdown, after the loop has ended: begin the halt of every worker still on."""
        raise NotImplementedError

    def _finish_halts(self) -> None:
        """Finish the halts that are over, and hand their keys to :meth:`_halts_over`."""
        over = self.halts.finish()
        if over:
            self._halts_over(over)

    def _halts_over(self, keys: set[str]) -> None:
        """Hook: no worker of these keys is halting any more (also during ``stop``)."""

    def stop(self, timeout: float = 5.0) -> bool:
        """End the loop, then halt every worker within its deadline (state is kept).

        Bounded: ``timeout`` for the loop's thread, then the halts' ``timeout_s``. A loop
        thread that did not end in time (stuck in a turn) is logged by ``Service.stop``;
        its workers are halted all the same, so the daemon's shutdown ends them.
        """
        stopped = super().stop(timeout)
        try:
            self._halt_all()
        finally:  # a halt_all that raised midway still has what it began drained
            over = self.halts.drain()
        if over:
            self._halts_over(over)
        return stopped
