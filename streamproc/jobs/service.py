"""Stored-video job rules for the API: Start (checks, idempotency, limits) and Get.

Start checks what it can at once (the object exists and is not too large, the notification
channel leads somewhere, and whatever the job's kind checks) and submits the job (the token
and the limit on jobs are the ``job.start`` applier's rules, in :mod:`streamproc.jobs.rules`);
nothing runs on the API thread. What needs the video itself (its format, codec, duration)
is found out when the job runs and ends it FAILED with the reason. Get reads the job as the
scheduler left it; results show once it SUCCEEDED, in an order of its kind's.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from streamproc.config import JobsConfig
from streamproc.errors import (
    InvalidPaginationTokenException,
    InvalidParameterException,
    ResourceNotFoundException,
    VideoTooLargeException,
)
from streamproc.jobs.commands import StartJob
from streamproc.jobs.kind import Job, JobKind, JobKinds
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


@dataclass(frozen=True)
class Page:
    """A Get* answer: the job, one page of its results and the token for the next."""

    job: Job[Any]
    items: list[dict[str, Any]]
    next_token: str | None


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
        size = self._objects.size(request.source)  # missing: InvalidS3ObjectException
        if size > self._config.max_video_bytes:
            raise VideoTooLargeException(
                f"{request.source.shown} is {size} bytes; the limit is "
                f"{self._config.max_video_bytes} bytes (jobs.max_video_bytes)")

    def get(self, job_id: str, api: str, query: ResultsQuery) -> Page:
        """The job and, once it SUCCEEDED, one page of results in the asked order."""
        row = self._store.get(job_id)
        if row is None or row.api != api:
            raise ResourceNotFoundException(f"No {api} job with JobId {job_id}")
        job = self._kinds.job(row)
        paging = job.kind.paging
        sort = query.sort or paging.default
        order = paging.orders.get(sort)
        if order is None:
            raise InvalidParameterException(
                f"SortBy {sort} is not one of {', '.join(paging.orders)}")
        kind = f"job/{job_id}/{sort}"
        offset = decode_token(kind, query.token, int) or 0
        if offset < 0:
            raise InvalidPaginationTokenException()
        if row.state != SUCCEEDED:
            return Page(job, [], None)
        limit = min(query.max_results or paging.max_results, paging.max_results)
        items = self._store.results(job_id, order, offset, limit + 1)
        more = len(items) > limit
        return Page(job, items[:limit], encode_token(kind, offset + limit) if more else None)

    def running_on(self) -> dict[str, str]:
        """Running job -> the node running its launch (for ``GET /cluster``)."""
        return {job.job_id: job.node for job in self._store.in_state(RUNNING)}
