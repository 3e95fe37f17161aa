"""One thread per running processor: read the source, reconnect with backoff, feed frames."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from streamproc.dataplane.guard.allowlist import CheckedInput, InputRefused, InputUnresolved
from streamproc.dataplane.live.session import Session
from streamproc.dataplane.live.source import SourceError, read_frames
from streamproc.dataplane.live.timeline import FrameClock
from streamproc.lifecycle import Service
from streamproc.redaction import scrub

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
    """Decodes one source into its session's frame queue until stopped or failed.

    Network trouble is retried with backoff and ends in FAILED after ``give_up_s``; a bad
    URL or stream fails at once; anything else is a bug and is reported as a crash, which
    the owner restarts within a budget instead of retrying it forever like a network error.
    """

    def __init__(self, session: Session, settings: SourceSettings, wake: threading.Event,
                 guard: Callable[[str], CheckedInput]) -> None:
        super().__init__(f"source-{session.name}")
        self._session = session
        self._url = session.plan.url
        self._shown = session.plan.url_shown
        self._settings = settings
        self._wake = wake
        self.session_name = session.name
        self._guard = guard  # the inputs allowlist, asked again before every connect
        self._opened = self._url  # the checked URL last handed to FFmpeg (credentials too)

    def _scrub(self, text: str) -> str:
        # The URL as given and as last opened (a checked form of it) both carry secrets.
        return scrub(scrub(text, self._url), self._opened).replace(self._opened, self._shown)

    def _on_crash(self, exc: BaseException) -> None:
        # Exceptions from PyAV quote the URL; the crash report becomes a StatusMessage.
        self._session.crashed(self._scrub(f"source reader: {type(exc).__name__}: {exc}"))

    def _log_crash(self, exc: BaseException) -> None:
        trace = "".join(traceback.format_exception(exc))
        logger.error("%s crashed:\n%s", self.name, self._scrub(trace))

    def _checked(self) -> CheckedInput:
        """Judge the input now: a name may resolve elsewhere than at Create or last time."""
        try:
            checked = self._guard(self._url)
        except InputRefused as exc:
            msg = f"Input refused by inputs.{exc.rule}: {exc.message}"
            raise SourceError(msg,
                              fatal=True) from None
        except InputUnresolved:
            msg = f"Cannot resolve host of {self._shown}"
            raise SourceError(msg, fatal=True) from None
        self._opened = checked.url
        return checked

    def _run(self) -> None:
        s = self._settings
        backoff, last_ok = s.reconnect_initial_s, time.monotonic()
        clock = FrameClock()  # one timeline per run: frame times increase across reconnects
        while not self.stopping and self._session.active.is_set():
            try:
                checked = self._checked()
                for frame in read_frames(checked.url, self._shown, s.fps, s.open_timeout_s,
                                         s.read_timeout_s, s.realtime, clock,
                                         checked.options, judge=self._guard):
                    if self.stopping or not self._session.active.is_set():
                        return
                    self.beat()
                    self._session.report_frame()
                    self._session.sensor.frame_decoded()
                    self._session.frames.put(frame)
                    self._wake.set()
                    last_ok, backoff = time.monotonic(), s.reconnect_initial_s
                error = f"{self._shown}: stream ended"
                # A file source ends on every loop: routine, not a warning.
                level = logging.INFO if s.realtime else logging.WARNING
            except SourceError as exc:
                if exc.fatal:
                    self._session.fail(str(exc))
                    return
                error, level = str(exc), logging.WARNING
            if self.stopping:
                return
            down = time.monotonic() - last_ok
            if down > s.give_up_s:
                self._session.fail(f"Stream unavailable for {down:.0f} s: {error}")
                return
            logger.log(level, "processor %s: %s; reconnecting in %.1fs", self._session.name,
                       error, backoff)
            self._session.sensor.reconnect()
            if self.wait(backoff):
                return
            backoff = min(backoff * 2, s.reconnect_max_s)
