"""Opening a source: PyAV directly, or through the system ffmpeg for what PyAV lacks.

Also what makes an open source unusable: no video stream, or a codec PyAV cannot decode
(named, from FFmpeg's own description of the stream).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import av

from streamproc.dataplane.guard.allowlist import CheckedInput
from streamproc.dataplane.guard.nested import HLS_TYPES, GuardedOpener, Judge, OpenRefused
from streamproc.dataplane.guard.protocols import SourceError, SourcePlan, classify
from streamproc.dataplane.live.relay import FfmpegRelay, relay_available
from streamproc.dataplane.live.rtsp_relay import RtspRelay, relayed


@dataclass
class OpenSource:
    """An open source: its container, its relay (if any), its opener (if guarded)."""

    container: av.container.InputContainer
    relay: FfmpegRelay | None = None
    opener: GuardedOpener | None = None
    rtsp: RtspRelay | None = None

    def refusal(self) -> OpenRefused | None:
        """The first URL FFmpeg was refused, or an RTSP redirect, if any (fails the source)."""
        if self.opener is not None and self.opener.refused is not None:
            return self.opener.refused
        return self.rtsp.refused if self.rtsp is not None else None

    def failure(self, url_shown: str) -> SourceError | None:
        """Why reading really ended, if known: a refused open, or a relay's end."""
        refused = self.refusal()
        if refused is not None:
            return refused
        if self.rtsp is not None:
            return self.rtsp.failure
        return self.relay.failure(url_shown) if self.relay is not None else None


def _open_guarded(plan: SourcePlan, url_shown: str, open_timeout: float,
                  read_timeout: float, judge: Judge | None) -> OpenSource:
    """``plan.url`` with every open FFmpeg makes judged first (see nested)."""
    main = CheckedInput(plan.url, plan.options)
    timeout = (open_timeout, read_timeout)
    opener = GuardedOpener(main, judge, url_shown, open_timeout, read_timeout)
    try:
        return OpenSource(av.open(plan.url, timeout=timeout, options=plan.options,
                                  io_open=opener), opener=opener)
    except av.error.InvalidDataError:
        if opener.content_type not in HLS_TYPES:
            raise
    # A playlist under a name without .m3u8: FFmpeg knows it by its Content-Type, which
    # an open of our own does not hand on.
    opener = GuardedOpener(main, judge, url_shown, open_timeout, read_timeout)
    return OpenSource(av.open(plan.url, format="hls", timeout=timeout, options=plan.options,
                              io_open=opener), opener=opener)


@contextlib.contextmanager
def open_source(plan: SourcePlan, url_shown: str, open_timeout: float, read_timeout: float,
                judge: Judge | None = None) -> Iterator[OpenSource]:
    """The open source (with a relay for protocols only the system ffmpeg has).

    ``judge`` (the inputs allowlist) checks every other URL a file or HTTP source makes
    FFmpeg open; without it, such a source may open its own URL only.
    """
    with contextlib.ExitStack() as stack:
        relay = rtsp = None
        try:
            try:
                if plan.guarded:
                    opened = _open_guarded(plan, url_shown, open_timeout, read_timeout, judge)
                elif relayed(plan.url):  # FFmpeg would follow a redirect: see rtsp_relay
                    rtsp = stack.enter_context(
                        RtspRelay(plan.url, url_shown, open_timeout, read_timeout))
                    opened = OpenSource(av.open(rtsp.url(plan.url), options=plan.options,
                                                timeout=(open_timeout, read_timeout)),
                                        rtsp=rtsp)
                else:
                    opened = OpenSource(av.open(plan.url, timeout=(open_timeout, read_timeout),
                                                options=plan.options))
            except av.error.ProtocolNotFoundError:
                if not relay_available(plan.scheme):
                    raise
                relay = stack.enter_context(FfmpegRelay(plan.url, plan.options, read_timeout))
                opened = OpenSource(av.open(relay, "r", format="nut", options=plan.options),
                                    relay)
        except SourceError:
            raise
        except Exception as exc:  # PyAV raises many types; classify() sorts them
            failure = relay.failure(url_shown) if relay is not None else None
            if rtsp is not None:
                failure = rtsp.refused or rtsp.failure
            # from None: PyAV's exceptions quote the URL as given, secrets and all.
            raise (failure or classify(exc, url_shown, plan)) from None
        stack.enter_context(opened.container)
        yield opened


_CODEC = re.compile(r"Video: ([\w-]+)")


def _codec_name(container: av.container.InputContainer) -> str:
    """The codec of a stream PyAV has no decoder for (only FFmpeg's format dump names it)."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)  # dumps_format() captures nothing below INFO
    try:
        # dumps_format() is PyAV's (Cython) and missing from its stubs.
        found = _CODEC.search(container.dumps_format())  # type: ignore[attr-defined]
    finally:
        av.logging.set_level(level)
    return found.group(1) if found else "unknown"


def video_stream(container: av.container.InputContainer, url_shown: str, live: bool
                 ) -> av.VideoStream:
    """The first video stream, ready to decode; fatal errors for none or an unknown codec."""
    if not container.streams.video:
        msg = f"{url_shown} has no video stream"
        raise SourceError(msg, fatal=True)
    stream = container.streams.video[0]
    if stream.codec_context is None:
        msg = f"Cannot decode {url_shown}: codec {_codec_name(container)} is not supported"
        raise SourceError(msg, fatal=True)
    # Frame threading holds one frame per extra thread (133 ms at 15 fps on 2 cores, in
    # bench_ingest); a live source gets slice threading only, a file may use both.
    stream.thread_type = "SLICE" if live else "AUTO"
    return stream
