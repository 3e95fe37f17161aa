"""Supervision of the shared stage threads (analyzer, publisher, reconciler, jobs, ...).

One thread checks every stage each ``interval_s``: a stage whose thread died is restarted
after a backoff that doubles with each recent restart, within a budget of
``max_restarts`` per ``window_s``; past the budget it stays down and ``on_give_up`` is
called once (what the daemon does then is its table, ``daemon.core._ON_GIVE_UP``). A
stage that is alive but has not beaten for ``stuck_after_s`` is reported stuck.
:meth:`Supervisor.report` is what ``/health`` shows.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from streamproc.lifecycle import Service
from streamproc.metrics import StageMetrics

logger = logging.getLogger(__name__)
HEALTHY = frozenset({"ok", "busy"})


@dataclass(frozen=True)
class RestartPolicy:
    """How often a stage may be restarted, and how long to wait before each restart."""

    max_restarts: int = 5
    window_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    stuck_after_s: float = 30.0


class RestartBudget:
    """Restarts within a sliding time window (frigate's watchdog, mode's supervisors)."""

    def __init__(self, max_restarts: int, window_s: float) -> None:
        self._max = max_restarts
        self._window = window_s
        self._times: deque[float] = deque()

    def recent(self, now: float) -> int:
        """Restarts inside the window ending at ``now``."""
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()
        return len(self._times)

    def allow(self, now: float) -> bool:
        """Record a restart at ``now`` if the budget has room; False when spent."""
        if self.recent(now) >= self._max:
            return False
        self._times.append(now)
        return True


@dataclass
class _Stage:
    service: Service
    budget: RestartBudget
    restarts: int = 0
    gave_up: bool = False
    restart_at: float | None = None
    last_error: str = ""
    died_at: float = field(default=0.0)


class Supervisor(Service):
    """Restarts dead stages within a budget and reports their health."""

    def __init__(self, policy: RestartPolicy,
                 on_give_up: Callable[[str, str], None] = lambda name, reason: None,
                 interval_s: float = 0.25, metrics: StageMetrics | None = None) -> None:
        super().__init__("supervisor")
        self._metrics = metrics
        self._policy = policy
        self._on_give_up = on_give_up
        self._interval = interval_s
        self._stages: dict[str, _Stage] = {}

    def watch(self, service: Service) -> None:
        """Supervise ``service`` (register before :meth:`start`)."""
        budget = RestartBudget(self._policy.max_restarts, self._policy.window_s)
        self._stages[service.name] = _Stage(service, budget)

    def _run(self) -> None:
        while not self.wait(self._interval):
            self.beat()
            for name, stage in self._stages.items():
                self.check(name, stage, time.monotonic())
            self._export()

    def _export(self) -> None:
        if self._metrics is None:
            return
        for name, state in self.report().items():
            self._metrics.up.labels(name).set(1 if state["state"] in HEALTHY else 0)

    def check(self, name: str, stage: _Stage, now: float) -> None:
        """One supervision step for one stage (public for tests with a manual clock)."""
        service = stage.service
        if service.running or service.stopping or stage.gave_up or not service.started:
            return
        if stage.restart_at is None:
            stage.last_error = repr(service.error) if service.error else "thread ended"
            stage.died_at = now
            recent = stage.budget.recent(now)
            if not stage.budget.allow(now):
                stage.gave_up = True
                reason = (f"{name} stage failed {recent + 1} times in "
                          f"{self._policy.window_s:.0f} s: {stage.last_error}")
                logger.critical("%s; not restarting it", reason)
                self._on_give_up(name, reason)
                return
            delay = min(self._policy.backoff_max_s,
                        self._policy.backoff_initial_s * 2 ** recent)
            stage.restart_at = now + delay
            logger.error("%s stage died (%s); restarting in %.1fs", name, stage.last_error,
                         delay)
        if now >= stage.restart_at:
            stage.restart_at = None
            stage.restarts += 1
            try:
                service.start()
            except Exception as exc:  # e.g. a client that cannot reach its broker yet
                stage.last_error = repr(exc)
                logger.error("restarting the %s stage failed: %r", name, exc)
            if self._metrics is not None:
                self._metrics.restarts.labels(name).inc()

    def report(self) -> dict[str, dict[str, object]]:
        """Each stage's state for /health (only ok and busy count as healthy).

        ok, busy, restarting, stuck, failed, stopping (asked to stop) or not started.
        """
        now = time.monotonic()
        out: dict[str, dict[str, object]] = {}
        for name, stage in self._stages.items():
            service = stage.service
            idle = now - service.last_beat
            if stage.gave_up:
                state = "failed"
            elif not service.running:
                state = ("stopping" if service.stopping else
                         "restarting" if service.started else "not started")
            elif service.busy is not None:
                state = "busy"
            elif idle > self._policy.stuck_after_s:
                state = "stuck"
            else:
                state = "ok"
            out[name] = {"state": state, "alive": service.running, "busy": service.busy,
                         "seconds_since_progress": round(idle, 3),
                         "restarts": stage.restarts, "last_error": stage.last_error}
        return out
