"""Test doubles for the processors' control loop: no models, no broker, no video.

``Harness`` builds the real registry, service, mailbox and reconciler over a temporary
SQLite database and a real collection store, with :class:`FakeRuntime` in place of the
data plane. Tests drive the loop one turn at a time (``turn()``) or run its thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from streamproc.config import CalibrationKnot, load_config
from streamproc.dataplane.live.session import Session, SessionEvents, SessionPlan
from streamproc.faces.engine import ModelIdentity
from streamproc.faces.similarity import SimilarityScale
from streamproc.ledger import Appliers, LocalLedger
from streamproc.metrics import ProcessorMetrics, ProcessorSensor
from streamproc.processors.kinds import FaceSearchKind, ProcessorKind
from streamproc.processors.mailbox import Mailbox, MailboxEvents
from streamproc.processors.reconciler import Hooks, Reconciler, ReconcilerSettings
from streamproc.processors.registry import ProcessorRegistry
from streamproc.processors.rules import ProcessorRules
from streamproc.processors.service import ProcessorService
from streamproc.rekognition.constants import FACE_SEARCH
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.collections import CollectionInfo, CollectionStore
from streamproc.storage.db import Database
from streamproc.storage.processors import ProcessorStore
from streamproc.storage.tags import TagStore

MODEL = ModelIdentity("test_mfn", 4, "digest-of-mfn")
OTHER_MODEL = ModelIdentity("test_sface", 4, "digest-of-sface")


class FakeRuntime:
    """Records launches and halts; a name in ``stuck`` never finishes halting."""

    def __init__(self) -> None:
        self.launched: list[Session] = []
        self.halting: list[Session] = []
        self.abandoned: list[Session] = []
        self.stuck: set[str] = set()

    def launch(self, plan: SessionPlan, sensor: ProcessorSensor,
               events: SessionEvents) -> Session:
        session = Session(plan, sensor, events)
        self.launched.append(session)
        return session

    def begin_halt(self, session: Session) -> None:
        session.deactivate()
        self.halting.append(session)

    def halted(self, session: Session) -> bool:
        return session.plan.name not in self.stuck

    def abandon(self, session: Session) -> None:
        self.abandoned.append(session)

    def live(self) -> list[Session]:
        """Sessions launched and not yet asked to halt."""
        return [s for s in self.launched if s.active.is_set()]

    def latest(self, name: str) -> Session:
        return [s for s in self.launched if s.plan.name == name][-1]


@dataclass
class Harness:
    """The processors' control plane over fakes."""

    root: Path
    stop_timeout_s: float = 0.3
    max_restarts: int = 2
    restart_delay_s: float = 0.0
    repost_s: float = 0.05
    runtime: FakeRuntime = field(default_factory=FakeRuntime)

    def __post_init__(self) -> None:
        self.db = Database(self.root / "streamproc.db")
        self.db.open()
        self.collections = CollectionStore(self.db)
        self.collections.load()
        self.model = MODEL
        scale = SimilarityScale([CalibrationKnot(cosine=-1, similarity=0),
                                 CalibrationKnot(cosine=1, similarity=100)])
        self.searcher = FaceSearcher(self.collections, lambda: self.model, scale)
        self.metrics_registry = CollectorRegistry()
        self.metrics = ProcessorMetrics.create(self.metrics_registry)
        self.config = load_config(None, {"kafka.bootstrap": "k:9092",
                                          "processors.max_processors": 64,
                                          # the other clusters tests' kafka:// outputs name
                                          "outputs.clusters": ["k:1", "other:9092"]})
        self.mailbox = Mailbox()
        self.registry = ProcessorRegistry()
        kinds: dict[str, ProcessorKind] = {FACE_SEARCH: FaceSearchKind(self.searcher)}
        self.kinds = kinds
        self.tags = TagStore(self.db)
        self.appliers = Appliers()
        self.rules = ProcessorRules(self.registry, ProcessorStore(self.db), self.tags, kinds,
                                    self.metrics, self.config, self.mailbox.changed)
        self.rules.register(self.appliers)
        self.ledger = LocalLedger(self.appliers)
        self.service = ProcessorService(self.registry, self.ledger, self.tags, self.metrics,
                                        self.config, kinds)
        settings = ReconcilerSettings(stop_timeout_s=self.stop_timeout_s, tick_s=0.05,
                                      default_destination="k:9092",
                                      max_restarts=self.max_restarts, restart_window_s=60,
                                      restart_delay_s=self.restart_delay_s,
                                      repost_s=self.repost_s)
        hooks = Hooks(sensor=self.metrics.sensor, emit_mode=self.service.emit_mode)
        self.reconciler = Reconciler(self.registry, self.runtime, kinds, self.mailbox,
                                     self.ledger, settings, hooks)
        self.events = MailboxEvents(self.mailbox)

    def add_collection(self, collection_id: str, model: ModelIdentity = MODEL) -> CollectionInfo:
        info = CollectionInfo(collection_id, f"arn:c/{collection_id}", time.time(), model.pack,
                              model.dim, "7.0", model.recognizer)
        assert self.collections.create(info)
        return info

    def create(self, name: str, collection: str = "people", **extra: Any) -> None:
        args = {"name": name, "input_arn": f"tcp://cam-{name}:1", "collection_id": collection,
                "output_arn": f"arn:aws:kinesis:us-east-1:123456789012:stream/out-{name}",
                "threshold": 80.0, "role_arn": "arn:aws:iam::123456789012:role/r",
                "kind": FACE_SEARCH, **extra}
        self.service.create(args, {})

    def launch(self, name: str, **extra: Any) -> Session:
        """Create and start ``name``, and turn once: the session that turn launched."""
        self.create(name, **extra)
        self.service.start(name)
        self.turn()
        return self.runtime.latest(name)

    def status(self, name: str) -> str:
        spec, state = self.service.describe(name)
        return state.status.value

    def message(self, name: str) -> str:
        return self.service.describe(name)[1].message

    def turn(self, times: int = 1) -> None:
        for _ in range(times):
            self.reconciler.reconcile_once()

    def settle(self, name: str, wanted: set[str], timeout: float = 5.0) -> str:
        """Turn until ``name`` reaches one of ``wanted`` (bounded)."""
        deadline = time.monotonic() + timeout
        while self.status(name) not in wanted and time.monotonic() < deadline:
            self.turn()
            time.sleep(0.01)
        return self.status(name)

    def close(self) -> None:
        self.db.close()


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, np.float32)
    return array / np.linalg.norm(array)


def live_session(name: str) -> Session:
    """A live face-search session with no source behind it (stages ask it what is queued)."""
    from streamproc.dataplane.live.session import Output
    from streamproc.storage.collections import CollectionInfo

    plan = SessionPlan(name, 1, FACE_SEARCH, "tcp://x:1", "tcp://x:1", "tcp://x:1",
                       CollectionInfo("c", "arn", 1.0, "p", 4, "7.0"), 80.0,
                       Output("k:9092", "t"), "frame", frame_queue=4)
    sensor = ProcessorMetrics.create(CollectorRegistry()).sensor(name)

    class Events:
        def __getattr__(self, _: str) -> Any:
            return lambda *a: None

    return Session(plan, sensor, Events())  # type: ignore[arg-type]
