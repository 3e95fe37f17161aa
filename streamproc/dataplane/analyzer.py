"""The face-search analysis stage: frames from every running processor, batched together.

Detection runs over the batch's frames in shared calls where that is faster (a GPU; the
SCRFD graphs get a batch axis at load) and per frame otherwise; the faces of all frames in
a batch are embedded in one recogniser call, then each processor searches its collection
through the shared :class:`~streamproc.search.searcher.FaceSearcher` (the same path the API
uses, model check included) and its records go to the publisher. A problem with one
processor (its collection gone, a bug in its settings) ends that processor's session only;
the other frames of the batch are still analysed.

It is also the jobs' face stage (``dataplane/stored/stages.py``: FACES): stored-video frames
are background work (``dataplane/stored/background.py``), taken only when no live frame
waits, and handed back to their owner as a ``FaceAnalysis``; what becomes of it is the
owner's business.

A :class:`~streamproc.dataplane.output.tap.FeedTap` (the console's live feed) is asked before
any work for a watcher: only while someone watches a processor are its faces' crops cut and
its records offered, and only while a frame request waits is a frame encoded.
"""

from __future__ import annotations

import json
import logging
import threading

import cv2
import numpy as np

from streamproc.dataplane.live.records import Match, face_search_record
from streamproc.dataplane.live.session import Session
from streamproc.dataplane.live.source import VideoFrame
from streamproc.dataplane.output.publish import Publisher
from streamproc.dataplane.output.tap import FeedTap
from streamproc.dataplane.regions import in_regions
from streamproc.dataplane.stored.background import BackgroundFeed, BackgroundOwner
from streamproc.dataplane.stored.stages import FaceAnalysis
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import Track
from streamproc.errors import StreamprocError
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face, embedding_of
from streamproc.lifecycle import Service
from streamproc.search.searcher import CollectionNotFound, FaceSearcher
from streamproc.storage.crops import face_crop, jpeg_within

logger = logging.getLogger(__name__)
# A frame and whose it is: a live session's decoded frame, or a job's stored-video frame.
Item = tuple[Session, VideoFrame] | tuple[BackgroundOwner[FaceAnalysis], StoredFrame]
Work = tuple[Item, list[Face], list[Track]]
FRAME_SIDE = 960  # pixels: the longest side of a frame snapshot for the console


class Analyzer(Service):
    """Pulls frames round-robin from sessions, analyses them in batches, emits records."""

    def __init__(self, engine: FaceEngine, searcher: FaceSearcher, publisher: Publisher,
                 batch_frames: int, max_matches: int, emit_empty: bool,
                 wake: threading.Event, embed_interval_s: float = 0.0,
                 tap: FeedTap | None = None) -> None:
        super().__init__("analyzer")
        self._tap = tap  # the console's live feed; None: nothing watches
        self._engine = engine
        self._searcher = searcher
        self._publisher = publisher
        self._batch = batch_frames
        self._max_matches = max_matches
        self._emit_empty = emit_empty
        self._embed_interval = embed_interval_s
        self._wake = wake
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._background: BackgroundFeed[FaceAnalysis] | None = None
        self._beside_live = batch_frames
        # A batch with live frames is being analysed: written by this thread only, read by
        # the stages behind live work (live_waiting); a bool needs no lock.
        self._live_batch = False

    def add_background(self, feed: BackgroundFeed[FaceAnalysis], beside_live: int) -> None:
        """Analyse ``feed``'s frames whenever no live frame waits.

        While live sessions are attached a batch holds at most ``beside_live`` of them.
        """
        feed.wake = self._wake
        self._background, self._beside_live = feed, beside_live

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

    def runs(self, name: str) -> bool:
        """Whether processor ``name``'s session is attached here now."""
        with self._lock:
            return name in self._sessions

    def live_attached(self) -> bool:
        """Whether any live session is attached (background batches are kept small)."""
        with self._lock:
            return bool(self._sessions)

    def live_waiting(self) -> bool:
        """Whether a live frame is queued (active session) or being analysed; cheap."""
        if self._live_batch:
            return True
        with self._lock:
            sessions = list(self._sessions.values())
        return any(s.active.is_set() and len(s.frames) > 0 for s in sessions)

    def _collect(self) -> list[Item]:
        with self._lock:
            sessions = list(self._sessions.values())
        batch: list[Item] = []
        progress = True
        while progress and len(batch) < self._batch:
            progress = False
            for session in sessions:
                frame = session.frames.get() if session.active.is_set() else None
                if frame is not None:
                    self._live_batch = True  # from its dequeue to the batch's end
                    batch.append((session, frame))
                    progress = True
                    if len(batch) >= self._batch:
                        break
        if not batch and self._background is not None:
            batch.extend(self._background.take(self._beside_live if sessions else self._batch))
        return batch

    def _run(self) -> None:
        while not self.stopping:
            self.beat()
            batch = self._collect()
            if not batch:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            try:
                self.analyse(batch)
            except Exception as exc:
                # Detection or embedding failed for the whole batch (a model error): the
                # frames are lost, the stage goes on; per-processor problems never get here.
                # A job missing frames would be incomplete, so it fails instead.
                logger.exception("analysing a batch of %d frames failed", len(batch))
                for owner, _ in batch:
                    if not isinstance(owner, Session):
                        owner.fail(f"Analysing a frame failed: {type(exc).__name__}")
            finally:
                self._live_batch = False

    def analyse(self, batch: list[Item]) -> None:
        """Detect, embed what needs it (one call for the whole batch), search and emit."""
        work: list[Work] = []
        to_embed: list[tuple[np.ndarray, list[Face]]] = []
        owners: list[tuple[Track, Face, float]] = []
        # One detector call per batch where the pack and device make that faster (GPU).
        found = self._engine.detect_many([frame.image for _, frame in batch])
        for item, detected in zip(batch, found, strict=True):
            session, frame = item
            height, width = frame.image.shape[:2]
            regions = session.regions
            faces = [f for f in detected if in_regions(f, regions, width, height)]
            tracks = session.tracker.update([f.box for f in faces])
            interval = self._embed_interval if isinstance(session, Session) \
                else session.embed_interval
            fresh = [] if interval is None else [
                (t, f) for t, f in zip(tracks, faces, strict=True)
                if t.needs_embedding(frame.decoded_at, interval)]
            for track, _ in fresh:
                track.will_embed(frame.decoded_at)
            if fresh:
                to_embed.append((frame.image, [f for _, f in fresh]))
                owners += [(t, f, frame.decoded_at) for t, f in fresh]
            work.append((item, faces, tracks))
        self._engine.embed_many(to_embed)
        for track, face, when in owners:
            track.observe(embedding_of(face), when)
        for item, faces, tracks in work:
            for face, track in zip(faces, tracks, strict=True):
                if face.embedding is None:
                    face.embedding = track.latest
            if not isinstance(item[0], Session):
                self._finish_background(*item, faces, tracks)
            elif item[0].active.is_set():
                self._finish_safely(*item, faces, tracks)

    @staticmethod
    def _finish_background(owner: BackgroundOwner[FaceAnalysis], frame: StoredFrame,
                           faces: list[Face], tracks: list[Track]) -> None:
        try:
            owner.finish(frame, FaceAnalysis(faces, tracks))
        except Exception as exc:
            logger.exception("%s: analysing a frame failed", owner.name)
            owner.fail(f"Analysing a frame failed: {type(exc).__name__}: {exc}")

    def _finish_safely(self, session: Session, frame: VideoFrame, faces: list[Face],
                       tracks: list[Track]) -> None:
        try:
            self._finish(session, frame, faces, tracks)
        except CollectionNotFound:
            session.fail("Collection not found")
        except StreamprocError as exc:  # e.g. the collection belongs to another model
            session.fail(exc.message)
        except Exception as exc:
            logger.exception("processor %s: analysing a frame failed", session.name)
            session.crashed(f"analysis: {type(exc).__name__}: {exc}")

    def _search(self, session: Session, vectors: list[np.ndarray]) -> list[list[Match]]:
        if not vectors:
            return []
        plan = session.plan
        hits = self._searcher.search(plan.collection.collection_id, np.vstack(vectors),
                                     self._max_matches, plan.threshold,
                                     expect=plan.collection)
        return [[(h.similarity, h.face) for h in row] for row in hits]

    def _finish(self, session: Session, frame: VideoFrame, faces: list[Face],
                tracks: list[Track]) -> None:
        if self._tap is not None and self._tap.frame_wanted(session.name):
            self._snapshot(session.name, frame)
        track_mode = session.plan.emit == "track"
        vectors = [t.mean_embedding if track_mode else embedding_of(f)
                   for f, t in zip(faces, tracks, strict=True)]
        matches = self._search(session, vectors)
        session.sensor.frame_analysed(len(faces), sum(1 for m in matches if m))
        session.sensor.observe_ingest_delay(frame.ingest_delay_s)
        if not track_mode:
            if faces or self._emit_empty:
                self._emit(session, frame, list(zip(faces, matches, strict=True)))
            return
        for face, track, found in zip(faces, tracks, matches, strict=True):
            best = found[0][1].face_id if found else None
            if best is not None and best != track.emitted_face_id:
                track.emitted_face_id = best
                self._emit(session, frame, [(face, found)])

    def _emit(self, session: Session, frame: VideoFrame,
              faces: list[tuple[Face, list[Match]]]) -> None:
        record = face_search_record(session.plan.stream_arn, frame, faces,
                                    self._engine.face_model_version)
        output = session.plan.output
        value = json.dumps(record, separators=(",", ":")).encode()
        self._publisher.submit(output.destination, session.name, output.topic, value,
                               frame.decoded_at, session.sensor)
        if self._tap is not None and self._tap.watching(session.name):
            self._tap.offer(session.name, value, tuple(
                _crop_or_none(frame.image, face.box) for face, _ in faces))

    def _snapshot(self, name: str, frame: VideoFrame) -> None:
        """Encode the frame for the console's waiting frame requests (never fails the frame)."""
        try:
            jpeg = frame_jpeg(frame.image)
        except (ValueError, cv2.error):
            logger.warning("processor %s: cannot encode a frame snapshot", name)
            return
        assert self._tap is not None
        self._tap.offer_frame(name, jpeg)


def frame_jpeg(pixels: np.ndarray, side: int = FRAME_SIDE) -> bytes:
    """A JPEG of the whole frame, its longest side at most ``side`` pixels."""
    return jpeg_within(pixels, side, 80)


def _crop_or_none(pixels: np.ndarray, box: np.ndarray) -> bytes | None:
    """A watched face's crop (at most 160 px), or None where none can be cut.

    A feed's missing crop never costs the record its publication.
    """
    try:
        return face_crop(pixels, box)
    except (ValueError, cv2.error):
        return None
