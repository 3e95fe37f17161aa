"""Opening a source: PyAV directly, or through the system ffmpeg for what PyAV lacks.

Also what makes an open source unusable: no video stream, or a codec PyAV cannot decode
(named, from FFmpeg's own description of the stream).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import av

from streamproc.dataplane.protocols import SourceError, SourcePlan, classify
from streamproc.dataplane.relay import FfmpegRelay, relay_available


@contextlib.contextmanager
def open_source(plan: SourcePlan, url_shown: str, open_timeout: float, read_timeout: float
            ) -> Iterator[tuple[av.container.InputContainer, FfmpegRelay | None]]:
    """The open container (and its relay, for protocols only the system ffmpeg has)."""
    with contextlib.ExitStack() as stack:
        relay = None
        try:
            try:
                container = av.open(plan.url, timeout=(open_timeout, read_timeout),
                                    options=plan.options)
            except av.error.ProtocolNotFoundError:
                if not relay_available(plan.scheme):
                    raise
                relay = stack.enter_context(FfmpegRelay(plan.url, plan.options, read_timeout))
                container = av.open(relay, format="nut", options=plan.options)
        except Exception as exc:  # PyAV raises many types; classify() sorts them
            failure = relay.failure(url_shown) if relay is not None else None
            raise (failure or classify(exc, url_shown, plan)) from exc
        stack.enter_context(container)
        yield container, relay


_CODEC = re.compile(r"Video: ([\w-]+)")


def _codec_name(container: av.container.InputContainer) -> str:
    """The codec of a stream PyAV has no decoder for (only FFmpeg's format dump names it)."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)  # dumps_format() captures nothing below INFO
    try:
        found = _CODEC.search(container.dumps_format())
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
