"""Wire handlers for stored-media jobs: a Start and a Get handler for each job kind.

The handlers know no kind: each kind's wire half (:mod:`streamproc.api.job_kinds`) parses
its Start parameters and renders its Get response, and :func:`job_handlers` makes the pair
of handlers of every wire half the daemon registers, and a List handler for a wire half
that lists its jobs (:class:`ListedJobKind`: ListMediaAnalysisJobs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.job_kinds.base import WireJobKind
from streamproc.jobs.kind import Job
from streamproc.jobs.request import JobRequest
from streamproc.jobs.service import JobService

JobHandler = Callable[[JobService, Params, RequestContext], Response]


@runtime_checkable
class ResolvingJobKind(Protocol):
    """A wire half whose Start names an ARN, read in the request's region (its ``ctx``).

    StartMediaAnalysisJob's ProjectVersion: ARNs are the client's region's, as every other
    operation reads them (:func:`streamproc.api.project_handlers.version_resource`).
    """

    def resolved(self, p: Params, ctx: RequestContext) -> JobRequest:
        """The Start parameters as the domain kind's request, its ARNs resolved."""


def start_job(wire: WireJobKind, s: JobService, p: Params, ctx: RequestContext) -> Response:
    """Start*: queue the job; its JobId."""
    request = wire.resolved(p, ctx) if isinstance(wire, ResolvingJobKind) else wire.request(p)
    return {"JobId": s.start(request, p.get("ClientRequestToken"))}


def get_job(wire: WireJobKind, s: JobService, p: Params, ctx: RequestContext) -> Response:
    """Get*: the job and, once it SUCCEEDED, a page of its results."""
    return wire.response(s.get(p["JobId"], wire.api, wire.query(p)))


@runtime_checkable
class ListedJobKind(Protocol):
    """A wire half that also lists its kind's jobs, newest first (List*)."""

    @property
    def api(self) -> str:
        """The domain kind it belongs to (JobKind.api)."""

    @property
    def list_operation(self) -> str:
        """ListMediaAnalysisJobs."""

    @property
    def list_max_results(self) -> int:
        """MaxResults' default and cap."""

    @property
    def list_key(self) -> str:
        """The response's member holding the page (MediaAnalysisJobs)."""

    def describe(self, job: Job[Any]) -> Response:
        """One listed job."""


def list_jobs(wire: ListedJobKind, s: JobService, p: Params, ctx: RequestContext
              ) -> Response:
    """List*: one page of the kind's jobs, newest first."""
    limit = min(p.get("MaxResults") or wire.list_max_results, wire.list_max_results)
    jobs, token = s.list_jobs(wire.api, p.get("NextToken"), limit)
    out: Response = {wire.list_key: [wire.describe(job) for job in jobs]}
    if token is not None:
        out["NextToken"] = token
    return out


def job_handlers(wires: Iterable[WireJobKind]) -> dict[str, JobHandler]:
    """Operation -> handler, for every wire half given."""
    out: dict[str, JobHandler] = {}
    for wire in wires:
        out[wire.start_operation] = functools.partial(start_job, wire)
        out[wire.get_operation] = functools.partial(get_job, wire)
        if isinstance(wire, ListedJobKind):
            out[wire.list_operation] = functools.partial(list_jobs, wire)
    return out
