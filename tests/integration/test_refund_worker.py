"""Refunds are sent off the request path: the buyer's accept commits the refund it owes (ledger and
outbox record) and returns before the payment provider is called; the pay-refunds function
(app.py, fed by the refund queue as Lambda's event source mapping would) sends it, once, under the
same idempotency key however often, or however many workers at once, it is handed the message.
All over the real wiring (moto: DynamoDB, SQS) and the app's own entry points."""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from chalicelib.domain.timefmt import fmt, parse
from chalicelib.relay import REFUND_LEASE
from chalicelib.services.payments import RefundOutcome
from tests.integration.api import BUYER, SELLER, Api
from tests.support import pay_refunds


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


def queued(wired: Any) -> list[dict[str, Any]]:
    """The messages the refund queue holds (read and left there, visible again at once)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    got = sqs.receive_message(QueueUrl=wired.settings.refund_queue_url, MaxNumberOfMessages=10,
                              VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def keys(wired: Any, refund_id: str) -> list[str]:
    """The idempotency keys the provider holds an attempt under, for this refund."""
    return [f"{o.refund_id}:{o.attempt}" for o, _ in wired.payments.attempts(refund_id)]


def owed_refunds(wired: Any) -> list[Any]:
    return [r for r in wired.outbox.pending(wired.clock.now() + timedelta(days=1), 50) if r.kind == "REFUND"]


def accepted(api: Api) -> dict[str, Any]:
    """The seller counters, the buyer accepts: 300 owed to the buyer."""
    api.delivered_order()
    did = api.open_dispute()["dispute_id"]
    offer = api.post(f"/disputes/{did}/offers", SELLER, {"type": "REFUND_PARTIAL",
                                                         "amount": {"amount": 300, "currency": "USD"}})
    assert offer.status_code == 201, offer.json_body
    r = api.post(f"/disputes/{did}/offers/{offer.json_body['offer']['offer_id']}/accept", BUYER, {})
    assert r.status_code == 200, r.json_body
    return dict(r.json_body)


def test_the_buyers_accept_returns_before_the_provider_is_called_and_the_worker_pays_once(api, wired):
    d = accepted(api)
    refund_id = d["refund"]["refund_id"]
    # The request is over: the refund is owed (committed), not sent; the provider never heard of it.
    assert wired.payments.calls == 0 and wired.payments.attempts(refund_id) == []
    assert d["refund"]["status"] == "PENDING"
    assert api.get("/orders/o-1").json_body["escrow"]["refund_pending"]["amount"] == 300
    [record] = owed_refunds(wired)
    [message] = queued(wired)
    assert message == {"order_id": "o-1", "refund_id": refund_id, "attempt": 1, "outbox_id": record.outbox_id}

    assert pay_refunds(wired.settings.refund_queue_url) == 1  # the pay-refunds function
    assert wired.payments.calls == 1 and keys(wired, refund_id) == [f"{refund_id}:1"]
    assert owed_refunds(wired) == [] and queued(wired) == []  # sent: forgotten

    # The queue delivers the same message again (at least once): nothing more leaves.
    for _ in range(2):
        assert wired.refund_worker.handle(message) in ("stale", "unchanged", "pending")
    assert wired.payments.calls == 1 and keys(wired, refund_id) == [f"{refund_id}:1"]

    assert len(wired.payments.settle_due(now=float("inf"))) == 1  # the provider settles; its webhook comes in
    order = api.get("/orders/o-1").json_body
    assert (order["escrow"]["refunded"]["amount"], order["escrow"]["refund_pending"]["amount"]) == (300, 0)
    assert wired.payments.sent_for(refund_id) == 300


def test_two_workers_handed_the_same_refund_at_once_pay_it_once(api, wired):
    refund_id = accepted(api)["refund"]["refund_id"]
    [message] = queued(wired)
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def worker() -> None:
        start.wait()
        try:
            outcomes.append(wired.refund_worker.handle(message))
        except Exception as exc:  # noqa: BLE001 - recorded, and failed below
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    # Both may have called the provider, under the one idempotency key: one attempt, paid once.
    assert keys(wired, refund_id) == [f"{refund_id}:1"]
    wired.payments.settle_due(now=float("inf"))
    assert list(wired.payments.sent) == [f"{refund_id}:1"]
    assert api.get("/orders/o-1").json_body["escrow"]["refunded"]["amount"] == 300
    assert wired.payments.sent_for(refund_id) == 300


def test_a_refund_the_provider_cannot_take_stays_owed_and_the_reconciler_hands_it_over_again(api, wired):
    wired.payments.timeout_next(1)
    refund_id = accepted(api)["refund"]["refund_id"]
    assert pay_refunds(wired.settings.refund_queue_url) == 1  # handled: the outcome is unknown
    assert wired.payments.sent_for(refund_id) == 0
    assert len(owed_refunds(wired)) == 1 and queued(wired) == []  # still owed, in the outbox only
    wired.clock.advance(seconds=REFUND_LEASE.total_seconds() + 1)
    assert wired.services.timers.drain_outbox() == (1, 0)  # the reconciler hands it to the queue again
    assert [m["refund_id"] for m in queued(wired)] == [refund_id]
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    assert keys(wired, refund_id) == [f"{refund_id}:1"] and owed_refunds(wired) == []
    wired.payments.settle_due(now=float("inf"))
    assert list(wired.payments.sent) == [f"{refund_id}:1"] and wired.payments.sent_for(refund_id) == 300


def test_a_refund_the_queue_would_not_take_stays_owed_until_the_reconciler_hands_it_over(api, wired, monkeypatch):
    def unreachable(messages: list[dict[str, Any]]) -> None:
        raise ConnectionError("SQS is unreachable")

    monkeypatch.setattr(wired.relay.refunds, "enqueue", unreachable)
    refund_id = accepted(api)["refund"]["refund_id"]  # the accept stands
    assert queued(wired) == [] and len(owed_refunds(wired)) == 1
    monkeypatch.undo()
    wired.clock.advance(seconds=REFUND_LEASE.total_seconds() + 1)
    assert wired.services.timers.drain_outbox() == (1, 0)
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    assert keys(wired, refund_id) == [f"{refund_id}:1"] and owed_refunds(wired) == []
    wired.payments.settle_due(now=float("inf"))
    assert list(wired.payments.sent) == [f"{refund_id}:1"] and wired.payments.sent_for(refund_id) == 300


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m-{n}", "receiptHandle": f"r-{n}", "body": json.dumps(body), "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:refunds", "awsRegion": "us-east-1"}
                        for n, body in enumerate(bodies)]}


def test_a_message_whose_outcome_cannot_even_be_recorded_is_reported_failed_the_rest_of_its_batch_done(
        api, wired, monkeypatch):
    """The provider is down and the outbox cannot be written either: that message comes back
    (ReportBatchItemFailures); the batch's other message is sent and gone."""
    from app import app

    refund_id = accepted(api)["refund"]["refund_id"]
    [message] = queued(wired)
    unknown = {"order_id": "o-none", "refund_id": "r-none", "attempt": 1, "outbox_id": "r-none:1:0"}
    wired.payments.timeout_next(1)

    def unwritable(record: Any, at: Any) -> None:
        raise ConnectionError("DynamoDB is unreachable")

    monkeypatch.setattr(wired.outbox, "requeue", unwritable)
    answer = app.handler_map["pay-refunds"](sqs_event(message, unknown), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert wired.payments.sent_for(refund_id) == 0 and len(owed_refunds(wired)) == 1  # still owed
    monkeypatch.undo()
    assert app.handler_map["pay-refunds"](sqs_event(message), None) == {"batchItemFailures": []}  # it came back
    wired.payments.settle_due(now=float("inf"))
    assert wired.payments.sent_for(refund_id) == 300 and owed_refunds(wired) == []


def test_the_worker_forgets_only_the_outbox_record_that_owes_its_attempt(api, wired):
    wired.payments.timeout_next(1)
    refund_id = accepted(api)["refund"]["refund_id"]
    [message] = queued(wired)
    assert pay_refunds(wired.settings.refund_queue_url) == 1  # the provider timed out: still owed
    [record] = owed_refunds(wired)
    # A message about another order's refund carrying this refund's ids: nothing sent, record kept.
    assert wired.refund_worker.handle({**message, "order_id": "o-unknown"}) == RefundOutcome.UNKNOWN
    assert wired.refund_worker.handle({**message, "refund_id": "some-other-refund"}) == "refused"
    assert [r.outbox_id for r in owed_refunds(wired)] == [record.outbox_id]
    stale = replace(record, payload={**record.payload, "order_id": "o-unknown"})
    assert wired.outbox.delete_refund(stale) is False  # DynamoDB's condition: it owes something else
    assert [r.outbox_id for r in owed_refunds(wired)] == [record.outbox_id]
    assert wired.refund_worker.handle(message) == RefundOutcome.PENDING  # the true message pays it, once
    assert owed_refunds(wired) == [] and wired.outbox.delete_refund(record) is True  # gone: nothing to keep
    wired.payments.settle_due(now=float("inf"))
    assert list(wired.payments.sent) == [f"{refund_id}:1"] and wired.payments.sent_for(refund_id) == 300


def test_the_relays_clients_wait_seconds_and_try_once_inside_a_request(wired):
    """After a commit, inside an API request of at most 30 s, the relay's calls (SQS, Step
    Functions, EventBridge) fail fast and are not retried by botocore: the reconciler retries."""
    for client in (wired.relay.refunds.client, wired.relay.timers.client, wired.relay.publisher.client):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (2, 5), client.meta.service_model.service_name
        assert config.retries["total_max_attempts"] == 1


def test_a_webhook_hands_the_cancel_of_a_newer_attempt_to_the_pay_refunds_function(api, wired, monkeypatch):
    """Attempt 1 was declined, attempt 2 went out, then attempt 1 pays after all: its webhook (the
    API function) calls no provider; the pay-refunds function cancels attempt 2."""
    wired.payments.fail_next(1)
    refund_id = accepted(api)["refund"]["refund_id"]
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    [failed] = wired.payments.settle_due(now=float("inf"))
    assert failed.status == "FAILED"
    assert wired.services.payments.timer("REFUND_RETRY", "o-1", refund_id, 1) == "retried"
    assert pay_refunds(wired.settings.refund_queue_url) == 1  # attempt 2 is out
    assert keys(wired, refund_id) == [f"{refund_id}:1", f"{refund_id}:2"]

    def no_provider_here(order: Any) -> None:
        raise AssertionError("the webhook called the provider")

    monkeypatch.setattr(wired.payments, "cancel", no_provider_here)
    wired.payments.change_mind(refund_id, 1)  # its notice reaches the app in-process
    monkeypatch.undo()
    assert queued(wired) == [{"op": "cancel", "order_id": "o-1", "refund_id": refund_id, "attempt": 2}]
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    [(_, first), (_, second)] = wired.payments.attempts(refund_id)
    assert (first.status, second.status, second.failure_reason) == ("SUCCEEDED", "FAILED", "canceled")
    wired.payments.settle_due(now=float("inf"))
    order = api.get("/orders/o-1").json_body
    assert (order["escrow"]["refunded"]["amount"], order["escrow"]["refund_pending"]["amount"]) == (300, 0)
    assert wired.payments.sent_for(refund_id) == 300


# ---- the order's ledger is the refund's only record ------------------------------------------------
def raw_dispute(wired: Any, dispute_id: str) -> dict[str, Any]:
    """The dispute's item as DynamoDB holds it (its document, deserialized)."""
    from boto3.dynamodb.types import TypeDeserializer

    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=wired.settings.disputes_table, Key={"dispute_id": {"S": dispute_id}}, ConsistentRead=True)["Item"]
    return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}


def test_the_dispute_item_holds_no_copy_of_the_refund_once_it_settles(api, wired):
    d = accepted(api)
    refund_id = d["refund"]["refund_id"]
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    [settled] = wired.payments.settle_due(now=float("inf"))
    assert settled.status == "SUCCEEDED"
    item = raw_dispute(wired, d["dispute_id"])
    assert "refund" not in item["doc"] and item["doc"]["refund_id"] == refund_id
    assert "SUCCEEDED" not in json.dumps(item, default=str)  # nothing of the refund's fate is on the dispute
    assert item["version"] == d["version"]  # the refund settling wrote no dispute
    shown = api.get(f"/disputes/{d['dispute_id']}").json_body
    assert (shown["refund"]["status"], shown["version"]) == ("SUCCEEDED", d["version"])


def test_a_refund_that_fails_then_succeeds_shows_each_move_in_the_disputes_timeline_in_time_order(api, wired):
    wired.payments.fail_next(1)
    d = accepted(api)
    did, refund_id = d["dispute_id"], d["refund"]["refund_id"]
    wired.clock.advance(minutes=1)
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    [failed] = wired.payments.settle_due(now=float("inf"))
    assert failed.status == "FAILED"
    failing = api.get(f"/disputes/{did}").json_body
    assert (failing["refund"]["status"], failing["refund"]["failure_reason"]) == ("FAILED", "PAYMENT_PROVIDER_DECLINED")
    # Nothing to settle while it waits for its retry: the retry is what it waits for, an hour on.
    retry_at = fmt(parse(failing["refund"]["updated_at"]) + timedelta(hours=1))
    assert failing["deadlines"] == [{"action": "REFUND_RETRY", "actor": "platform", "due_at": retry_at,
                                     "on_expiry": "RETRY_REFUND"}]
    wired.clock.advance(hours=1)
    assert wired.services.payments.timer("REFUND_RETRY", "o-1", refund_id, 1) == "retried"
    wired.clock.advance(minutes=1)
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    [paid] = wired.payments.settle_due(now=float("inf"))
    assert paid.status == "SUCCEEDED"

    shown = api.get(f"/disputes/{did}").json_body
    moves = [(e["event"], e["actor"], e["details"]) for e in shown["timeline"] if e["event"].startswith("dispute.refund_")]
    assert moves == [
        ("dispute.refund_failed", "system",
         {"refund_id": refund_id, "attempt": 1, "failure_reason": "PAYMENT_PROVIDER_DECLINED"}),
        ("dispute.refund_pending", "system", {"refund_id": refund_id, "attempt": 2, "failure_reason": None}),
        ("dispute.refund_succeeded", "system", {"refund_id": refund_id, "attempt": 2, "failure_reason": None}),
    ]
    times = [e["at"] for e in shown["timeline"]]
    assert times == sorted(times) and shown["timeline"][-1]["event"] == "dispute.refund_succeeded"
    assert shown["refund"] == {"refund_id": refund_id, "amount": {"amount": 300, "currency": "USD"}, "status": "SUCCEEDED",
                               "attempts": 2, "failure_reason": None, "updated_at": times[-1]}
    # The case moved when its refund last did; its version stays the resolution's.
    assert shown["updated_at"] == times[-1] > d["updated_at"] and shown["version"] == d["version"]


def test_a_dispute_stored_with_a_copy_of_its_refund_still_reads_and_shows_it(api, wired):
    """Deployed tables hold disputes written while the dispute kept a copy of its refund (a
    ``refund`` map, no ``refund_id``): they read, and show the refund from the order."""
    d = accepted(api)
    did, refund_id = d["dispute_id"], d["refund"]["refund_id"]
    old_copy = {"refund_id": refund_id, "amount": {"amount": 300, "currency": "USD"}, "status": "PENDING",
                "attempts": 1, "failure_reason": None, "settle_by": d["deadlines"][0]["due_at"],
                "created_at": d["updated_at"], "updated_at": d["updated_at"]}
    boto3.resource("dynamodb", region_name="us-east-1").Table(wired.settings.disputes_table).update_item(
        Key={"dispute_id": did}, UpdateExpression="SET doc.refund = :copy REMOVE doc.refund_id",
        ExpressionAttributeValues={":copy": old_copy})
    assert "refund_id" not in raw_dispute(wired, did)["doc"]
    shown = api.get(f"/disputes/{did}").json_body
    assert shown["refund"] == d["refund"] and shown["deadlines"] == d["deadlines"]
    listed = api.get("/disputes?role=buyer").json_body["items"]
    assert [x["refund"] for x in listed] == [d["refund"]]
    assert pay_refunds(wired.settings.refund_queue_url) == 1
    wired.payments.settle_due(now=float("inf"))
    assert api.get(f"/disputes/{did}").json_body["refund"]["status"] == "SUCCEEDED"
