"""Fixtures: the app over moto (in-process), with a clock the tests move."""
from __future__ import annotations

import os
from typing import Any, Iterator

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


@pytest.fixture
def settings() -> Any:
    from chalicelib.config import Settings

    return Settings.from_env({"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE, "AUTH_PUBLIC_KEY": keypair()[1],
                              "AWS_DEFAULT_REGION": "us-east-1"})


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def wired(aws: None, settings: Any, clock: FakeClock) -> Iterator[Any]:
    """The real wiring (PynamoDB repository, Powertools idempotency) over moto, with a fake clock."""
    from chalicelib import bootstrap
    from chalicelib.adapters.dynamodb import create_tables

    c = bootstrap.build(settings, clock=clock)
    create_tables()
    from chalicelib.adapters.dynamodb import create_idempotency_table

    create_idempotency_table(settings.idempotency_table)
    bootstrap.install(c)
    yield c
    bootstrap.reset()


@pytest.fixture
def client(wired: Any) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app) as c:
        yield c
