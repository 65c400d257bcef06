"""The escrow sweep reads each due order about once, whatever the backlog: at most 1.2 items read
per release when the backlog is many pages deep (it read 4.55 at 1,000 due of 10,000 when every
pass re-read each shard's head). Pages of 10 make 100 due orders a backlog of ten pages here;
`make bench` (bench/sweep_reads.py) measures 1,000 due of 10,000 with the sweep's own pages."""
from __future__ import annotations

from typing import Any

from tests.integration.sweep import load_backlog, sweep


def test_the_sweep_reads_at_most_1_2_items_per_release_with_a_backlog_of_many_pages(
        wired: Any, settings: Any, clock: Any) -> None:
    load_backlog(settings, clock.now(), total=1_000, due=100)
    seen = sweep(wired.services, settings, page=10)
    assert seen["released"] == 100, seen
    assert seen["items_read_per_release"] <= 1.2, seen
    assert sweep(wired.services, settings, page=10)["released"] == 0  # released orders left the index
