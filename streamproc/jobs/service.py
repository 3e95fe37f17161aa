"""Stored-video job rules for the API: Start (checks, idempotency, limits) and Get.

Start checks what it can at once (the object exists and is not too large, the notification
channel leads somewhere, and whatever the job's kind checks) and submits the job (the token
and the limit on jobs are the ``job.start`` applier's rules, in :mod:`streamproc.jobs.rules`);
nothing runs on the API thread. What needs the video itself (its format, codec, duration)
is found out when the job runs and ends it FAILED with the reason. Get reads the job as the
scheduler left it; results show once it SUCCEEDED, in an order of its kind's. List pages one
kind's jobs newest first (ListMediaAnalysisJobs). A kind whose input is no video (a manifest
of images) has its object looked at only when it runs: a missing one FAILS the job.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from streamproc.config import JobsConfig
from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.errors import (
    InvalidPaginationTokenException,
    InvalidParameterException,
    ResourceNotFoundException,
    VideoTooLargeException,
)
from streamproc.jobs.commands import StartJob
from streamproc.jobs.kind import Job, JobKind, JobKinds, Paging
from streamproc.jobs.notices import Notices
from streamproc.jobs.request import JobRequest
from streamproc.jobs.rules import token_job
from streamproc.ledger import Ledger
from streamproc.metrics import JobMetrics
from streamproc.rekognition.tokens import decode_token, encode_token
from streamproc.storage.jobs import RUNNING, SUCCEEDED, JobStore
from streamproc.storage.objects import ObjectStore


@dataclass(frozen=True)
class ResultsQuery:
    """Which page of a job's results Get asks for."""

    sort: str | None = None  # one of the kind's orders; None: its default
    token: str | None = None
    max_results: int | None = None
    aggregate: str | None = None  # one of the kind's listings; None: its default (if any)


@dataclass(frozen=True)
class Page:
    """A Get* answer: the job, one page of its results and the token for the next."""

    job: Job[Any]
    items: list[dict[str, Any]]
    next_token: str | None
    sort: str = ""  # the SortBy used
    aggregate: str | None = None  # the AggregateBy used (None: the kind has none)


class JobService:
    """Starts and reads jobs; raises domain errors only."""

    def __init__(self, store: JobStore, objects: ObjectStore, kinds: JobKinds,
                 notices: Notices, config: JobsConfig, ledger: Ledger,
                 metrics: JobMetrics) -> None:
        self._store = store
        self._objects = objects
        self._kinds = kinds
        self._notices = notices
        self._config = config
        self._ledger = ledger  # job.start's applier (jobs.rules) wakes the scheduler
        self._metrics = metrics

    def start(self, request: JobRequest, token: str | None) -> str:
        """Queue a job and return its JobId (the earlier one for a repeated token).

        A repeated token is answered before any check (the object may be gone by now);
        the token and the limit are decided again where the command is applied.
        """
        kind = self._kinds.of(request)
        now, stored = time.time(), request.stored()
        if token is not None:
            earlier = token_job(self._store, kind.api, token, stored, now,
                                self._config.retention_s)
            if earlier is not None:
                return earlier.job_id
        self._check(kind, request)
        new_id = uuid.uuid4().hex
        job_id = self._ledger.submit(StartJob(
            new_id, kind.api, token, stored, now, self._config.max_jobs,
            self._config.retention_s))
        if job_id == new_id:  # not an earlier job with the same token
            self._metrics.started.labels(kind.api).inc()
        return job_id

    def _check(self, kind: JobKind[Any], request: JobRequest) -> None:
        if request.notification is not None:
            self._notices.target(request.notification)
        kind.check(request)  # the kind's own refusals, as domain errors
        if kind.input is not JobInput.VIDEO:
            return  # a manifest is read when the job runs (a missing one FAILS the job)
        size = self._objects.size(request.source)  # missing: InvalidS3ObjectException
        if size > self._config.max_video_bytes:
            raise VideoTooLargeException(
                f"{request.source.shown} is {size} bytes; the limit is "
                f"{self._config.max_video_bytes} bytes (jobs.max_video_bytes)")

    def job(self, job_id: str, api: str) -> Job[Any]:
        """The job of kind ``api`` with this JobId (ResourceNotFoundException if none)."""
        row = self._store.get(job_id)
        if row is None or row.api != api:
            raise ResourceNotFoundException(f"No {api} job with JobId {job_id}")
        return self._kinds.job(row)

    def list_jobs(self, api: str, token: str | None, max_results: int
                  ) -> tuple[list[Job[Any]], str | None]:
        """One page of the jobs of kind ``api``, newest first, and the next page's token.

        The token carries the last job's (created, JobId): a job started since, or one
        purged, never shifts the pages after it.
        """
        listing = f"jobs/{api}"
        after = decode_token(listing, token, str)
        rows = self._store.newest(api, _list_key(after), max_results + 1)
        page = rows[:max_results]
        more = len(rows) > max_results
        last = page[-1] if page else None
        return ([self._kinds.job(row) for row in page],
                encode_token(listing, f"{last.created!r} {last.job_id}")
                if more and last is not None else None)

    def get(self, job_id: str, api: str, query: ResultsQuery) -> Page:
        """The job and, once it SUCCEEDED, one page of results in the asked order."""
        job = self.job(job_id, api)
        row = job.row
        paging = job.kind.paging
        sort = query.sort or paging.default
        order = paging.orders.get(sort)
        if order is None:
            raise InvalidParameterException(
                f"SortBy {sort} is not one of {', '.join(paging.orders)}")
        aggregate, listing = _listing(paging, query.aggregate)
        # The token names the view (order and listing): another view's token is refused.
        kind = (f"job/{job_id}/{sort}" if aggregate is None
                else f"job/{job_id}/{sort}/{aggregate}")
        offset = decode_token(kind, query.token, int) or 0
        if offset < 0:
            raise InvalidPaginationTokenException()
        if row.state != SUCCEEDED:
            return Page(job, [], None, sort, aggregate)
        limit = min(query.max_results or paging.max_results, paging.max_results)
        items = self._store.results(job_id, order, offset, limit + 1, listing)
        more = len(items) > limit
        return Page(job, items[:limit], encode_token(kind, offset + limit) if more else None,
                    sort, aggregate)

    def running_on(self) -> dict[str, str]:
        """Running job -> the node running its launch (for ``GET /cluster``)."""
        return {job.job_id: job.node for job in self._store.in_state(RUNNING)}


def _list_key(after: str | None) -> tuple[float, str] | None:
    """A List token's key back as (created, JobId); a malformed one is refused."""
    if after is None:
        return None
    created, sep, job_id = after.partition(" ")
    try:
        value = float(created)
    except ValueError:
        raise InvalidPaginationTokenException() from None
    if not sep or not job_id or not math.isfinite(value):
        raise InvalidPaginationTokenException()
    return value, job_id


def _listing(paging: Paging, asked: str | None) -> tuple[str | None, str]:
    """(the AggregateBy used, its rows' listing); (None, '') for a kind with one listing."""
    default = paging.default_listing
    if default is None:
        if asked is not None:
            raise InvalidParameterException("AggregateBy is not a parameter of this operation")
        return None, ""
    aggregate = asked or default
    listing = paging.listings.get(aggregate)
    if listing is None:
        raise InvalidParameterException(
            f"AggregateBy {aggregate} is not one of {', '.join(paging.listings)}")
    return aggregate, listing
