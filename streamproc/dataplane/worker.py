"""One thread per running processor: read the source, reconnect with backoff, feed frames."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from streamproc.dataplane.session import Session
from streamproc.dataplane.source import SourceError, read_frames
from streamproc.dataplane.timeline import FrameClock
from streamproc.lifecycle import Service

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSettings:
    """Timeouts and retry policy for a source."""

    fps: float
    open_timeout_s: float
    read_timeout_s: float
    reconnect_initial_s: float
    reconnect_max_s: float
    give_up_s: float
    realtime: bool


class SourceWorker(Service):
    """Decodes one source into its session's frame queue until stopped or failed."""

    def __init__(self, session: Session, url: str, url_shown: str, settings: SourceSettings,
                 wake: threading.Event) -> None:
        super().__init__(f"source-{session.name}")
        self._session = session
        self._url = url
        self._shown = url_shown
        self._settings = settings
        self._wake = wake

    def _run(self) -> None:
        s = self._settings
        backoff, last_ok = s.reconnect_initial_s, time.monotonic()
        clock = FrameClock()  # one timeline per run: frame times increase across reconnects
        while not self.stopping and self._session.active.is_set():
            try:
                for frame in read_frames(self._url, self._shown, s.fps, s.open_timeout_s,
                                         s.read_timeout_s, s.realtime, clock):
                    if self.stopping or not self._session.active.is_set():
                        return
                    self._session.report_frame()
                    self._session.sensor.frame_decoded()
                    self._session.frames.put(frame)
                    self._wake.set()
                    last_ok, backoff = time.monotonic(), s.reconnect_initial_s
                error = f"{self._shown}: stream ended"
            except SourceError as exc:
                if exc.fatal:
                    self._session.fail(str(exc))
                    return
                error = str(exc)
            if self.stopping:
                return
            down = time.monotonic() - last_ok
            if down > s.give_up_s:
                self._session.fail(f"Stream unavailable for {down:.0f} s: {error}")
                return
            logger.warning("processor %s: %s; reconnecting in %.1fs", self._session.name,
                           error, backoff)
            self._session.sensor.reconnect()
            if self.wait(backoff):
                return
            backoff = min(backoff * 2, s.reconnect_max_s)
