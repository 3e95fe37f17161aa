"""SignalStop: signals raise a flag without locks, and waits see it within their poll."""

from __future__ import annotations

import os
import signal
import threading
import time

from streamproc.lifecycle import SignalStop


def test_a_signal_sent_while_the_main_thread_waits_ends_the_wait() -> None:
    old = signal.getsignal(signal.SIGUSR1)
    try:
        stop = SignalStop(poll_s=0.05).install((signal.SIGUSR1,))
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        started = time.monotonic()
        assert stop.wait(10) is True  # no timeout reached: the signal ended it
        assert time.monotonic() - started < 2
        assert stop.is_set()
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_a_signal_the_kernel_hands_to_another_thread_still_ends_the_wait() -> None:
    # The case that kept a node running after SIGTERM: the signal lands on a worker thread,
    # so the main thread is never interrupted and must look by itself. A plain
    # threading.Event().wait(5) here returns False after 5 s.
    old = signal.getsignal(signal.SIGUSR1)
    try:
        stop = SignalStop(poll_s=0.05).install((signal.SIGUSR1,))
        worker = threading.Thread(target=lambda: (
            time.sleep(0.2), signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)))
        worker.start()
        started = time.monotonic()
        assert stop.wait(5) is True
        assert time.monotonic() - started < 2
        worker.join(5)
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_wait_without_a_signal_returns_false_after_its_timeout() -> None:
    stop = SignalStop(poll_s=0.05)
    started = time.monotonic()
    assert stop.wait(0.2) is False
    assert 0.15 < time.monotonic() - started < 1.0
    stop.set()
    assert stop.wait() is True
