"""The data plane: shared analysis stages, one publisher, one source worker per session.

It runs what its owner asks and nothing else: :meth:`DataPlane.launch` starts a session,
:meth:`DataPlane.begin_halt` ends one without waiting, :meth:`DataPlane.halted` says whether
its reader has finished. Sessions report failures to their owner (``SessionEvents``); the
data plane never changes a processor's status.

:attr:`DataPlane.tap` is the console's tap on what the analysis stage publishes (live feeds,
frame snapshots); it costs the frame path nothing while no one watches, and :meth:`stop`
(or :meth:`close_tap`, earlier) ends every feed open on it.
"""

from __future__ import annotations

import logging
import threading
import time

from streamproc.config import Config
from streamproc.dataplane.analyzer import Analyzer
from streamproc.dataplane.guard.allowlist import InputAllowlist
from streamproc.dataplane.live.session import Session, SessionEvents, SessionPlan
from streamproc.dataplane.live.worker import SourceSettings, SourceWorker
from streamproc.dataplane.output.publish import Publisher
from streamproc.dataplane.output.tap import FeedTap
from streamproc.faces.engine import FaceEngine
from streamproc.lifecycle import Service
from streamproc.metrics import ProcessorSensor
from streamproc.rekognition.constants import FACE_SEARCH
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.spool import Spool

logger = logging.getLogger(__name__)


class DataPlane:
    """Starts and stops the shared stages and each session's source worker."""

    def __init__(self, config: Config, engine: FaceEngine, searcher: FaceSearcher,
                 spool: Spool, publisher: Publisher, inputs: InputAllowlist) -> None:
        self._config = config
        self._inputs = inputs
        self._wake = threading.Event()
        self._spool = spool
        self.publisher = publisher
        p = config.processors
        self.tap = FeedTap(config.console.feed_buffer, config.console.max_feeds,
                           config.console.max_feeds_per_key)
        # One analysis stage per processor kind; face search is the only kind today.
        self.stages: dict[str, Analyzer] = {FACE_SEARCH: Analyzer(
            engine, searcher, self.publisher, p.batch_frames, p.max_matches,
            p.emit_empty_frames, self._wake, p.embed_interval_s, self.tap)}
        # Stages that serve jobs only, behind the live ones (moderation): added at wiring.
        self.background_stages: dict[str, Service] = {}
        self._workers: dict[int, SourceWorker] = {}  # id(session) -> its reader
        self._lock = threading.Lock()  # guards _workers

    @property
    def services(self) -> list[Service]:
        """The shared stage threads, for supervision."""
        return [self.publisher, *self.stages.values(), *self.background_stages.values()]

    def add_background_stage(self, name: str, stage: Service) -> None:
        """At wiring (before :meth:`start`): a jobs-only stage started, supervised, stopped here."""
        self.background_stages[name] = stage

    def live_attached(self) -> bool:
        """Whether any stream processor's session is attached to a stage."""
        return any(stage.live_attached() for stage in self.stages.values())

    def runs_here(self, name: str) -> bool:
        """Whether stream processor ``name`` runs on this node now (its session is attached)."""
        return any(stage.runs(name) for stage in self.stages.values())

    def live_waiting(self) -> bool:
        """Whether a live frame is queued or being analysed (background stages then wait)."""
        return any(stage.live_waiting() for stage in self.stages.values())

    def start(self) -> None:
        """Open the spool, start the publisher, then the stages (downstream first)."""
        self._spool.open()
        self.publisher.load()
        self.publisher.start()
        for stage in self.stages.values():
            stage.start()
        for background in self.background_stages.values():
            background.start()

    def launch(self, plan: SessionPlan, sensor: ProcessorSensor,
               events: SessionEvents) -> Session:
        """Start reading a processor's source into its kind's analysis stage."""
        p = self._config.processors
        settings = SourceSettings(
            fps=p.sample_fps, open_timeout_s=p.open_timeout_s, read_timeout_s=p.read_timeout_s,
            reconnect_initial_s=p.reconnect_initial_s, reconnect_max_s=p.reconnect_max_s,
            give_up_s=p.source_give_up_s,
            realtime=plan.url.startswith(("/", "file:")))
        session = Session(plan, sensor, events)
        worker = SourceWorker(session, settings, self._wake, self._inputs.check)
        self.stages[plan.kind].attach(session)
        with self._lock:
            self._workers[id(session)] = worker
        worker.start()
        return session

    def begin_halt(self, session: Session) -> None:
        """End a session now without waiting: it produces nothing more from this call on.

        Its reader is asked to stop; one stuck in a blocking read finishes at its next read
        timeout, and whatever it decodes meanwhile is dropped.
        """
        session.deactivate()
        self.stages[session.plan.kind].detach(session)
        with self._lock:
            worker = self._workers.get(id(session))
        if worker is not None:
            worker.request_stop()

    def halted(self, session: Session) -> bool:
        """True once the session's reader thread has finished."""
        with self._lock:
            worker = self._workers.get(id(session))
            if worker is None or not worker.running:
                self._workers.pop(id(session), None)
                return True
            return False

    def abandon(self, session: Session) -> None:
        """Stop tracking a reader that did not finish in time (it is a daemon thread)."""
        with self._lock:
            worker = self._workers.pop(id(session), None)
        if worker is not None:
            logger.warning("processor %s: source reader still blocked; abandoned",
                           session.name)

    def session_report(self) -> dict[str, dict[str, object]]:
        """Each session's reader for /health: alive, and seconds since its last frame."""
        now = time.monotonic()
        with self._lock:
            workers = list(self._workers.values())
        return {w.session_name: {"reader_alive": w.running,
                                 "seconds_since_frame": round(now - w.last_beat, 3)}
                for w in workers}

    def close_tap(self) -> None:
        """End every live feed open on the tap (the node is stopping); a second call is a no-op.

        The daemon calls it before stopping the API server, so no open feed holds the
        server's graceful shutdown; :meth:`stop` calls it too.
        """
        self.tap.close()

    def stop(self) -> None:
        """End the live feeds, stop readers, then the stages, then flush the publisher."""
        self.tap.close()
        try:
            self._stop_upstream()
        finally:  # even when a reader or stage failed to stop: the records go to disk
            try:
                self.publisher.stop(5.0)
            finally:
                self._spool.close()  # even when the publisher's own stop failed

    def _stop_upstream(self) -> None:
        timeout = self._config.processors.stop_timeout_s
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.request_stop()
        for worker in workers:
            worker.join(timeout)
        for stage in self.stages.values():
            stage.stop(5.0)
        for background in self.background_stages.values():
            background.stop(5.0)
