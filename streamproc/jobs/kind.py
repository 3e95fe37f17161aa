"""Job kinds: the extension point of stored-media jobs, as processor kinds and sinks are.

A kind is one Start*/Get* pair (FaceDetection and FaceSearch are the two there are). Its
domain half, here, says

- what its launches read (:class:`~streamproc.dataplane.stored.jobrun.JobInput`) and which
  analysis stage their frames go to (:mod:`~streamproc.dataplane.stored.stages`); the job
  runtime picks the runner of that pair. This node has one: videos into the face stage
  (detection, IoU tracking, embeddings when the kind's builder needs them). Another input
  (a manifest of images) or stage (a classifier over whole frames) is a runner, and a stage
  object, registered in the daemon's wiring;
- its request type and stored form (:class:`~streamproc.jobs.request.JobRequest`);
- what Start checks beside what every job checks (the object and the notification channel);
- what each analysed frame becomes (its ``ResultFactory``, decided at launch: a builder of
  its stage's per-frame value into result elements);
- how its results are sorted and paged (:class:`Paging`: SortBy values onto the row orders
  :class:`~streamproc.storage.jobs.ResultOrder` has, and AggregateBy values onto listings
  for a kind that lists its results more than one way; every kind's results are rows of
  one table, each a timestamp, an optional person index, a listing and a name, and its
  JSON element).

Its wire half (``streamproc.api.job_kinds``) parses the Start parameters into the request
and renders the Get response. The scheduler, the service and the ledger's rules know no
kind. A kind over an input and stage that have a runner is a module in
:mod:`streamproc.jobs.kinds`, one in the API's job kinds and a line in the daemon's wiring.
A job of a kind this node does not register (a newer node's) is never run here: it waits
for a node that knows it (:mod:`.scheduler`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from streamproc.dataplane.stored.jobrun import JobInput, ResultFactory
from streamproc.dataplane.stored.jobrunners import RunnerKey
from streamproc.errors import InternalServerError
from streamproc.jobs.request import JobRequest
from streamproc.rekognition.constants import MAX_JOB_RESULTS
from streamproc.storage.jobs import ResultOrder, StoredJob

Req = TypeVar("Req", bound=JobRequest)


@dataclass(frozen=True)
class Paging:
    """How a kind's Get pages its results."""

    orders: Mapping[str, ResultOrder]  # SortBy -> row order; the first is the default
    max_results: int = MAX_JOB_RESULTS  # MaxResults' default and cap
    # AggregateBy -> the rows' listing, for a kind that lists its results more than one
    # way (the first is the default); empty: one listing ('') and no AggregateBy.
    listings: Mapping[str, str] = field(default_factory=dict)

    @property
    def default(self) -> str:
        """The SortBy used when the request gives none."""
        return next(iter(self.orders))

    @property
    def default_listing(self) -> str | None:
        """The AggregateBy used when the request gives none (None: the kind has none)."""
        return next(iter(self.listings), None)


class JobKind(Protocol[Req]):
    """The domain half of one kind of job."""

    @property
    def api(self) -> str:
        """Its name: the jobs table's ``api``, the metrics' label (FaceDetection)."""

    @property
    def operation(self) -> str:
        """The Start operation, as the completion notice names it (StartFaceDetection)."""

    @property
    def input(self) -> JobInput:
        """What its launches read."""

    @property
    def stage(self) -> str:
        """The analysis stage its frames go to (``stages.FACES``: the analyzer)."""

    @property
    def request_type(self) -> type[Req]:
        """Its request: the stored form is read back with ``request_type.from_stored``."""

    @property
    def paging(self) -> Paging:
        """Its sort orders and page size."""

    def check(self, request: Req) -> None:
        """At Start, beside the object and channel checks: refuse what cannot run."""

    def results(self, request: Req) -> ResultFactory:
        """At launch: what each analysed frame becomes (a builder of its stage's value).

        A domain error FAILs the job with its message.
        """


class UnknownJobKind(InternalServerError):
    """A job of a kind this node has not registered (a newer node's, in a mixed cluster)."""


@dataclass(frozen=True)
class Job(Generic[Req]):
    """A stored job read into domain types: its row and its kind's typed request."""

    row: StoredJob
    kind: JobKind[Req]
    request: Req

    @property
    def job_id(self) -> str:
        """The JobId."""
        return self.row.job_id


class JobKinds:
    """The registered kinds, by name and by request type; built by the daemon's wiring."""

    def __init__(self, kinds: Iterable[JobKind[Any]]) -> None:
        self._by_api: dict[str, JobKind[Any]] = {}
        self._by_request: dict[type[JobRequest], JobKind[Any]] = {}
        for kind in kinds:
            if kind.api in self._by_api or kind.request_type in self._by_request:
                msg = f"two job kinds named {kind.api} or with one request type"
                raise ValueError(msg)
            self._by_api[kind.api] = kind
            self._by_request[kind.request_type] = kind

    def get(self, api: str) -> JobKind[Any]:
        """The kind named ``api``; UnknownJobKind if none is registered here."""
        kind = self._by_api.get(api)
        if kind is None:
            raise UnknownJobKind(f"This node runs no {api} jobs (no such job kind here)")
        return kind

    def of(self, request: JobRequest) -> JobKind[Any]:
        """The kind whose request this is."""
        kind = self._by_request.get(type(request))
        if kind is None:
            raise UnknownJobKind(f"No job kind takes a {type(request).__name__}")
        return kind

    def knows(self, api: str) -> bool:
        """Whether a kind named ``api`` is registered here."""
        return api in self._by_api

    def needs(self) -> set[RunnerKey]:
        """The (input, stage) pairs the registered kinds name (each needs a runner)."""
        return {(kind.input, kind.stage) for kind in self._by_api.values()}

    def job(self, row: StoredJob) -> Job[Any]:
        """The one place a stored request is parsed: the row as its kind's typed job."""
        kind = self.get(row.api)
        return Job(row, kind, kind.request_type.from_stored(row.request))
