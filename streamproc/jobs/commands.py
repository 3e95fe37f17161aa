"""The jobs' ledger commands, one typed value each (their appliers: :mod:`.rules`).

The kinds and payload keys are the log's contract with older nodes and older logs
(tests/test_command_log.py replays bytes written before commands were typed): a field
here keeps its name, and a payload its JSON shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from streamproc.ledger import Command
from streamproc.storage.jobs import ResultRow


@dataclass(frozen=True)
class StartJob(Command[str]):
    """Queue a job (the token and the limit on active jobs are decided where applied).

    Returns the JobId: this one, or the earlier job the token names.
    """

    kind: ClassVar[str] = "job.start"
    job_id: str
    api: str
    token: str | None
    request: dict[str, Any]  # the kind's stored form (jobs.request): stored and compared
    created: float
    max_jobs: int
    # How long a finished job's token still names it; absent in commands older than the
    # rule (None here, and not written back): such a token never expires.
    retention_s: float | None = None

    def payload(self) -> dict[str, Any]:
        """The fields by name, ``retention_s`` only when it is set."""
        out = super().payload()
        if self.retention_s is None:
            del out["retention_s"]
        return out


@dataclass(frozen=True)
class LaunchJob(Command[int | None]):
    """Start attempt ``after + 1`` on ``node``; its number, or None if the job moved on."""

    kind: ClassVar[str] = "job.launch"
    job_id: str
    after: int
    node: str
    message: str


@dataclass(frozen=True)
class SetJobMetadata(Command[None]):
    """The video's VideoMetadata, as launch ``attempt`` probed it."""

    kind: ClassVar[str] = "job.metadata"
    job_id: str
    attempt: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class AddJobResults(Command[bool]):
    """Result rows of launch ``attempt``; False when that launch no longer owns the job."""

    kind: ClassVar[str] = "job.results"
    job_id: str
    attempt: int
    rows: tuple[ResultRow, ...]

    def payload(self) -> dict[str, Any]:
        """Rows as ``[seq, timestamp_ms, person, item]`` lists.

        Rows in a listing or with a name (content moderation's) add ``listed``: one
        ``[listing, name]`` per row, in the same order. A separate key, not longer rows, so
        an older node reads the rows (it drops the key) and face rows' bytes stay as written.
        """
        out: dict[str, Any] = {
            "job_id": self.job_id, "attempt": self.attempt,
            "rows": [[r.seq, r.timestamp_ms, r.person, r.item] for r in self.rows]}
        if any(r.listing or r.name for r in self.rows):
            out["listed"] = [[r.listing, r.name] for r in self.rows]
        return out

    @classmethod
    def payload_keys(cls) -> frozenset[str]:
        """The fields, and ``listed`` (optional)."""
        return frozenset({"job_id", "attempt", "rows", "listed"})

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> AddJobResults:
        """Back from the lists."""
        rows = payload["rows"]
        listed = payload.get("listed") or [["", ""]] * len(rows)
        if len(listed) != len(rows):
            msg = "job.results: listed and rows differ in length"
            raise ValueError(msg)
        return cls(payload["job_id"], payload["attempt"],
                   tuple(ResultRow(seq, ts, person, item, listing, name)
                         for (seq, ts, person, item), (listing, name)
                         in zip(rows, listed, strict=True)))


@dataclass(frozen=True)
class FinishJob(Command[bool]):
    """End a job (``attempt`` None: whatever launch); False if it had ended."""

    kind: ClassVar[str] = "job.finish"
    job_id: str
    attempt: int | None
    state: str  # SUCCEEDED | FAILED
    message: str
    finished: float
