"""The console's metrics snapshot: ``GET /console/stats``, read from the daemon's own registry.

The overview's sparklines and the processors list's fps column poll it (every 2 s) and
compute rates between two snapshots, so the server keeps no history and adds nothing to the
frame path: it reads the counters the data plane already keeps. Only the processors the
session's key may ``DescribeStreamProcessor`` appear, in the processors and in the totals.
Their match facts (``matches``, ``lastMatch``) need what the live feed needs
(:mod:`streamproc.console.rights`: ListFaces on the processor's collection too); for a key
without it they are null and left out of the totals. Cluster mode: the figures are this
node's (each node counts what it runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from streamproc.console.extension import ConsoleAccess, Extension, ExtraRoute
from streamproc.console.rights import DESCRIBE, match_refusal

PATH = "/console/stats"
# Sample name -> the snapshot's field, for the per-processor series it reads.
SAMPLES: dict[str, str] = {
    "streamproc_processor_frames_analysed_total": "framesAnalysed",
    "streamproc_processor_matches_total": "matches",
    "streamproc_processor_frame_to_publish_seconds_sum": "latencySum",
    "streamproc_processor_frame_to_publish_seconds_count": "latencyCount",
    "streamproc_processor_last_match_timestamp_seconds": "lastMatch",
}
_NO_SESSION = "No console session: sign in at /console/"


@dataclass
class Figures:
    """One processor's counters (or their totals), as the snapshot shows them."""

    frames_analysed: float = 0.0
    matches: float = 0.0
    latency_sum: float = 0.0
    latency_count: float = 0.0
    last_match_s: float = 0.0  # 0: no match seen since the daemon started

    def add(self, name: str, value: float) -> None:
        """Take one sample (by its snapshot field name)."""
        if name == "framesAnalysed":
            self.frames_analysed += value
        elif name == "matches":
            self.matches += value
        elif name == "latencySum":
            self.latency_sum += value
        elif name == "latencyCount":
            self.latency_count += value
        elif name == "lastMatch":
            self.last_match_s = max(self.last_match_s, value)

    def merge(self, other: Figures) -> None:
        """Add another processor's figures (for the totals)."""
        self.frames_analysed += other.frames_analysed
        self.matches += other.matches
        self.latency_sum += other.latency_sum
        self.latency_count += other.latency_count
        self.last_match_s = max(self.last_match_s, other.last_match_s)

    def without_matches(self) -> Figures:
        """These figures with the match facts left out (for a key not told them)."""
        return replace(self, matches=0.0, last_match_s=0.0)

    def as_json(self, matches_told: bool = True) -> dict[str, Any]:
        """The page's shape: counts as integers, times in epoch milliseconds or null.

        ``matches_told`` False: ``matches`` and ``lastMatch`` are null (not this key's).
        """
        last = int(self.last_match_s * 1000) if self.last_match_s > 0 else None
        return {"framesAnalysed": int(self.frames_analysed),
                "matches": int(self.matches) if matches_told else None,
                "latencySum": round(self.latency_sum, 6),
                "latencyCount": int(self.latency_count),
                "lastMatch": last if matches_told else None}


def read_figures(families: Iterable[Metric]) -> dict[str, Figures]:
    """Each processor's figures from collected metric families (others are ignored)."""
    out: dict[str, Figures] = {}
    for family in families:
        for sample in family.samples:
            name = SAMPLES.get(sample.name)
            processor = sample.labels.get("processor")
            if name is None or processor is None:
                continue
            out.setdefault(processor, Figures()).add(name, float(sample.value))
    return out


class MetricsSnapshot:
    """The ``/console/stats`` extension over one registry.

    ``collection_of``: a stream processor's CollectionId (None: no such processor), to
    judge who may see its match facts.
    """

    def __init__(self, registry: CollectorRegistry,
                 collection_of: Callable[[str], str | None]) -> None:
        # Only the collectors of these samples are asked (not the whole registry), each
        # under its own lock for as long as it takes to copy its values.
        self._source = registry.restricted_registry(list(SAMPLES))
        self._collection_of = collection_of

    def figures(self) -> dict[str, Figures]:
        """Every processor's figures now."""
        return read_figures(self._source.collect())

    def snapshot(self, visible: Iterable[str] | None = None,
                 figures: dict[str, Figures] | None = None,
                 matches_told: Iterable[str] | None = None) -> dict[str, Any]:
        """The JSON body: ``visible`` the processor names to show (None: all).

        ``matches_told``: those of them whose match facts are shown (None: all).
        """
        figures = self.figures() if figures is None else figures
        shown = figures if visible is None else {n: figures[n] for n in visible if n in figures}
        told = set(shown) if matches_told is None else set(matches_told) & set(shown)
        totals = Figures()
        for name, one in shown.items():
            totals.merge(one if name in told else one.without_matches())
        return {"at": int(time.time() * 1000),
                "processors": {n: f.as_json(n in told) for n, f in sorted(shown.items())},
                "totals": {**totals.as_json(), "processors": len(shown)}}

    def close(self) -> None:
        """Nothing runs between requests: nothing to stop."""

    def routes(self, access: ConsoleAccess) -> list[ExtraRoute]:
        """``GET /console/stats`` for a signed-in session."""
        async def stats(request: Request) -> Response:
            session = access.session_of(request)
            if session is None:
                return access.refusals.denied("no_session", request.scope, _NO_SESSION)
            # Off the event loop (it serves the API): the collectors take their locks.
            figures = await run_in_threadpool(self.figures)
            visible = [n for n in figures if access.allows(session, DESCRIBE, {"Name": n})]
            told = [n for n in visible
                    if match_refusal(access, session, n, self._collection_of) is None]
            return JSONResponse(self.snapshot(visible, figures, told))

        return [ExtraRoute(PATH, stats)]


def metrics_snapshot(registry: CollectorRegistry,
                     collection_of: Callable[[str], str | None]) -> Extension:
    """The metrics snapshot's extension (built only where the console is served).

    ``collection_of``: a stream processor's CollectionId (None: no such processor).
    """
    return MetricsSnapshot(registry, collection_of)
