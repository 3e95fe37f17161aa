"""The reconciler: one loop per daemon that owns every running processor.

API calls only record what the user wants (a processor's desired state and definition)
and post to the :class:`~streamproc.processors.mailbox.Mailbox`. This loop, on its own
thread, compares what should run with what runs and starts, stops, updates or restarts
data-plane sessions. Failures (a source that gave up, a deleted collection, a destination
down too long, a session that crashed, a stage that gave up) are never teardown run on the
thread that noticed them: sessions keep their own end state, and other events become state
the loop keeps (:class:`~streamproc.processors.conditions.NodeConditions`) and checks on
every turn, so an event is never lost and a later launch cannot slip past it. Halting a
session never blocks the loop: the reader is asked to stop and checked on later turns, and
one stuck in a read is abandoned after ``stop_timeout_s``, so a blocked source cannot stall
the other streams (:class:`~streamproc.controlloop.ControlLoop` owns the wait, the halts
and the bounded stop). A problem with one processor (even a bug) fails that processor only.
What the loop keeps about each processor is one record,
:class:`~streamproc.processors.runs.ProcessorSlot`; what the whole node knows, another.

``placement`` decides which processors this node should run (all of them on a single node;
the cluster's group membership decides otherwise). The loop changes no status itself: it
posts reports (first frame, failure, stopped, outage message) and claims (this node runs
it now) to the ledger, whose rules apply them on every node; until a report shows up in
the state, the loop acts on what it reported (a failed Start is not launched again) and
posts it again after ``repost_s`` (:mod:`streamproc.processors.reports`). In cluster
mode, a processor moved from one live node to another starts on the new one once the old
one has released it, or left, or after ``handover_wait_s``
(:mod:`streamproc.processors.handover`).
"""

from __future__ import annotations

import logging
import time

from streamproc.controlloop import ControlLoop, Halts
from streamproc.dataplane.live.session import EndKind, Session
from streamproc.errors import StreamprocError
from streamproc.ledger import Ledger
from streamproc.processors.commands import Report
from streamproc.processors.conditions import NodeConditions
from streamproc.processors.handover import Handover
from streamproc.processors.kinds import ProcessorKind
from streamproc.processors.mailbox import Mailbox, MailboxEvents
from streamproc.processors.plans import Planner
from streamproc.processors.registry import Desired, Entry, ProcessorRegistry
from streamproc.processors.reports import Reports
from streamproc.processors.runs import PendingFailure, ProcessorSlot, ProcessorSlots, Run
from streamproc.processors.settings import Hooks, ReconcilerSettings, Runtime
from streamproc.processors.state import ProcessorStatus
from streamproc.search.searcher import CollectionNotFound

__all__ = ["Hooks", "Reconciler", "ReconcilerSettings", "Runtime"]

logger = logging.getLogger(__name__)
S = ProcessorStatus
ACTIVE = frozenset({S.STARTING, S.RUNNING})


class Reconciler(ControlLoop[Session]):
    """Makes running sessions match the registry's desired states."""

    def __init__(self, registry: ProcessorRegistry, runtime: Runtime,
                 kinds: dict[str, ProcessorKind], mailbox: Mailbox, ledger: Ledger,
                 settings: ReconcilerSettings, hooks: Hooks) -> None:
        super().__init__("reconciler", mailbox.wake, settings.tick_s,
                         Halts(runtime, settings.stop_timeout_s))
        self._ledger = ledger
        self._registry = registry
        self._runtime = runtime
        self._mailbox = mailbox
        self._events = MailboxEvents(mailbox)
        self._settings = settings
        self._hooks = hooks
        self._planner = Planner(kinds, settings)
        self._reports = Reports(ledger, settings.repost_s)
        self._handover = Handover(ledger.node_id, settings.handover_wait_s, self._reports)
        # Owned by the loop's thread (and by stop() once the loop has ended).
        self._slots = ProcessorSlots()
        self._conditions = NodeConditions()
        self._generation = 0
        # What other threads may read: a fresh tuple after every turn (swapped, never changed).
        self._running: tuple[str, ...] = ()

    # ---- the loop ---------------------------------------------------------------------
    def reconcile_once(self) -> None:
        """One turn: take events, converge every processor, finish halts."""
        self._conditions.note(self._mailbox.take(), self._slots.collections())
        names: set[str] = set()
        for entry in self._registry.entries():
            names.add(entry.spec.name)
            try:
                self._converge(entry, self._slots.of(entry.spec.name))
            except Exception as exc:
                self._contain(entry, exc)
        for slot in self._slots.others(names):
            self._halt(slot)  # deleted under a run (cannot happen via the API; be safe)
            self._slots.drop(slot.name)
        self._finish_halts()
        self._running = tuple(sorted({*self._slots.running(), *self.halts.keys()}))

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
            self._fail(entry, self._slots.of(entry.spec.name),
                       f"Internal error: {type(exc).__name__}: {exc}")
        except Exception:
            logger.exception("processor %s: could not record the failure; retrying",
                             entry.spec.name)

    def _converge(self, entry: Entry, slot: ProcessorSlot) -> None:
        if slot.failing is not None:
            self._record_failure(entry, slot)
        if slot.run is not None:
            self._observe(entry, slot, slot.run)
        run, want = slot.run, self._wants(entry, slot)
        if run is not None and (not want or run.session_id != entry.session_id):
            self._halt(slot)
            run = None
        if not want or run is not None:
            slot.waiting = None  # a wait counts only while it lasts unbroken
        if want and run is None:
            if time.monotonic() >= slot.retry_at and \
                    self._handover.may_start(entry, slot, self._hooks.members()):
                self._launch(entry, slot)
        elif run is not None and run.version != entry.version:
            run.session.regions = tuple(entry.spec.regions)
            run.version = entry.version
        self._settle_stopping(entry, slot)
        self._release_if_idle(entry, slot, want)

    def _wants(self, entry: Entry, slot: ProcessorSlot) -> bool:
        """Whether this node should run the processor now."""
        return (entry.desired is Desired.RUNNING and entry.state.status in ACTIVE
                and self._hooks.placement(entry.spec.name) and slot.failing is None)

    def _observe(self, entry: Entry, slot: ProcessorSlot, run: Run) -> None:
        """Apply what the session and the events kept in state say about a running one."""
        if self._hooks.placement(entry.spec.name):  # not a run about to be halted here
            self._claim(entry, slot)  # until the log says this node runs it (claims can get lost)
        session, plan, ended = run.session, run.session.plan, run.session.ended
        if ended is not None:
            if ended.kind is EndKind.CRASHED:
                self._crashed(entry, slot, run, ended.reason)
            else:
                self._fail(entry, slot, ended.reason)
            return
        blocked = self._conditions.blocked(plan)
        if blocked is not None:
            self._fail(entry, slot, blocked)
            return
        if session.running and entry.state.status is S.STARTING:
            self._reports.report(entry, slot.posted, Report.RUNNING)
        message = self._conditions.outage(plan.output.destination)
        if entry.state.status is S.RUNNING and entry.state.message != message:
            self._reports.report(entry, slot.posted, Report.MESSAGE, message)

    def _settle_stopping(self, entry: Entry, slot: ProcessorSlot) -> None:
        name = entry.spec.name
        if entry.state.status is S.STOPPING and slot.run is None and \
                not self.halts.holds(name) and self._hooks.placement(name):
            self._claim(entry, slot)  # the node that ran it may be gone: this one answers for it
            self._reports.report(entry, slot.posted, Report.STOPPED)

    def _claim(self, entry: Entry, slot: ProcessorSlot) -> None:
        # Also when the state still names this node but its latest word was a release
        # (not applied yet when it launched again): the release would clear the owner.
        if entry.owner != self._ledger.node_id or self._reports.released_last(slot.posted):
            self._reports.claim(entry, slot.posted)

    # ---- launching ----------------------------------------------------------------------
    def _launch(self, entry: Entry, slot: ProcessorSlot) -> None:
        spec = entry.spec
        self._generation += 1
        try:
            plan = self._planner.plan(spec, self._generation, self._hooks.emit_mode)
        except CollectionNotFound:
            self._fail(entry, slot, "Collection not found")
            return
        except StreamprocError as exc:
            self._fail(entry, slot, exc.message)
            return
        blocked = self._conditions.blocked(plan)
        if blocked is not None:
            self._fail(entry, slot, blocked)
            return
        session = self._runtime.launch(plan, self._hooks.sensor(spec.name), self._events)
        slot.run = Run(session, entry.session_id, entry.version)
        self._claim(entry, slot)
        if entry.state.status is S.RUNNING:
            self._reports.report(entry, slot.posted, Report.STARTING)  # until a frame decodes
        logger.info("processor %s: session launched on %s", spec.name, plan.url_shown)

    # ---- failures ---------------------------------------------------------------------------
    def _fail(self, entry: Entry, slot: ProcessorSlot, reason: str) -> None:
        """Stop producing now; FAILED with ``reason``; down until started again.

        The failure is kept until it is recorded (retried on later turns if recording
        raises), and nothing is launched for that Start meanwhile.
        """
        self._halt(slot)
        slot.failing = PendingFailure(entry.session_id, reason)
        self._record_failure(entry, slot)

    def _record_failure(self, entry: Entry, slot: ProcessorSlot) -> None:
        """Report a pending failure; pending until the state shows it (or Stop/Start won)."""
        failing = slot.failing
        if failing is None:
            return
        ours = failing.session_id == entry.session_id and entry.state.status in ACTIVE
        if ours:
            self._reports.report(entry, slot.posted, Report.FAILED, failing.reason)
        else:
            slot.failing = None

    def _crashed(self, entry: Entry, slot: ProcessorSlot, run: Run, error: str) -> None:
        name, settings = entry.spec.name, self._settings
        budget = slot.budget_for(run.session_id, settings.max_restarts,
                                 settings.restart_window_s)
        if budget.allow(time.monotonic()):
            logger.error("processor %s: %s; restarting it", name, error)
            self._hooks.sensor(name).restarted()
            self._halt(slot)
            slot.retry_at = time.monotonic() + settings.restart_delay_s
            return
        self._fail(entry, slot, f"Processing crashed {settings.max_restarts + 1} times "
                                f"within {settings.restart_window_s:.0f} s: {error}")

    # ---- halting ----------------------------------------------------------------------------
    def _halt(self, slot: ProcessorSlot) -> None:
        run, slot.run = slot.run, None
        if run is not None:
            self.halts.begin(slot.name, run.session)

    def _halt_all(self) -> None:
        for slot in self._slots.runs():
            self._halt(slot)

    def _halts_over(self, keys: set[str]) -> None:
        for name in keys:
            entry = self._registry.get(name)
            if entry is not None:
                slot = self._slots.of(name)
                self._settle_stopping(entry, slot)
                self._release_if_idle(entry, slot, self._wants(entry, slot))

    def _release_if_idle(self, entry: Entry, slot: ProcessorSlot, want: bool) -> None:
        """Release a processor this node owned and no longer wants, runs or halts."""
        if want or slot.run is not None or self.halts.holds(entry.spec.name):
            return
        self._handover.release(entry, slot, self._hooks.members())
