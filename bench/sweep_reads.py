"""What the escrow sweep reads per order it releases, with a backlog many pages deep: 10,000
shipped orders, 1,000 of them past their protection period, one sweep with its own page size.
Items read are DynamoDB's ScannedCount of the sweep's Queries (a count, not a timing: moto scans
a whole table for a GSI Query, so its time says nothing about DynamoDB's).

    make bench        (or: python -m bench.sweep_reads)
"""
from __future__ import annotations

from bench.report import emulated_aws_environment, expect, write

TOTAL, DUE = 10_000, 1_000
GOAL = 1.2


def main() -> None:
    emulated_aws_environment()
    from dataclasses import replace

    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.ports import SystemClock
    from local.emulator import back_up_items_not_tables, make_dynamodb_atomic
    from local.provision import provision
    from tests.integration.sweep import load_backlog, sweep
    from tests.support import local_settings

    make_dynamodb_atomic()
    back_up_items_not_tables()
    with mock_aws():
        settings = local_settings()
        env = provision(settings)
        clock = SystemClock()
        container = bootstrap.build(replace(settings, timer_state_machine_arn=env["TIMER_STATE_MACHINE_ARN"]),
                                    clock=clock)
        load_backlog(settings, clock.now(), total=TOTAL, due=DUE)
        seen = sweep(container.services, settings)
        expect(seen["released"] == DUE, f"the sweep released {seen['released']} of {DUE} due")
        again = sweep(container.services, settings)
        expect(again["released"] == 0, "a second sweep found orders still due")
    write("sweep_reads", "one sweep over a backlog written straight to the orders table (moto, in-process); items "
          "read = ScannedCount of the sweep's Queries on the orders table, over the orders released",
          {"orders": TOTAL, "due": DUE}, seen, goal=f"at most {GOAL} items read per release",
          met=seen["items_read_per_release"] <= GOAL,
          before="4.55 items read per release (every pass re-read each shard's first page)")


if __name__ == "__main__":
    main()
