"""A content-moderation launch halted mid-way, then relaunched: nothing of it survives.

JobStore.launch deletes a job's rows; these tests pin that for both listings (TIMESTAMPS and
SEGMENTS, kept apart by the rows' listing) and that the halted launch's late writes, open
segments included, are refused rather than mixed into the new launch's views.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_moderation_jobs import Jobs, _moderation_rows, _segment

from streamproc.storage.jobs import SUCCEEDED


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    made = Jobs(tmp_path)
    yield made
    made.db.close()


def _names(page: dict[str, object]) -> list[tuple[int, str]]:
    items = page["ModerationLabels"]
    assert isinstance(items, list)
    return [(i["Timestamp"], i["ModerationLabel"]["Name"]) for i in items]


def test_a_relaunch_drops_the_halted_launchs_rows_in_both_listings(jobs: Jobs) -> None:
    job_id = jobs.start()
    first = jobs.store.launch(job_id)
    assert jobs.store.add_results(job_id, first, _moderation_rows())  # then halted
    second = jobs.store.launch(job_id)
    assert second == first + 1
    # The halted launch's end-of-launch flush arrives late: refused, nothing written.
    assert not jobs.store.add_results(job_id, first, [_segment(9, "Alcohol", 0, 800)])
    assert jobs.store.add_results(job_id, second, [_segment(0, "Gambling", 200, 400)])
    assert jobs.store.finish(job_id, second, SUCCEEDED, "", 1.0)
    assert _names(jobs.get(job_id)) == []
    assert _names(jobs.get(job_id, AggregateBy="SEGMENTS")) == [(200, "Gambling")]
    assert _names(jobs.get(job_id, AggregateBy="SEGMENTS", SortBy="NAME")) == [
        (200, "Gambling")]
