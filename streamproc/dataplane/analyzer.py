"""The shared inference stage: frames from every running processor, batched together.

Detection runs per frame (the SCRFD packs have no batch axis); the faces of all frames in
a batch are embedded in one recogniser call, then each processor searches its collection
and its records go to the publisher.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from streamproc.dataplane.publish import KafkaPublisher
from streamproc.dataplane.records import Match, face_search_record
from streamproc.dataplane.session import Session, in_regions
from streamproc.dataplane.source import VideoFrame
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face
from streamproc.lifecycle import Service
from streamproc.storage.collections import CollectionStore

logger = logging.getLogger(__name__)
Work = tuple[Session, VideoFrame, list[Face]]


class Analyzer(Service):
    """Pulls frames round-robin from sessions, analyses them in batches, emits records."""

    def __init__(self, engine: FaceEngine, store: CollectionStore, publisher: KafkaPublisher,
                 batch_frames: int, max_matches: int, emit_empty: bool,
                 wake: threading.Event) -> None:
        super().__init__("analyzer")
        self._engine = engine
        self._store = store
        self._publisher = publisher
        self._batch = batch_frames
        self._max_matches = max_matches
        self._emit_empty = emit_empty
        self._wake = wake
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def attach(self, session: Session) -> None:
        """Start analysing a session's frames."""
        with self._lock:
            self._sessions[session.name] = session

    def detach(self, session: Session) -> None:
        """Stop analysing a session (its queued frames are discarded)."""
        with self._lock:
            if self._sessions.get(session.name) is session:
                del self._sessions[session.name]
        session.frames.drain()

    def _collect(self) -> list[tuple[Session, VideoFrame]]:
        with self._lock:
            sessions = list(self._sessions.values())
        batch: list[tuple[Session, VideoFrame]] = []
        progress = True
        while progress and len(batch) < self._batch:
            progress = False
            for session in sessions:
                frame = session.frames.get() if session.active.is_set() else None
                if frame is not None:
                    batch.append((session, frame))
                    progress = True
                    if len(batch) >= self._batch:
                        break
        return batch

    def _run(self) -> None:
        while not self.stopping:
            batch = self._collect()
            if not batch:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            try:
                self.analyse(batch)
            except Exception:
                logger.exception("analysing a batch of %d frames failed", len(batch))

    def analyse(self, batch: list[tuple[Session, VideoFrame]]) -> None:
        """Detect, embed (one call for the whole batch), search and emit."""
        work: list[Work] = []
        for session, frame in batch:
            height, width = frame.image.shape[:2]
            faces = [f for f in self._engine.detect(frame.image)
                     if in_regions(f, session.regions, width, height)]
            work.append((session, frame, faces))
        self._engine.embed_many([(frame.image, faces) for _, frame, faces in work if faces])
        for session, frame, faces in work:
            if session.active.is_set():
                self._finish(session, frame, faces)

    def _search(self, session: Session, faces: list[Face], vectors: list[Any]
                ) -> list[list[Match]] | None:
        if not faces:
            return []
        import numpy as np

        min_cos = self._engine.scale.cosine_for(session.threshold)
        try:
            hits = self._store.search(session.collection_id, np.vstack(vectors),
                                      self._max_matches, min_cos)
        except KeyError:
            session.fail("Collection not found")
            return None
        scale = self._engine.scale
        return [[(float(scale.similarity(c)), f) for c, f in row
                 if scale.similarity(c) >= session.threshold] for row in hits]

    def _finish(self, session: Session, frame: VideoFrame, faces: list[Face]) -> None:
        if session.tracker is not None:
            self._finish_tracks(session, frame, faces)
            return
        matches = self._search(session, faces, [f.embedding for f in faces])
        if matches is None:
            return
        session.sensor.frame_analysed(len(faces), sum(1 for m in matches if m))
        if faces or self._emit_empty:
            self._emit(session, frame, list(zip(faces, matches)))

    def _finish_tracks(self, session: Session, frame: VideoFrame, faces: list[Face]) -> None:
        assert session.tracker is not None
        tracks = session.tracker.update([f.box for f in faces], [f.embedding for f in faces])
        matches = self._search(session, faces, [t.embedding for t in tracks])
        if matches is None:
            return
        session.sensor.frame_analysed(len(faces), sum(1 for m in matches if m))
        for face, track, found in zip(faces, tracks, matches):
            best = found[0][1].face_id if found else None
            if best is not None and best != track.emitted_face_id:
                track.emitted_face_id = best
                self._emit(session, frame, [(face, found)])

    def _emit(self, session: Session, frame: VideoFrame,
              faces: list[tuple[Face, list[Match]]]) -> None:
        record = face_search_record(session.stream_arn, frame, faces,
                                    self._engine.face_model_version)
        self._publisher.submit(session.bootstrap, session.name, session.topic,
                               json.dumps(record, separators=(",", ":")).encode(),
                               frame.decoded_at, session.sensor)
