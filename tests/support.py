"""Shared test helpers: a signing key, tokens, a settable clock and request bodies."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://issuer.test/buyer-protection"
AUDIENCE = "buyer-protection-tests"
T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def keypair(name: str = "main") -> tuple[str, str]:
    """(private PEM, public PEM), made once per test run per name."""
    return _keypair(name)


@cache
def _keypair(name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def token(sub: str, groups: tuple[str, ...] = (), *, key: str = "main", headers: dict[str, str] | None = None,
          **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600,
                              "token_use": "id"}
    if groups:
        claims["cognito:groups"] = list(groups)
    claims.update(overrides)
    return jwt.encode(claims, _signing_key(key), algorithm="RS256", headers=headers)


@cache
def _signing_key(name: str) -> Any:
    return serialization.load_pem_private_key(keypair(name)[0].encode(), password=None)


def auth(sub: str, *groups: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, groups)}", "Content-Type": "application/json"}


def service_token(client: str, scopes: tuple[str, ...] = ("orders.write", "tracking.write"), /, *,
                  resource_server: str = "buyer-protection", **overrides: Any) -> str:
    """What Cognito's client-credentials grant returns: an access token, no audience, scopes."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": client, "client_id": client, "iss": ISSUER, "iat": now, "exp": now + 3600,
                              "token_use": "access", "scope": " ".join(f"{resource_server}/{s}" for s in scopes)}
    claims.update(overrides)
    return jwt.encode(claims, _signing_key("main"), algorithm="RS256")


def service_auth(client_id: str = "svc", *scopes: str) -> dict[str, str]:
    token = service_token(client_id, scopes) if scopes else service_token(client_id)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@dataclass
class FakeClock:
    current: datetime = T0

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


def order_body(order_id: str = "o-1", total: int = 2000, currency: str = "USD", **overrides: Any) -> dict[str, Any]:
    body = {
        "order_id": order_id, "buyer_id": "b-1", "seller_id": "s-1",
        "items": [{"item_id": "i-1", "title": "Red dress", "quantity": 1,
                   "unit_price": {"amount": total, "currency": currency}}],
        "total": {"amount": total, "currency": currency},
        "estimated_delivery_at": "2026-11-20T00:00:00Z",
    }
    body.update(overrides)
    return body


def dumps(body: Any) -> str:
    return json.dumps(body)


def empty_account(settings: Any, env: dict[str, str]) -> None:
    """Delete every item, queued message and running timer execution (much faster than a new
    account per test)."""
    ddb, sqs, sfn = _clients()
    for table in settings.tables.values():
        keys = [k["AttributeName"] for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
        for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression=", ".join(
                f"#k{i}" for i in range(len(keys))), ExpressionAttributeNames={f"#k{i}": k for i, k in enumerate(keys)}):
            for item in page["Items"]:
                ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})
    for var in ("TIMER_QUEUE_URL", "TIMER_DLQ_URL", "EVENTS_TAP_QUEUE_URL", "EVIDENCE_QUEUE_URL", "EVIDENCE_DLQ_URL",
                "REFUND_QUEUE_URL", "REFUND_DLQ_URL"):
        while messages := sqs.receive_message(QueueUrl=env[var], MaxNumberOfMessages=10,
                                              VisibilityTimeout=0).get("Messages", []):
            sqs.delete_message_batch(QueueUrl=env[var], Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=env["TIMER_STATE_MACHINE_ARN"],
                                                              statusFilter="RUNNING"):
        for execution in page["executions"]:
            try:
                sfn.stop_execution(executionArn=execution["executionArn"])
            except Exception:  # noqa: BLE001 - moto cannot stop an execution in its first instant;
                pass  # it is a leftover of an earlier test, and its timer finds no dispute anyway


def pay_refunds(queue_url: str | None = None) -> int:
    """The pay-refunds function over every message the refund queue (``queue_url``, else the
    installed app's) holds now, as Lambda's event source mapping would feed it; returns how many
    messages it handled."""
    from app import app
    from chalicelib import bootstrap
    from local.dispatcher import SqsPump

    queue_url = queue_url or bootstrap.container().settings.refund_queue_url

    pump = SqsPump(app, "pay-refunds", queue_url, _clients()[1])
    handled = 0
    while done := pump.pump_once(wait_seconds=0):
        handled += done
    return handled


@cache
def _clients() -> tuple[Any, Any, Any]:
    import boto3

    return tuple(boto3.client(name, region_name="us-east-1") for name in ("dynamodb", "sqs", "stepfunctions"))


@contextmanager
def dynamodb_requests() -> Iterator[list[str]]:
    """Every DynamoDB operation any botocore client sends while the block runs."""
    from botocore.client import BaseClient

    seen: list[str] = []
    original = BaseClient._make_api_call

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            seen.append(operation)
        return original(self, operation, params)

    BaseClient._make_api_call = counting
    try:
        yield seen
    finally:
        BaseClient._make_api_call = original


def local_settings() -> Any:
    """The service's settings over emulated AWS, with this test key pair (tests and benches)."""
    from chalicelib.config import Settings

    return Settings.from_env({"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE, "AUTH_PUBLIC_KEY": keypair()[1],
                              "AWS_DEFAULT_REGION": "us-east-1"})
