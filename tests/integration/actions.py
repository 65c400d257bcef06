"""Every action a party, a moderator, a timer or the payment provider takes, each played through
the app's own entry points with the AWS operations it makes counted (every botocore call, per
service and operation, the relay's deliveries included; the refund worker's apart). Used by the DynamoDB-calls test and by
`make bench`'s cost per dispute (bench/cost.py)."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.integration.api import BUYER, MODERATOR, SELLER, Api

ACTIONS = ("open", "offer", "accept", "reject", "escalate", "cancel", "decision", "message", "timer expiry",
           "refund webhook")


READ_UNIT, WRITE_UNIT = 4096, 1024  # bytes per DynamoDB read and write capacity unit
CAPACITY = "dynamodb capacity"  # the service name under which estimated units are counted


def _size(value: Any) -> int:
    """About the bytes DynamoDB bills for an item or request (attribute names and values)."""
    return len(json.dumps(value, separators=(",", ":"))) if value else 0


def _units(size: int, unit: int) -> int:
    return max(1, -(-size // unit))


def capacity(operation: str, params: dict[str, Any], answer: dict[str, Any]) -> tuple[float, float]:
    """(read units, write units) of one DynamoDB request, estimated from the items' sizes (moto
    answers every ReturnConsumedCapacity with a constant)."""
    consistent = 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "GetItem":
        return _units(_size(answer.get("Item")), READ_UNIT) * consistent, 0.0
    if operation in ("Query", "Scan"):
        return _units(sum(_size(i) for i in answer.get("Items", [])), READ_UNIT) * consistent, 0.0
    if operation == "PutItem":
        return 0.0, _units(_size(params.get("Item")), WRITE_UNIT)
    if operation == "UpdateItem":  # the request carries the whole document it sets
        return 0.0, _units(_size(params), WRITE_UNIT)
    if operation == "DeleteItem":
        return 0.0, 1.0
    if operation == "TransactWriteItems":  # two units per item and KB, condition checks included
        return 0.0, sum(2 * _units(_size(next(iter(a.values()))), WRITE_UNIT) for a in params["TransactItems"])
    if operation == "BatchWriteItem":
        return 0.0, sum(_units(_size(r.get("PutRequest", {}).get("Item")), WRITE_UNIT)
                        for requests in params["RequestItems"].values() for r in requests)
    return 0.0, 0.0


@contextmanager
def aws_calls() -> Iterator[Counter[tuple[str, str]]]:
    """(service, operation) -> how many calls a botocore client made on this thread while the
    block ran (the emulator's own Step Functions threads are not the app), with the DynamoDB
    capacity units they consumed, estimated, under (CAPACITY, "read") and (CAPACITY, "write")."""
    import threading

    from botocore.client import BaseClient

    seen: Counter[tuple[str, str]] = Counter()
    original = BaseClient._make_api_call
    thread = threading.get_ident()

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        answer = original(self, operation, params)
        if threading.get_ident() == thread:
            service = self.meta.service_model.service_name
            seen[(service, operation)] += 1
            if service == "dynamodb":
                read, write = capacity(operation, params, answer)
                seen[(CAPACITY, "read")] += read  # type: ignore[assignment]
                seen[(CAPACITY, "write")] += write  # type: ignore[assignment]
        return answer

    BaseClient._make_api_call = counting
    try:
        yield seen
    finally:
        BaseClient._make_api_call = original


def dynamodb(calls: Counter[tuple[str, str]]) -> int:
    return sum(n for (service, _), n in calls.items() if service == "dynamodb")


def timer_event(kind: str, timer: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": json.dumps({"kind": kind, "timer": timer}),
                         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:timers", "awsRegion": "us-east-1"}]}


class Player:
    """Plays disputes through the API (and the timer and webhook handlers), counting each step."""

    def __init__(self, api: Api, wired: Any, clock: Any) -> None:
        self.api, self.wired, self.clock = api, wired, clock
        self.counted: dict[str, Counter[tuple[str, str]]] = {}
        self.last = ""  # the last action played: the one that owed the refund the worker sends

    def record(self, action: str, calls: Counter[tuple[str, str]]) -> None:
        self.counted[action] = calls
        self.last = action

    def pay_refunds(self) -> None:
        """The pay-refunds function, off the request path, sends what the last action owed; its
        calls are kept under "<action>: refund send"."""
        from tests.support import pay_refunds

        with aws_calls() as calls:
            assert pay_refunds(self.wired.settings.refund_queue_url) == 1
        self.counted[f"{self.last}: refund send"] = calls

    def step(self, action: str, method: str, path: str, who: tuple[str, ...], body: Any = None,
             status: int = 200) -> dict[str, Any]:
        with aws_calls() as calls:
            r = self.api.call(method, path, who, {} if body is None and method == "POST" else body)
        assert r.status_code == status, (action, r.status_code, r.json_body)
        self.record(action, calls)
        return dict(r.json_body)

    def open(self, order_id: str, requested: dict[str, Any] | None = None) -> dict[str, Any]:
        self.api.delivered_order(order_id)
        return self.step("open", "POST", f"/orders/{order_id}/disputes", BUYER, {
            "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
            "requested": requested or {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}},
            status=201)

    def negotiated(self, order_id: str) -> None:
        """Opened, countered, accepted: a refund agreed by the parties, then settled."""
        d = self.open(order_id)
        did = d["dispute_id"]
        offer = self.step("offer", "POST", f"/disputes/{did}/offers", SELLER, {
            "type": "REFUND_PARTIAL", "amount": {"amount": 300, "currency": "USD"}, "message": "300?"}, status=201)
        self.step("message", "POST", f"/disputes/{did}/messages", BUYER, {"body": "Fine, 300."}, status=201)
        self.step("accept", "POST", f"/disputes/{did}/offers/{offer['offer']['offer_id']}/accept", BUYER)
        self.settle()

    def contested(self, order_id: str) -> None:
        """Opened, rejected, escalated, decided by a moderator: a refund, then settled."""
        did = self.open(order_id)["dispute_id"]
        self.step("reject", "POST", f"/disputes/{did}/reject", SELLER, {"message": "Colour is as listed"})
        self.step("escalate", "POST", f"/disputes/{did}/escalate", SELLER, {"message": "Please decide"})
        self.step("decision", "POST", f"/disputes/{did}/decision", MODERATOR, {
            "outcome": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"},
            "rationale": "The photos show a different colour from the listing."})
        self.settle()

    def auto_resolved(self, order_id: str) -> None:
        """Opened; the seller never answers; the deadline's timer grants the request."""
        from app import app

        did = self.open(order_id)["dispute_id"]
        self.clock.advance(days=8)
        with aws_calls() as calls:
            app.handler_map["timer-fired"](timer_event("EXPIRE", {"dispute_id": did, "action": "SELLER_RESPONSE"}),
                                           None)
        self.record("timer expiry", calls)
        assert self.api.get(f"/disputes/{did}").json_body["status"] == "RESOLVED"
        self.settle()

    def cancelled(self, order_id: str) -> None:
        did = self.open(order_id)["dispute_id"]
        self.step("cancel", "POST", f"/disputes/{did}/cancel", BUYER, {"message": "Sorted it out"})

    def settle(self) -> None:
        """The provider settles the refund owed and calls our webhook route, signed."""
        payments = self.wired.payments
        answers: list[Any] = []

        def webhook(notice: Any) -> None:
            payload, headers = payments.sign(notice)
            answers.append(self.api.client.http.post("/payments/webhook", headers=headers, body=payload))

        payments._deliver = webhook  # this test's webhook goes over the route, not in-process
        self.pay_refunds()
        with aws_calls() as calls:
            assert len(payments.settle_due(now=float("inf"))) == 1
        assert [a.status_code for a in answers] == [200], [a.body for a in answers]
        assert answers[0].json_body["outcome"] == "succeeded", answers[0].json_body
        self.record("refund webhook", calls)
