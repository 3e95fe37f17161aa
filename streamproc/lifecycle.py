"""A lifecycle base for everything that owns a thread.

Hook order::

    start() -> _on_start() -> thread runs _run() until the stop event is set
    stop(timeout) -> event set -> _on_stop() (unblock _run) -> join(timeout) -> bool

``stop`` never blocks longer than its timeout; it returns False (and logs) when the
thread did not finish in time, so a stuck stage cannot hang the daemon's shutdown.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


class Service:
    """Owns one thread with start()/stop() bounded in time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run ``_on_start`` in the caller, then ``_run`` in a new thread."""
        if self.running:
            return
        self._stopping.clear()
        self._on_start()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to finish and wait at most ``timeout`` seconds."""
        self._stopping.set()
        self._on_stop()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.error("%s did not stop within %.1fs; abandoning its thread", self.name,
                         timeout)
            return False
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep that ends early on stop; True if stopping."""
        return self._stopping.wait(seconds)

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stopping.is_set()

    def _main(self) -> None:
        try:
            self._run()
        except Exception:
            logger.exception("%s crashed", self.name)

    def _on_start(self) -> None:
        """Hook: prepare in the caller's thread (raise to refuse starting)."""

    def _on_stop(self) -> None:
        """Hook: unblock ``_run`` (close sockets, signal servers)."""

    def _run(self) -> None:
        raise NotImplementedError
