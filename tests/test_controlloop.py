"""The shared control loop (streamproc/controlloop.py): halts with deadlines, bounded stop.

Over fakes only: workers are small objects a test ends (or never ends), and deadlines run on
a manual clock where the test needs an exact edge.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from streamproc import controlloop
from streamproc.controlloop import ControlLoop, Halts
from streamproc.lifecycle import Service
from streamproc.tools.clusterkit import poll


@dataclass
class Worker:
    """A worker that ends when the test says so."""

    key: str
    done: bool = False
    asked: bool = False


@dataclass
class FakeRuntime:
    """Halting over :class:`Worker`: records who was asked to end and who was given up."""

    begun: list[Worker] = field(default_factory=list)
    abandoned: list[Worker] = field(default_factory=list)

    def begin_halt(self, worker: Worker) -> None:
        worker.asked = True
        self.begun.append(worker)

    def halted(self, worker: Worker) -> bool:
        return worker.done

    def abandon(self, worker: Worker) -> None:
        self.abandoned.append(worker)


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def halts(timeout_s: float = 1.0) -> tuple[Halts[Worker], FakeRuntime, Clock]:
    runtime, clock = FakeRuntime(), Clock()
    return Halts(runtime, timeout_s, clock), runtime, clock


# ---- Halts ------------------------------------------------------------------------------------

def test_a_halt_is_pending_until_its_worker_ends() -> None:
    h, runtime, _ = halts()
    worker = Worker("a")
    assert not h.pending and h.keys() == set() and not h.holds("a")
    h.begin("a", worker)
    assert worker.asked and runtime.begun == [worker]
    assert h.pending and h.holds("a") and not h.holds("b") and h.keys() == {"a"}
    assert h.finish() == set() and h.pending  # still running: not over, not given up
    worker.done = True
    assert h.finish() == {"a"}
    assert not h.pending and not h.holds("a") and runtime.abandoned == []
    assert h.finish() == set()  # said once


def test_a_halt_is_abandoned_at_its_deadline_and_not_before() -> None:
    h, runtime, clock = halts(timeout_s=2.0)
    stuck = Worker("a")
    h.begin("a", stuck)
    clock.now += 2.0 - 1e-6
    assert h.finish() == set() and runtime.abandoned == [] and h.holds("a")
    clock.now += 1e-6  # exactly the deadline
    assert h.finish() == {"a"} and runtime.abandoned == [stuck] and not h.pending


def test_each_halt_has_its_own_deadline() -> None:
    h, runtime, clock = halts(timeout_s=1.0)
    first, second = Worker("a"), Worker("b")
    h.begin("a", first)
    clock.now += 0.5
    h.begin("b", second)
    clock.now += 0.5
    assert h.finish() == {"a"} and runtime.abandoned == [first] and h.keys() == {"b"}
    clock.now += 0.5
    assert h.finish() == {"b"} and runtime.abandoned == [first, second]


def test_a_key_halted_twice_is_over_only_when_both_are() -> None:
    h, runtime, clock = halts(timeout_s=1.0)
    old, new = Worker("a"), Worker("a")  # a worker relaunched and halted again
    h.begin("a", old)
    h.begin("a", new)
    new.done = True
    assert h.finish() == set() and h.holds("a")  # the older one still runs
    old.done = True
    assert h.finish() == {"a"} and not h.pending
    h.begin("a", stuck := Worker("a"))
    h.begin("a", Worker("a", done=True))
    clock.now += 1.0
    assert h.finish() == {"a"} and runtime.abandoned == [stuck]


def test_drain_waits_for_workers_that_end_and_gives_up_on_the_rest() -> None:
    h = Halts(FakeRuntime(), 0.3)  # the real clock
    ends, stuck = Worker("ends"), Worker("stuck")
    h.begin("ends", ends)
    h.begin("stuck", stuck)
    threading.Timer(0.05, lambda: setattr(ends, "done", True)).start()
    started = time.monotonic()
    assert h.drain() == {"ends", "stuck"}
    assert 0.25 < time.monotonic() - started < 1.0  # until the stuck one's deadline only
    assert not h.pending and ends.done


def test_drain_is_bounded_in_real_time_when_the_clock_stands_still() -> None:
    h, runtime, _ = halts(timeout_s=0.2)
    stuck = Worker("a")
    h.begin("a", stuck)
    over: list[set[str]] = []
    drain = threading.Thread(target=lambda: over.append(h.drain(poll_s=0.01)), daemon=True)
    drain.start()
    drain.join(1.0)  # a drain that trusted the clock alone would wait for ever
    assert not drain.is_alive() and over == [{"a"}] and runtime.abandoned == [stuck]


def test_drain_with_nothing_pending_returns_at_once() -> None:
    h, _, _ = halts(timeout_s=5.0)
    started = time.monotonic()
    assert h.drain() == set() and time.monotonic() - started < 0.1


def test_no_halt_is_lost_when_another_thread_finishes_the_list_meanwhile() -> None:
    """A loop stuck past stop's join may still begin halts while stop drains: none is lost.

    Every worker here has ended, so each halt begun must come back from finish() as over
    exactly once; without the lock, finish() replacing the list drops halts appended during
    its pass, and they never come back.
    """
    runtime = FakeRuntime()
    h: Halts[Worker] = Halts(runtime, 3600.0)
    begun: list[str] = []

    def begin_many() -> None:
        for n in range(30000):
            h.begin(f"w{n}", Worker(f"w{n}", done=True))
            begun.append(f"w{n}")

    thread = threading.Thread(target=begin_many)
    thread.start()
    over: set[str] = set()
    while thread.is_alive():
        over |= h.finish()
    thread.join()
    over |= h.finish()
    assert not h.pending
    assert set(begun) == over


# ---- ControlLoop ------------------------------------------------------------------------------

class Loop(ControlLoop[Worker]):
    """Counts its turns; begins a halt of each worker in ``to_halt`` once; records keys over."""

    def __init__(self, tick_s: float = 5.0, timeout_s: float = 0.3) -> None:
        self.runtime = FakeRuntime()
        self.wake = threading.Event()
        super().__init__("loop", self.wake, tick_s, Halts(self.runtime, timeout_s))
        self.turns = 0
        self.to_halt: list[Worker] = []
        self.running_workers: list[Worker] = []
        self.over: list[set[str]] = []
        self.block = threading.Event()  # set: a turn blocks until it is cleared
        self.halted_all = False

    def reconcile_once(self) -> None:
        self.wake.clear()
        self.turns += 1
        while self.block.is_set():
            time.sleep(0.01)
        while self.to_halt:
            worker = self.to_halt.pop()
            self.halts.begin(worker.key, worker)
        self._finish_halts()

    def _halt_all(self) -> None:
        self.halted_all = True
        for worker in self.running_workers:
            self.halts.begin(worker.key, worker)
        self.running_workers = []

    def _halts_over(self, keys: set[str]) -> None:
        self.over.append(keys)



@pytest.fixture
def loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.stop(1.0)


def test_the_base_leaves_the_turn_and_the_halts_to_the_subclass() -> None:
    base: ControlLoop[Worker] = ControlLoop("bare", threading.Event(), 1.0,
                                            Halts(FakeRuntime(), 1.0))
    with pytest.raises(NotImplementedError):
        base.reconcile_once()
    with pytest.raises(NotImplementedError):
        base._halt_all()
    base._halts_over({"a"})  # a hook that does nothing by default


def test_a_post_wakes_the_loop_and_the_tick_alone_does_not_turn_it_fast(loop: Loop) -> None:
    loop.start()
    assert poll(lambda: loop.turns == 0 and loop.running, 2.0, every=0.01)
    time.sleep(0.2)
    assert loop.turns == 0  # the tick is 5 s and nothing was posted
    loop.wake.set()
    assert poll(lambda: loop.turns == 1, 2.0, every=0.01)
    time.sleep(0.2)
    assert loop.turns == 1


def test_the_loop_ticks_fast_while_a_halt_is_pending(loop: Loop) -> None:
    loop.start()
    worker = Worker("a")
    loop.to_halt.append(worker)
    loop.wake.set()
    assert poll(lambda: loop.halts.pending, 2.0, every=0.01)
    seen = loop.turns
    time.sleep(0.3)
    assert loop.turns - seen >= 3  # every fast_tick_s (50 ms), not every tick (5 s)
    worker.done = True
    assert poll(lambda: loop.over == [{"a"}], 1.0, every=0.01)
    seen = loop.turns
    time.sleep(0.3)
    assert loop.turns - seen <= 1  # back to the slow tick once nothing halts


def test_stop_drains_the_halts_and_hands_over_their_keys() -> None:
    loop = Loop(timeout_s=2.0)
    ends = Worker("ends")
    loop.running_workers = [ends]
    loop.start()
    threading.Timer(0.1, lambda: setattr(ends, "done", True)).start()
    started = time.monotonic()
    assert loop.stop(1.0)
    assert time.monotonic() - started < 1.0  # not the halt's 2 s deadline: it ended
    assert loop.halted_all and ends.asked and loop.runtime.abandoned == []
    assert loop.over == [{"ends"}] and not loop.halts.pending


def test_stop_is_bounded_in_time_with_a_stuck_worker() -> None:
    loop = Loop(timeout_s=0.3)
    stuck, ends = Worker("stuck"), Worker("ends", done=True)
    loop.running_workers = [stuck, ends]
    loop.start()
    started = time.monotonic()
    assert loop.stop(1.0)
    assert time.monotonic() - started < 0.3 + 0.5
    assert loop.runtime.abandoned == [stuck]
    assert loop.over == [{"stuck", "ends"}]


def test_stop_with_a_loop_stuck_in_a_turn_still_halts_within_its_bound() -> None:
    loop = Loop(timeout_s=0.2)
    stuck = Worker("stuck")
    loop.running_workers = [stuck]
    loop.block.set()
    loop.start()
    loop.wake.set()
    assert poll(lambda: loop.turns == 1, 2.0, every=0.01)
    started = time.monotonic()
    assert loop.stop(0.2) is False  # the thread did not end in time ...
    assert time.monotonic() - started < 0.2 + 0.2 + 0.5
    assert loop.runtime.abandoned == [stuck]  # ... and its worker was halted anyway
    loop.block.clear()
    assert loop.stop(1.0)


def test_stop_wakes_a_loop_waiting_out_a_long_tick() -> None:
    loop = Loop(tick_s=30.0)
    loop.start()
    assert poll(lambda: loop.running, 2.0, every=0.01)
    started = time.monotonic()
    assert loop.stop(5.0)
    assert time.monotonic() - started < 0.5 and loop.turns == 0  # no turn after a stop


class _StandingTime:
    """The controlloop module's ``time``: a clock that moves only by the sleeps it is asked for."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s, self.sleeps = 100.0, step_s, 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += self.step_s


def test_drain_gives_up_at_its_bound_and_keeps_the_keys_that_ended(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = _StandingTime(step_s=0.5)
    monkeypatch.setattr(controlloop, "time", real)
    h, runtime, _ = halts(timeout_s=1.0)  # its own clock stands still: no deadline passes
    ends, stuck = Worker("ends", done=True), Worker("stuck")
    h.begin("ends", ends)
    h.begin("stuck", stuck)
    assert h.drain() == {"ends", "stuck"}
    assert real.sleeps == 2  # 100.5, then 101.0: the bound itself, not one poll later
    assert runtime.abandoned == [stuck]


def test_the_loop_turns_every_tick_without_a_post() -> None:
    loop = Loop(tick_s=0.05)
    loop.start()
    try:
        assert poll(lambda: loop.turns >= 3, 2.0, every=0.01)
    finally:
        loop.stop(1.0)


def test_stop_waits_five_seconds_for_the_loop_thread_by_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[float] = []

    def join(self: Service, timeout: float) -> bool:  # the thread's bound, as Service gets it
        given.append(timeout)
        return True

    monkeypatch.setattr(Service, "stop", join)
    assert Loop().stop() and given == [5.0]
