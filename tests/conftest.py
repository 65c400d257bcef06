"""Fixtures. One emulated AWS account (moto, in-process) for the whole run, provisioned once
from local/provision.py; every test starts from empty tables and queues."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from tests.support import AUDIENCE, ISSUER, FakeClock, keypair  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def base_settings() -> Any:
    from chalicelib.config import Settings

    return Settings.from_env({"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE, "AUTH_PUBLIC_KEY": keypair()[1],
                              "AWS_DEFAULT_REGION": "us-east-1"})


@pytest.fixture(scope="session")
def aws_account(base_settings: Any) -> Iterator[dict[str, str]]:
    from moto import mock_aws

    from local.emulator import (
        back_up_items_not_tables,
        forget_finished_executions,
        make_dynamodb_atomic,
        track_instances_weakly,
    )
    from local.post_policy import enforce_post_policy
    from local.provision import provision

    make_dynamodb_atomic()
    back_up_items_not_tables()  # as in `make dev`: a transaction's cost is not the tables' size
    forget_finished_executions()  # as in `make dev`: the timers' history does not grow without end
    track_instances_weakly()  # as in `make dev`: moto forgets the items it copied once they are dropped
    enforce_post_policy()  # as in `make dev`: a presigned POST is held to its policy, as S3 does
    # The Step Functions interpreter is on for the whole run (moto keeps machines made with it
    # off apart from those made without it): timers really run wherever a test starts them.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield provision(base_settings)


@pytest.fixture
def settings(base_settings: Any, aws_account: dict[str, str]) -> Any:
    return replace(base_settings, timer_state_machine_arn=aws_account["TIMER_STATE_MACHINE_ARN"],
                   refund_queue_url=aws_account["REFUND_QUEUE_URL"])


@pytest.fixture
def aws(aws_account: dict[str, str], settings: Any) -> dict[str, str]:
    """The emulated account, emptied: no items, no queued messages, no running timers."""
    from tests.support import empty_account

    empty_account(settings, aws_account)
    return aws_account


@pytest.fixture
def wired(aws: dict[str, str], settings: Any, clock: FakeClock) -> Iterator[Any]:
    """The real wiring (PynamoDB repository, Powertools idempotency, Step Functions timers,
    EventBridge events) over moto, with a clock the test moves."""
    from chalicelib import bootstrap
    from chalicelib.adapters.simulated_payments import SimulatedPayments

    # The simulated provider settles when a test says so (payments.settle_due()); its webhooks
    # reach the installed app in-process.
    payments = SimulatedPayments(lambda notice: bootstrap.container().services.payments.settle(notice),
                                 auto_settle=False)
    c = bootstrap.build(settings, clock=clock, payments=payments)
    c.aws_env = aws  # type: ignore[attr-defined]  # queue URLs etc. of the emulated account
    c.payments = payments  # type: ignore[attr-defined]
    bootstrap.install(c)
    try:
        yield c
    finally:
        payments.close()
        bootstrap.reset()


@pytest.fixture
def client(wired: Any) -> Iterator[Any]:
    from chalice.test import Client

    from app import app
    from tests.contract import checked_chalice_client

    with Client(app) as c:
        checked_chalice_client(c.http)
        yield c


@pytest.fixture(scope="session", autouse=True)
def recorded_calls() -> Iterator[list[Any]]:
    """Every AWS operation the app's functions make in this session, with the function that made
    it (tests/integration/recorder.py); tests/integration/test_least_privilege.py, run last,
    checks them against the template's policies."""
    from tests.integration.recorder import recording

    with recording() as calls:
        yield calls


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The least-privilege checks read what every other test recorded: they run last."""
    items.sort(key=lambda item: item.nodeid.split("::")[0].endswith("test_least_privilege.py"))
