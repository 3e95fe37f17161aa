"""A lifecycle base for everything that owns a thread.

Hook order::

    start() -> _on_start() -> thread runs _run() until the stop event is set
    request_stop() -> event set -> _on_stop() (unblock _run); returns at once
    join(timeout) -> bool;  stop(timeout) = request_stop() + join(timeout)

``stop`` never blocks longer than its timeout; it returns False (and logs) when the
thread did not finish in time, so a stuck stage cannot hang the daemon's shutdown.

A thread that ends with an exception is not torn down here: the exception is kept in
:attr:`Service.error`, ``_on_crash`` is called on the dying thread (to post an event, never
to clean up), and whoever supervises the service notices ``alive`` is False and decides.
Loops call :meth:`beat` once per turn so a supervisor can tell a busy stage from a stuck one.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)


class Service:
    """Owns one thread with start()/stop() bounded in time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.last_beat = time.monotonic()
        # Set by a loop around a long operation that cannot beat (a FAISS build), so a
        # supervisor reports it busy rather than stuck.
        self.busy: str | None = None

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        """True once start() ran (the thread may have ended since)."""
        return self._thread is not None

    def start(self) -> None:
        """Run ``_on_start`` in the caller, then ``_run`` in a new thread (also a restart)."""
        if self.running:
            return
        self._stopping.clear()
        self.error = None
        self._on_start()
        self.beat()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to finish; returns at once."""
        self._stopping.set()
        self._on_stop()

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the thread; True if it has finished."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to finish and wait at most ``timeout`` seconds."""
        self.request_stop()
        if self.join(timeout):
            return True
        logger.error("%s did not stop within %.1fs; abandoning its thread", self.name, timeout)
        return False

    def wait(self, seconds: float) -> bool:
        """Sleep that ends early on stop; True if stopping."""
        return self._stopping.wait(seconds)

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stopping.is_set()

    def beat(self) -> None:
        """Record progress (called by the loop once per turn)."""
        self.last_beat = time.monotonic()

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:
            self.error = exc
            self._log_crash(exc)
            self._on_crash(exc)

    def _log_crash(self, exc: BaseException) -> None:
        """Log a crash with its traceback (overridden where messages may hold secrets)."""
        logger.error("%s crashed", self.name, exc_info=exc)

    def _on_start(self) -> None:
        """Hook: prepare in the caller's thread (raise to refuse starting)."""

    def _on_stop(self) -> None:
        """Hook: unblock ``_run`` (close sockets, signal servers)."""

    def _on_crash(self, exc: BaseException) -> None:
        """Hook: runs on the dying thread; report the crash, do not clean up here."""

    def _run(self) -> None:
        raise NotImplementedError


class SignalStop:
    """A stop flag that SIGINT/SIGTERM raise, with an Event's ``set``/``is_set``/``wait``.

    The handler takes no lock (it runs on the main thread between bytecodes, perhaps while
    that thread holds an Event's lock), and ``wait`` looks every ``poll_s``: a signal the
    kernel hands to another thread only flags it for the main thread, which must run
    bytecode to see it, so a wait without a timeout could miss it for good.
    """

    def __init__(self, poll_s: float = 0.2) -> None:
        self._flag = False
        self._poll = poll_s

    def install(self, signals: tuple[int, ...] | None = None) -> SignalStop:
        """Raise the flag on these signals (default SIGINT, SIGTERM); main thread only."""
        import signal

        for sig in signals or (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.set())
        return self

    def set(self) -> None:
        """Raise the flag (from a handler or any thread)."""
        self._flag = True

    def is_set(self) -> bool:
        """Whether the flag is raised."""
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Until the flag is raised or ``timeout`` passes; the flag."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._flag:
            left = self._poll if deadline is None else min(self._poll,
                                                            deadline - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return self._flag
