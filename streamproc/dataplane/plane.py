"""The data plane: one publisher, one analyzer, one source worker per running processor."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from streamproc.config import Config
from streamproc.dataplane.analyzer import Analyzer
from streamproc.dataplane.publish import KafkaPublisher
from streamproc.dataplane.session import Session
from streamproc.dataplane.worker import SourceSettings, SourceWorker
from streamproc.faces.engine import FaceEngine
from streamproc.metrics import ProcessorSensor, PublisherMetrics
from streamproc.storage.collections import CollectionStore
from streamproc.storage.spool import Spool


@dataclass
class PlaneEvents:
    """Callbacks from the data plane into the control plane."""

    sensor_for: Callable[[str], ProcessorSensor | None]
    on_outage: Callable[[str, str | None], None]
    on_unreachable: Callable[[str, str], None]


class DataPlane:
    """Starts and stops the shared stages and each processor's source worker."""

    def __init__(self, config: Config, engine: FaceEngine, store: CollectionStore,
                 spool: Spool, metrics: PublisherMetrics, events: PlaneEvents) -> None:
        self._config = config
        self._wake = threading.Event()
        self._spool = spool
        self.publisher = KafkaPublisher(config.kafka, spool, metrics, events.sensor_for,
                                        events.on_outage, events.on_unreachable)
        p = config.processors
        self.analyzer = Analyzer(engine, store, self.publisher, p.batch_frames, p.max_matches,
                                 p.emit_empty_frames, self._wake, p.embed_interval_s)
        self._workers: dict[str, SourceWorker] = {}

    def start(self) -> None:
        """Open the spool, start the publisher, then the analyzer (downstream first)."""
        self._spool.open()
        self.publisher.load()
        self.publisher.start()
        self.analyzer.start()

    def run(self, session: Session, url: str, url_shown: str) -> None:
        """Begin reading a processor's source into the analyzer."""
        p = self._config.processors
        settings = SourceSettings(
            fps=p.sample_fps, open_timeout_s=p.open_timeout_s, read_timeout_s=p.read_timeout_s,
            reconnect_initial_s=p.reconnect_initial_s, reconnect_max_s=p.reconnect_max_s,
            give_up_s=p.source_give_up_s,
            realtime=url.startswith(("/", "file:")))
        worker = SourceWorker(session, url, url_shown, settings, self._wake)
        self.analyzer.attach(session)
        self._workers[session.name] = worker
        worker.start()

    def halt(self, session: Session) -> bool:
        """End a session within the stop timeout; True if its thread finished in time.

        A worker stuck in a blocking read is abandoned: its session is inactive, so
        whatever it decodes later is dropped and it exits at the next read timeout.
        """
        session.active.clear()
        self.analyzer.detach(session)
        worker = self._workers.pop(session.name, None)
        if worker is None:
            return True
        return worker.stop(self._config.processors.stop_timeout_s)

    def stop(self) -> None:
        """Stop sources, then the analyzer, then flush the publisher (upstream first)."""
        for worker in list(self._workers.values()):
            worker.stop(self._config.processors.stop_timeout_s)
        self._workers.clear()
        self.analyzer.stop(5.0)
        self.publisher.stop(5.0)
        self._spool.close()
