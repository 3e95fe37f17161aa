"""The reconciler: one loop per daemon that owns every running processor.

API calls only record what the user wants (a processor's desired state and definition)
and post to the :class:`~streamproc.processors.mailbox.Mailbox`. This loop, on its own
thread, compares what should run with what runs and starts, stops, updates or restarts
data-plane sessions. Failures (a source that gave up, a deleted collection, a destination
down too long, a reader that crashed, a stage that gave up) are events handed to it, never
teardown run on the thread that noticed them. Halting a session never blocks the loop: the
reader is asked to stop and checked on later turns, and one stuck in a read is abandoned
after ``stop_timeout_s``, so a blocked source cannot stall the other streams.

``placement`` decides which processors this node should run (all of them on a single node;
the cluster's group membership decides otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from streamproc.dataplane.session import Output, Session, SessionEvents, SessionPlan
from streamproc.errors import StreamprocError
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor
from streamproc.processors.kinds import ProcessorKind
from streamproc.processors.mailbox import Events, Mailbox, MailboxEvents
from streamproc.processors.registry import Desired, Entry, ProcessorRegistry
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.state import ProcessorStatus
from streamproc.processors.urls import KVS_ARN, output_target, redact, stream_name
from streamproc.search.searcher import CollectionNotFound
from streamproc.supervisor import RestartBudget

logger = logging.getLogger(__name__)
S = ProcessorStatus
ACTIVE = frozenset({S.STARTING, S.RUNNING})


class Runtime(Protocol):
    """What the reconciler drives: the data plane, or a fake in tests."""

    def launch(self, plan: SessionPlan, sensor: ProcessorSensor,
               events: SessionEvents) -> Session:
        """Start a session."""

    def begin_halt(self, session: Session) -> None:
        """Ask a session to end; returns at once."""

    def halted(self, session: Session) -> bool:
        """True once the session's threads have finished."""

    def abandon(self, session: Session) -> None:
        """Give up waiting for a session that did not finish in time."""


@dataclass(frozen=True)
class ReconcilerSettings:
    """Timeouts, defaults and budgets the loop applies."""

    stop_timeout_s: float = 2.0
    tick_s: float = 0.5
    video_streams: dict[str, str] = field(default_factory=dict)
    default_destination: str | None = None
    frame_queue: int = 2
    max_restarts: int = 5  # crashed readers restarted per processor within restart_window_s
    restart_window_s: float = 60.0
    restart_delay_s: float = 0.5


@dataclass(frozen=True)
class Hooks:
    """What the loop needs from the rest of the daemon."""

    sensor: Callable[[str], ProcessorSensor]
    emit_mode: Callable[[ProcessorSpec], str]
    save_desired: Callable[[str, Desired], None]
    placement: Callable[[str], bool] = lambda name: True


@dataclass
class _Run:
    session: Session
    session_id: str
    generation: int
    version: int


@dataclass
class _Halt:
    session: Session
    name: str
    deadline: float


class Reconciler(Service):
    """Makes running sessions match the registry's desired states."""

    def __init__(self, registry: ProcessorRegistry, runtime: Runtime,
                 kinds: dict[str, ProcessorKind], mailbox: Mailbox,
                 settings: ReconcilerSettings, hooks: Hooks) -> None:
        super().__init__("reconciler")
        self._registry = registry
        self._runtime = runtime
        self._kinds = kinds
        self._mailbox = mailbox
        self._events = MailboxEvents(mailbox)
        self._settings = settings
        self._hooks = hooks
        # Owned by the loop's thread (and by stop() once the loop has ended).
        self._runs: dict[str, _Run] = {}
        self._halts: list[_Halt] = []
        self._budgets: dict[str, RestartBudget] = {}
        self._retry_at: dict[str, float] = {}
        self._generation = 0

    # ---- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            self._mailbox.wake.wait(0.05 if self._halts else self._settings.tick_s)
            if not self.stopping:
                self.reconcile_once()

    def reconcile_once(self) -> None:
        """One turn: apply events, converge every processor, finish halts."""
        self._apply(self._mailbox.take())
        for entry in self._registry.entries():
            self._converge(entry)
        for name in [n for n in self._runs if self._registry.get(n) is None]:
            self._halt(name)  # deleted under a run (cannot happen via the API; be safe)
        self._finish_halts()

    def running_names(self) -> list[str]:
        """Processors with a live session here (for /health and tests)."""
        return sorted(self._runs)

    def _converge(self, entry: Entry) -> None:
        name = entry.spec.name
        run = self._runs.get(name)
        want = (entry.desired is Desired.RUNNING and entry.state.status in ACTIVE
                and self._hooks.placement(name))
        if run is not None and (not want or run.session_id != entry.session_id):
            self._halt(name)
            run = None
        if want and run is None:
            if time.monotonic() >= self._retry_at.get(name, 0.0):
                self._launch(entry)
        elif run is not None and run.version != entry.version:
            run.session.regions = tuple(entry.spec.regions)
            run.version = entry.version
        self._settle_stopping(entry)

    def _settle_stopping(self, entry: Entry) -> None:
        name = entry.spec.name
        if name not in self._runs and not any(h.name == name for h in self._halts):
            entry.state.change_if(frozenset({S.STOPPING}), S.STOPPED)

    # ---- launching ----------------------------------------------------------------------
    def _launch(self, entry: Entry) -> None:
        spec = entry.spec
        self._generation += 1
        try:
            plan = self._plan(spec, self._generation)
        except CollectionNotFound:
            self._fail(entry, "Collection not found")
            return
        except StreamprocError as exc:
            self._fail(entry, exc.message)
            return
        session = self._runtime.launch(plan, self._hooks.sensor(spec.name), self._events)
        self._runs[spec.name] = _Run(session, entry.session_id, self._generation,
                                     entry.version)
        logger.info("processor %s: session launched on %s", spec.name, plan.url_shown)

    def _plan(self, spec: ProcessorSpec, generation: int) -> SessionPlan:
        url = self._input_url(spec)
        resolved = self._kinds[spec.kind].resolve(spec)
        target = output_target(spec.output_arn)
        destination = (target.bootstrap if target else None) or \
            self._settings.default_destination
        if target is None or destination is None:
            raise StreamprocError(f"No Kafka cluster for output {redact(spec.output_arn)}")
        return SessionPlan(
            name=spec.name, generation=generation, kind=spec.kind, url=url,
            url_shown=redact(url), stream_arn=redact(spec.input_arn),
            collection=resolved.collection, threshold=resolved.threshold,
            output=Output(destination, target.topic), emit=self._hooks.emit_mode(spec),
            regions=tuple(spec.regions), frame_queue=self._settings.frame_queue)

    def _input_url(self, spec: ProcessorSpec) -> str:
        if not KVS_ARN.match(spec.input_arn):
            return spec.input_arn
        streams = self._settings.video_streams
        url = streams.get(spec.input_arn) or streams.get(stream_name(spec.input_arn))
        if url is None:
            raise StreamprocError(f"Stream {stream_name(spec.input_arn)} doesn't exist")
        return url

    # ---- failures and events --------------------------------------------------------------
    def _apply(self, events: Events) -> None:
        for name, generation in events.running.items():
            run = self._current(name, generation)
            entry = self._registry.get(name)
            if run is not None and entry is not None:
                entry.state.change_if(frozenset({S.STARTING}), S.RUNNING)
        for name, (generation, reason) in events.failed.items():
            self._fail_run(name, generation, reason)
        for name, (generation, error) in events.crashed.items():
            self._crashed(name, generation, error)
        for destination, message in events.outages.items():
            self._show_outage(destination, message)
        for destination, message in events.unreachable.items():
            self._fail_where(lambda r, d=destination: r.session.plan.output.destination == d,
                             message)
        for collection_id in events.collections_gone:
            self._fail_where(
                lambda r, c=collection_id: r.session.plan.collection.collection_id == c,
                "Collection not found")
        if events.fail_all is not None:
            self._fail_where(lambda r: True, events.fail_all)

    def _current(self, name: str, generation: int) -> _Run | None:
        run = self._runs.get(name)
        return run if run is not None and run.generation == generation else None

    def _fail_run(self, name: str, generation: int, reason: str) -> None:
        entry = self._registry.get(name)
        if self._current(name, generation) is not None and entry is not None:
            self._fail(entry, reason)

    def _fail_where(self, match: Callable[[_Run], bool], reason: str) -> None:
        for name, run in list(self._runs.items()):
            entry = self._registry.get(name)
            if match(run) and entry is not None:
                self._fail(entry, reason)

    def _fail(self, entry: Entry, reason: str) -> None:
        """FAILED with ``reason``; it stays down until started again (desired: STOPPED)."""
        name = entry.spec.name
        with entry.state.lock:
            if entry.state.change_if(ACTIVE, S.FAILED, reason):
                entry.desired = Desired.STOPPED
                self._hooks.save_desired(name, Desired.STOPPED)
        if name in self._runs:
            self._halt(name)

    def _crashed(self, name: str, generation: int, error: str) -> None:
        entry = self._registry.get(name)
        if self._current(name, generation) is None or entry is None:
            return
        budget = self._budgets.setdefault(name, RestartBudget(
            self._settings.max_restarts, self._settings.restart_window_s))
        if budget.allow(time.monotonic()):
            logger.error("processor %s: its reader crashed (%s); restarting it", name, error)
            self._hooks.sensor(name).restarted()
            self._halt(name)
            self._retry_at[name] = time.monotonic() + self._settings.restart_delay_s
            return
        self._fail(entry, f"Source reader crashed {self._settings.max_restarts + 1} times "
                          f"within {self._settings.restart_window_s:.0f} s: {error}")

    def _show_outage(self, destination: str, message: str | None) -> None:
        for name, run in list(self._runs.items()):
            entry = self._registry.get(name)
            if entry is not None and run.session.plan.output.destination == destination:
                entry.state.change_if(frozenset({S.RUNNING}), S.RUNNING, message or "")

    # ---- halting ----------------------------------------------------------------------------
    def _halt(self, name: str) -> None:
        run = self._runs.pop(name, None)
        if run is None:
            return
        self._runtime.begin_halt(run.session)
        deadline = time.monotonic() + self._settings.stop_timeout_s
        self._halts.append(_Halt(run.session, name, deadline))

    def _finish_halts(self) -> None:
        if not self._halts:
            return
        now, pending, done = time.monotonic(), [], set()
        for halt in self._halts:
            if self._runtime.halted(halt.session):
                done.add(halt.name)
            elif now >= halt.deadline:
                self._runtime.abandon(halt.session)
                done.add(halt.name)
            else:
                pending.append(halt)
        self._halts = pending
        for name in done:
            entry = self._registry.get(name)
            if entry is not None:
                self._settle_stopping(entry)

    def stop(self, timeout: float = 5.0) -> bool:
        """End the loop, then halt every session, keeping desired states for the next start."""
        stopped = super().stop(timeout)
        for name in list(self._runs):
            self._halt(name)
        deadline = time.monotonic() + self._settings.stop_timeout_s
        while self._halts and time.monotonic() < deadline:
            self._finish_halts()
            time.sleep(0.02)
        for halt in self._halts:
            self._runtime.abandon(halt.session)
        self._halts = []
        return stopped
