"""GetPersonTracking's orders over rows as the person builder writes them (out of order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamproc.config.jobs import PersonTrackingConfig
from streamproc.dataplane.stored.person_results import PersonResults
from streamproc.dataplane.stored.person_stage import PersonAnalysis
from streamproc.dataplane.stored.person_tracker import TrackerSettings
from streamproc.dataplane.stored.stages import Result
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.jobs.kinds.persons import PersonTrackingJobKind
from streamproc.labels.types import Box, Instance
from streamproc.storage.db import Database
from streamproc.storage.jobs import JobStore, ResultRow

JOB = "job-1"


def _written() -> list[Result]:
    """A (left) from 0 ms, B (right) from 200 ms; at 400 ms the pack lists B first.

    B is confirmed at 400 ms, so its held rows and its 400 ms row come before A's 400 ms
    row: at that timestamp the rows are written Index 1, then Index 0.
    """
    builder = PersonResults(TrackerSettings(min_hits=2), 40.0)
    a, b = Instance(Box(0.2, 0.2, 0.1, 0.6), 90.0), Instance(Box(0.6, 0.2, 0.1, 0.6), 90.0)
    out: list[Result] = []
    for ts, persons in ((0, (a,)), (200, (a, b)), (400, (b, a))):
        frame = StoredFrame(np.zeros((270, 480, 3), np.uint8), ts, ts / 1000)
        out += builder.build(frame, PersonAnalysis(persons, ()))
    assert [(r.timestamp_ms, r.person) for r in out][-2:] == [(400, 1), (400, 0)]
    return out


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    db = Database(tmp_path / "streamproc.db")
    db.open()
    store = JobStore(db)
    store.insert(JOB, "PersonTracking", None, {}, 0.0)
    attempt = store.launch(JOB)
    rows = [ResultRow(seq, r.timestamp_ms, r.person, r.item) for seq, r in enumerate(_written())]
    assert store.add_results(JOB, attempt, rows)
    return store


@pytest.mark.parametrize(("sort_by", "keys"), [
    ("TIMESTAMP", [(0, 0), (200, 0), (200, 1), (400, 0), (400, 1)]),
    ("INDEX", [(0, 0), (200, 0), (400, 0), (200, 1), (400, 1)]),
])
def test_each_sort_by_orders_rows_written_out_of_order(store: JobStore, sort_by: str,
                                                       keys: list[tuple[int, int]]) -> None:
    order = PersonTrackingJobKind(None, PersonTrackingConfig()).paging.orders[sort_by]
    rows = store.results(JOB, order, 0, 100)
    assert [(r["Timestamp"], r["Person"]["Index"]) for r in rows] == keys
