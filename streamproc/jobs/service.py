"""Stored-video job rules for the API: Start (checks, idempotency, limits) and Get.

Start checks what it can at once (the object exists and is not too large, the collection
exists and suits this server's model, the notification channel leads somewhere) and
submits the job (the token and the limit on jobs are the ``job.start`` applier's rules, in
:mod:`streamproc.jobs.rules`); nothing runs on the API thread. What needs the video itself
(its format, codec, duration) is found out when the job runs and ends it FAILED with the
reason. Get reads the job as the scheduler left it; results show once it SUCCEEDED.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from streamproc.config import JobsConfig
from streamproc.errors import (
    InvalidPaginationTokenException,
    ResourceNotFoundException,
    VideoTooLargeException,
)
from streamproc.jobs.notices import Notices
from streamproc.jobs.request import JobRequest
from streamproc.jobs.rules import token_job
from streamproc.ledger import Ledger
from streamproc.metrics import JobMetrics
from streamproc.rekognition.constants import FACE_SEARCH, MAX_JOB_RESULTS
from streamproc.rekognition.tokens import decode_token, encode_token
from streamproc.search.searcher import FaceSearcher
from streamproc.storage.jobs import QUEUED, RUNNING, SUCCEEDED, JobStore, StoredJob
from streamproc.storage.objects import ObjectStore

# The wire's VideoJobStatus for each stored state.
WIRE_STATUS = {QUEUED: "IN_PROGRESS", RUNNING: "IN_PROGRESS", SUCCEEDED: "SUCCEEDED",
               "FAILED": "FAILED"}


@dataclass(frozen=True)
class Page:
    """A Get* answer: the job, one page of its results and the token for the next."""

    job: StoredJob
    items: list[dict[str, Any]]
    next_token: str | None


class JobService:
    """Starts and reads jobs; raises domain errors only."""

    def __init__(self, store: JobStore, objects: ObjectStore, searcher: FaceSearcher,
                 notices: Notices, config: JobsConfig, ledger: Ledger,
                 metrics: JobMetrics) -> None:
        self._store = store
        self._objects = objects
        self._searcher = searcher
        self._notices = notices
        self._config = config
        self._ledger = ledger  # job.start's applier (jobs.rules) wakes the scheduler
        self._metrics = metrics

    def start(self, request: JobRequest, token: str | None) -> str:
        """Queue a job and return its JobId (the earlier one for a repeated token).

        A repeated token is answered before any check (the object may be gone by now);
        the token and the limit are decided again where the command is applied.
        """
        now = time.time()
        if token is not None:
            earlier = token_job(self._store, request.api, token, request.to_dict(), now,
                                self._config.retention_s)
            if earlier is not None:
                return earlier.job_id
        self._check(request)
        new_id = uuid.uuid4().hex
        job_id = str(self._ledger.submit("job.start", {
            "job_id": new_id, "api": request.api, "token": token,
            "request": request.to_dict(), "created": now, "max_jobs": self._config.max_jobs,
            "retention_s": self._config.retention_s}))
        if job_id == new_id:  # not an earlier job with the same token
            self._metrics.started.labels(request.api).inc()
        return job_id

    def _check(self, request: JobRequest) -> None:
        if request.notification is not None:
            self._notices.target(request.notification)
        if request.api == FACE_SEARCH:
            assert request.collection_id is not None
            self._searcher.check(request.collection_id)  # missing: ResourceNotFound
        size = self._objects.size(request.video)  # missing: InvalidS3ObjectException
        if size > self._config.max_video_bytes:
            raise VideoTooLargeException(
                f"{request.shown} is {size} bytes; the limit is "
                f"{self._config.max_video_bytes} bytes (jobs.max_video_bytes)")

    def get(self, job_id: str, api: str, sort: str, token: str | None,
            max_results: int | None) -> Page:
        """The job and, once it SUCCEEDED, one page of results in ``sort`` order."""
        job = self._store.get(job_id)
        if job is None or job.api != api:
            raise ResourceNotFoundException(f"No {api} job with JobId {job_id}")
        kind = f"job/{job_id}/{sort}"
        offset = decode_token(kind, token, int) or 0
        if offset < 0:
            raise InvalidPaginationTokenException()
        if job.state != SUCCEEDED:
            return Page(job, [], None)
        limit = min(max_results or MAX_JOB_RESULTS, MAX_JOB_RESULTS)
        items = self._store.results(job_id, sort, offset, limit + 1)
        more = len(items) > limit
        return Page(job, items[:limit], encode_token(kind, offset + limit) if more else None)

    def running_on(self) -> dict[str, str]:
        """Running job -> the node running its launch (for ``GET /cluster``)."""
        return {job.job_id: job.node for job in self._store.in_state(RUNNING)}
