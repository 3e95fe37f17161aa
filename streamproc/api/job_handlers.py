"""Wire handlers for stored-video jobs: a Start and a Get handler for each job kind.

The handlers know no kind: each kind's wire half (:mod:`streamproc.api.job_kinds`) parses
its Start parameters and renders its Get response, and :func:`job_handlers` makes the pair
of handlers of every wire half the daemon registers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.job_kinds.base import WireJobKind
from streamproc.jobs.service import JobService

JobHandler = Callable[[JobService, Params, RequestContext], Response]


def start_job(wire: WireJobKind, s: JobService, p: Params, ctx: RequestContext) -> Response:
    """Start*: queue the job; its JobId."""
    return {"JobId": s.start(wire.request(p), p.get("ClientRequestToken"))}


def get_job(wire: WireJobKind, s: JobService, p: Params, ctx: RequestContext) -> Response:
    """Get*: the job and, once it SUCCEEDED, a page of its results."""
    return wire.response(s.get(p["JobId"], wire.api, wire.query(p)))


def job_handlers(wires: Iterable[WireJobKind]) -> dict[str, JobHandler]:
    """Operation -> handler, for every wire half given."""
    out: dict[str, JobHandler] = {}
    for wire in wires:
        out[wire.start_operation] = functools.partial(start_job, wire)
        out[wire.get_operation] = functools.partial(get_job, wire)
    return out
