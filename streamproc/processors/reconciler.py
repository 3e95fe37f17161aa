"""The reconciler: one loop per daemon that owns every running processor.

API calls only record what the user wants (a processor's desired state and definition)
and post to the :class:`~streamproc.processors.mailbox.Mailbox`. This loop, on its own
thread, compares what should run with what runs and starts, stops, updates or restarts
data-plane sessions. Failures (a source that gave up, a deleted collection, a destination
down too long, a session that crashed, a stage that gave up) are never teardown run on the
thread that noticed them: sessions keep their own end state, and other events become state
the loop keeps (blocked destinations, deleted collections, a dead stage) and checks on
every turn, so an event is never lost and a later launch cannot slip past it. Halting a
session never blocks the loop: the reader is asked to stop and checked on later turns, and
one stuck in a read is abandoned after ``stop_timeout_s``, so a blocked source cannot stall
the other streams. A problem with one processor (even a bug) fails that processor only.

``placement`` decides which processors this node should run (all of them on a single node;
the cluster's group membership decides otherwise). The loop changes no status itself: it
posts reports (first frame, failure, stopped, outage message) and claims (this node runs
it now) to the ledger, whose rules apply them on every node; until a report shows up in
the state, the loop acts on what it reported (a failed Start is not launched again) and
posts it again after ``repost_s``.

Handover (cluster mode): a processor that the placement moves from one live node to another
is started by the new node only once the old one has released it (a ``processor.release``
command, posted when its halt is over), or once the old node has left the member list, or
after ``handover_wait_s`` (the longest the old node can keep running it without hearing
the group: the fencing allowance plus the stop timeout). So two nodes do not run it at
once even when the old node learns of the move late (a rejoin that took a while).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from streamproc.dataplane.outputs import OutputAllowlist, OutputRefused
from streamproc.dataplane.session import Output, Session, SessionEvents, SessionPlan
from streamproc.errors import StreamprocError
from streamproc.ledger import Ledger
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor
from streamproc.processors.kinds import ProcessorKind
from streamproc.processors.mailbox import Events, Mailbox, MailboxEvents
from streamproc.processors.registry import Desired, Entry, ProcessorRegistry
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.state import ProcessorStatus
from streamproc.processors.urls import KVS_ARN, destination_of, redact, stream_name
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
    max_restarts: int = 5  # crashed sessions restarted per Start within restart_window_s
    restart_window_s: float = 60.0
    restart_delay_s: float = 0.5
    repost_s: float = 5.0  # a report not yet seen in the state is posted again after this
    handover_wait_s: float = 0.0  # longest wait for a live node to release a processor
    # Judged at every launch too: a processor started before the rule (or its settings)
    # changed is relaunched after a restart without passing StartStreamProcessor again.
    outputs: OutputAllowlist | None = None


@dataclass(frozen=True)
class Hooks:
    """What the loop needs from the rest of the daemon."""

    sensor: Callable[[str], ProcessorSensor]
    emit_mode: Callable[[ProcessorSpec], str]
    placement: Callable[[str], bool] = lambda name: True
    # The cluster's live node ids (None: a single node, which hands nothing over).
    members: Callable[[], set[str] | None] = lambda: None


@dataclass
class _Run:
    session: Session
    session_id: str
    version: int


@dataclass
class _Halt:
    session: Session
    name: str
    deadline: float


@dataclass
class _Budget:
    session_id: str
    budget: RestartBudget


class Reconciler(Service):
    """Makes running sessions match the registry's desired states."""

    def __init__(self, registry: ProcessorRegistry, runtime: Runtime,
                 kinds: dict[str, ProcessorKind], mailbox: Mailbox, ledger: Ledger,
                 settings: ReconcilerSettings, hooks: Hooks) -> None:
        super().__init__("reconciler")
        self._ledger = ledger
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
        self._budgets: dict[str, _Budget] = {}
        self._retry_at: dict[str, float] = {}
        self._failing: dict[str, tuple[str, str]] = {}  # name -> (session_id, reason)
        self._outages: dict[str, str] = {}  # destination -> StatusMessage while it is down
        self._unreachable: dict[str, str] = {}  # destination -> reason, until it is back
        self._gone: set[tuple[str, float]] = set()  # deleted collections (id, created)
        self._stage_down: str | None = None  # a vital stage gave up: no session can work
        self._posted: dict[tuple[str, str], tuple[str, str, float]] = {}
        # name -> (owner, session_id, since when): waiting for that owner's release.
        self._waiting: dict[str, tuple[str, str, float]] = {}
        self._generation = 0
        # What other threads may read: a fresh tuple after every turn (swapped, never changed).
        self._running: tuple[str, ...] = ()

    # ---- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            self._mailbox.wake.wait(0.05 if self._halts else self._settings.tick_s)
            if not self.stopping:
                self.reconcile_once()

    def reconcile_once(self) -> None:
        """One turn: take events, converge every processor, finish halts."""
        self._note(self._mailbox.take())
        names = set()
        for entry in self._registry.entries():
            names.add(entry.spec.name)
            try:
                self._converge(entry)
            except Exception as exc:
                self._contain(entry, exc)
        for name in [n for n in self._runs if n not in names]:
            self._halt(name)  # deleted under a run (cannot happen via the API; be safe)
        for table in (self._budgets, self._retry_at, self._failing, self._waiting):
            for name in [n for n in table if n not in names]:
                del table[name]
        for key in [k for k in self._posted if k[0] not in names]:
            del self._posted[key]
        self._finish_halts()
        self._running = tuple(sorted({*self._runs, *(h.name for h in self._halts)}))

    def running_names(self) -> list[str]:
        """Processors with a session here, running or still halting, as of the last turn.

        Any thread may call it: it reads the tuple the loop publishes after each turn, never
        the loop's own tables.
        """
        return list(self._running)

    def _contain(self, entry: Entry, exc: Exception) -> None:
        """A bug or an I/O error while handling one processor fails that processor only."""
        logger.error("processor %s: reconciling failed", entry.spec.name, exc_info=exc)
        try:
            self._fail(entry, f"Internal error: {type(exc).__name__}: {exc}")
        except Exception:
            logger.exception("processor %s: could not record the failure; retrying",
                             entry.spec.name)

    def _note(self, events: Events) -> None:
        for destination, message in events.outages.items():
            if message is None:
                self._outages.pop(destination, None)
                self._unreachable.pop(destination, None)
            else:
                self._outages[destination] = message
        self._unreachable.update(events.unreachable)
        self._gone |= events.collections_gone
        if events.fail_all is not None:
            self._stage_down = events.fail_all
        live = {(r.session.plan.collection.collection_id, r.session.plan.collection.created)
                for r in self._runs.values()}
        self._gone &= live  # only deletions that still concern a run matter

    def _converge(self, entry: Entry) -> None:
        name = entry.spec.name
        if name in self._failing:
            self._record_failure(entry)
        run = self._runs.get(name)
        if run is not None:
            self._observe(entry, run)
            run = self._runs.get(name)
        want = self._wants(entry)
        if run is not None and (not want or run.session_id != entry.session_id):
            self._halt(name)
            run = None
        if not want or run is not None:
            self._waiting.pop(name, None)  # a wait counts only while it lasts unbroken
        if want and run is None:
            if time.monotonic() >= self._retry_at.get(name, 0.0) and self._handed_over(entry):
                self._launch(entry)
        elif run is not None and run.version != entry.version:
            run.session.regions = tuple(entry.spec.regions)
            run.version = entry.version
        self._settle_stopping(entry)
        self._release_if_idle(entry, want)

    def _wants(self, entry: Entry) -> bool:
        """Whether this node should run the processor now."""
        return (entry.desired is Desired.RUNNING and entry.state.status in ACTIVE
                and self._hooks.placement(entry.spec.name)
                and entry.spec.name not in self._failing)

    def _handed_over(self, entry: Entry) -> bool:
        """Nobody else may still run it: released, never run, ours, or its node is gone."""
        name, members = entry.spec.name, self._hooks.members()
        owner = entry.owner
        if members is None or owner in ("", self._ledger.node_id) or owner not in members:
            self._waiting.pop(name, None)
            return True
        # The wait is for this owner's release of this Start: a new owner or Start waits anew.
        key = (owner, entry.session_id)
        waited = self._waiting.get(name)
        if waited is None or waited[:2] != key:
            waited = self._waiting[name] = (*key, time.monotonic())
        if time.monotonic() - waited[2] < self._settings.handover_wait_s:
            return False
        logger.warning("processor %s: %s did not release it within %.0f s; starting it here",
                       name, owner, self._settings.handover_wait_s)
        self._waiting.pop(name, None)
        return True

    def _observe(self, entry: Entry, run: _Run) -> None:
        """Apply what the session and the events kept in state say about a running one."""
        if self._hooks.placement(entry.spec.name):  # not a run about to be halted here
            self._claim(entry)  # until the log says this node runs it (claims can get lost)
        session, plan = run.session, run.session.plan
        if session.ended is not None:
            kind, text = session.ended
            if kind == "crashed":
                self._crashed(entry, run, text)
            else:
                self._fail(entry, text)
            return
        blocked = self._blocked(plan)
        if blocked is not None:
            self._fail(entry, blocked)
            return
        if session.running and entry.state.status is S.STARTING:
            self._report(entry, "running")
        message = self._outages.get(plan.output.destination, "")
        if entry.state.status is S.RUNNING and entry.state.message != message:
            self._report(entry, "message", message)

    def _blocked(self, plan: SessionPlan) -> str | None:
        """Why a session with this plan cannot work now, if it cannot."""
        if self._stage_down is not None:
            return self._stage_down
        if plan.output.destination in self._unreachable:
            return self._unreachable[plan.output.destination]
        if (plan.collection.collection_id, plan.collection.created) in self._gone:
            return "Collection not found"
        return None

    def _settle_stopping(self, entry: Entry) -> None:
        name = entry.spec.name
        if entry.state.status is S.STOPPING and name not in self._runs and \
                not any(h.name == name for h in self._halts) and self._hooks.placement(name):
            self._claim(entry)  # the node that ran it may be gone: this one answers for it
            self._report(entry, "stopped")

    def _claim(self, entry: Entry) -> None:
        # Also when the state still names this node but its latest word was a release
        # (not applied yet when it launched again): the release would clear the owner.
        if entry.owner != self._ledger.node_id or (entry.spec.name, "release") in self._posted:
            self._report(entry, "claim")

    def _report(self, entry: Entry, event: str, message: str = "") -> None:
        """Post a status report for the current Start (again only after ``repost_s``)."""
        name, now = entry.spec.name, time.monotonic()
        last = self._posted.get((name, event))
        if last is not None and last[:2] == (entry.session_id, message) and \
                now - last[2] < self._settings.repost_s:
            return
        self._posted[(name, event)] = (entry.session_id, message, now)
        if event in ("claim", "release"):
            # The latest of the two is what this node says: the other is not repeated, and
            # saying it again later is not held back by the de-duplication.
            self._posted.pop((name, "release" if event == "claim" else "claim"), None)
            self._ledger.post(f"processor.{event}", {"name": name,
                                                     "session_id": entry.session_id})
            return
        self._ledger.post("processor.report", {"name": name, "session_id": entry.session_id,
                                               "event": event, "message": message})

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
        blocked = self._blocked(plan)
        if blocked is not None:
            self._fail(entry, blocked)
            return
        session = self._runtime.launch(plan, self._hooks.sensor(spec.name), self._events)
        self._runs[spec.name] = _Run(session, entry.session_id, entry.version)
        self._claim(entry)
        if entry.state.status is S.RUNNING:
            self._report(entry, "starting")  # honest until this launch decodes a frame
        logger.info("processor %s: session launched on %s", spec.name, plan.url_shown)

    def _plan(self, spec: ProcessorSpec, generation: int) -> SessionPlan:
        url = self._input_url(spec)
        resolved = self._kinds[spec.kind].resolve(spec)
        output = destination_of(spec.output_arn, self._settings.default_destination)
        if output is None:
            raise StreamprocError(f"No Kafka cluster for output {redact(spec.output_arn)}")
        destination, topic = output
        if self._settings.outputs is not None:
            try:
                self._settings.outputs.check(destination, topic)
            except OutputRefused as exc:
                raise StreamprocError(
                    f"Output refused by outputs.{exc.rule}: {exc.message}") from None
        return SessionPlan(
            name=spec.name, generation=generation, kind=spec.kind, url=url,
            url_shown=redact(url), stream_arn=redact(spec.input_arn),
            collection=resolved.collection, threshold=resolved.threshold,
            output=Output(destination, topic), emit=self._hooks.emit_mode(spec),
            regions=tuple(spec.regions), frame_queue=self._settings.frame_queue)

    def _input_url(self, spec: ProcessorSpec) -> str:
        if not KVS_ARN.match(spec.input_arn):
            return spec.input_arn
        streams = self._settings.video_streams
        url = streams.get(spec.input_arn) or streams.get(stream_name(spec.input_arn))
        if url is None:
            raise StreamprocError(f"Stream {stream_name(spec.input_arn)} doesn't exist")
        return url

    # ---- failures ---------------------------------------------------------------------------
    def _fail(self, entry: Entry, reason: str) -> None:
        """Stop producing now; FAILED with ``reason``; down until started again.

        The failure is kept until it is recorded (retried on later turns if recording
        raises), and nothing is launched for that Start meanwhile.
        """
        name = entry.spec.name
        self._halt(name)
        self._failing[name] = (entry.session_id, reason)
        self._record_failure(entry)

    def _record_failure(self, entry: Entry) -> None:
        """Report a pending failure; pending until the state shows it (or Stop/Start won)."""
        name = entry.spec.name
        session_id, reason = self._failing[name]
        if session_id == entry.session_id and entry.state.status in ACTIVE:
            self._report(entry, "failed", reason)
        if session_id != entry.session_id or entry.state.status not in ACTIVE:
            del self._failing[name]

    def _crashed(self, entry: Entry, run: _Run, error: str) -> None:
        name = entry.spec.name
        kept = self._budgets.get(name)
        if kept is None or kept.session_id != run.session_id:  # a new Start, a new budget
            kept = _Budget(run.session_id, RestartBudget(self._settings.max_restarts,
                                                         self._settings.restart_window_s))
            self._budgets[name] = kept
        if kept.budget.allow(time.monotonic()):
            logger.error("processor %s: %s; restarting it", name, error)
            self._hooks.sensor(name).restarted()
            self._halt(name)
            self._retry_at[name] = time.monotonic() + self._settings.restart_delay_s
            return
        self._fail(entry, f"Processing crashed {self._settings.max_restarts + 1} times "
                          f"within {self._settings.restart_window_s:.0f} s: {error}")

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
                self._release_if_idle(entry, self._wants(entry))

    def _release_if_idle(self, entry: Entry, want: bool) -> None:
        """Say (until the log shows it) that this node no longer runs a processor it owned.

        Then the node it is placed on may start it at once (see the module docstring); also
        after a restart, for what the last run of this node owned.
        """
        name = entry.spec.name
        if want or self._hooks.members() is None or entry.owner != self._ledger.node_id or \
                name in self._runs or any(h.name == name for h in self._halts):
            return
        self._report(entry, "release")

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
