"""Refunds through the app over moto: the Stripe adapter end to end (a recording of Stripe's
documented answers, webhooks signed as Stripe signs them, on our route), and the same refund
triggered from several threads at once, paid once."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.stripe_payments import StripePayments
from tests.integration.api import BUYER, SELLER, SERVICE, Api
from tests.integration.test_stripe_payments import API_KEY, SECRET, FakeStripe, Reply, fake, recording, sign
from tests.support import order_body, pay_refunds

__all__ = ["fake"]  # the recorded-Stripe fixture, used here too
PI = "pi_3PqL0x2eZvKYlo2C1GkqL8sT"


@pytest.fixture
def stripe_app(aws: Any, settings: Any, clock: Any, fake: FakeStripe) -> Iterator[Api]:
    """The app wired for real over moto, paying refunds through Stripe (the local recording)."""
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap

    c = bootstrap.build(settings, clock=clock, payments=StripePayments(API_KEY, SECRET, api_base=fake.url,
                                                                       timeout_seconds=5))
    bootstrap.install(c)
    try:
        with Client(app) as client:
            yield Api(client)
    finally:
        bootstrap.reset()


def full_refund_agreed(api: Api, total: int = 2500) -> tuple[str, str]:
    body = order_body("o-1", total=total, payment={"provider": "stripe", "reference": PI})
    assert api.post("/orders", SERVICE, body).status_code == 201
    shipped = api.post("/orders/o-1/shipment", SELLER, {"carrier": "CP", "tracking_number": "CN1"}).json_body
    api.post("/orders/o-1/tracking-events", SERVICE,
             {"status": "DELIVERED", "occurred_at": shipped["shipment"]["shipped_at"]})
    d = api.open_dispute(requested={"type": "REFUND_FULL"})
    r = api.post(f"/disputes/{d['dispute_id']}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {})
    assert r.status_code == 200, r.json_body
    assert pay_refunds() == 1  # the pay-refunds function, after the request
    return d["dispute_id"], r.json_body["refund"]["refund_id"]


def stripe_event(name: str, refund_id: str, status: str | None = None) -> bytes:
    event = json.loads(recording(name))
    refund = event["data"]["object"]
    refund["metadata"] = {"refund_id": refund_id, "attempt": "1", "order_id": "o-1"}
    if status:
        refund["status"] = status
    return json.dumps(event).encode()


def webhook(api: Api, payload: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json", **({"Stripe-Signature": signature} if signature else {})}
    return api.client.http.post("/payments/webhook", headers=headers, body=payload)


def test_a_refund_goes_to_stripe_once_and_settles_by_its_signed_webhook(stripe_app: Api, fake: FakeStripe) -> None:
    api = stripe_app
    fake.answer(Reply(200, recording("refund_pending.json")))
    dispute_id, refund_id = full_refund_agreed(api)
    [sent] = [r for r in fake.requests if r.path == "/v1/refunds"]
    assert sent.headers["idempotency-key"] == f"{refund_id}:1"
    assert (sent.form["payment_intent"], sent.form["amount"], sent.form["metadata[refund_id]"]) == (PI, "2500",
                                                                                                    refund_id)
    order = api.get("/orders/o-1").json_body
    assert order["escrow"]["refund_pending"]["amount"] == 2500 and order["escrow"]["status"] == "HELD"

    payload = stripe_event("event_refund_updated_succeeded.json", refund_id)
    r = webhook(api, payload, sign(payload))
    assert (r.status_code, r.json_body) == (200, {"received": True, "outcome": "succeeded"})
    order = api.get("/orders/o-1").json_body
    assert order["escrow"]["status"] == "REFUNDED" and order["escrow"]["refunded"]["amount"] == 2500
    assert api.get(f"/disputes/{dispute_id}").json_body["refund"]["status"] == "SUCCEEDED"

    # Replayed, and a late "pending": nothing changes; a succeeded refund stays succeeded.
    assert webhook(api, payload, sign(payload)).json_body["outcome"] == "unchanged"
    late = stripe_event("event_refund_updated_succeeded.json", refund_id, status="pending")
    assert webhook(api, late, sign(late)).json_body["outcome"] == "unchanged"
    assert api.get("/orders/o-1").json_body == order
    assert len([r for r in fake.requests if r.path == "/v1/refunds"]) == 1


def test_webhooks_that_do_not_verify_or_name_no_refund_of_ours_change_nothing(stripe_app: Api,
                                                                              fake: FakeStripe) -> None:
    api = stripe_app
    fake.answer(Reply(200, recording("refund_pending.json")))
    _, refund_id = full_refund_agreed(api)
    before = api.get("/orders/o-1").json_body
    payload = stripe_event("event_refund_updated_succeeded.json", refund_id)

    for signature in (None, sign(payload, secret="whsec_someone_else"), sign(payload, timestamp=1_000_000_000)):
        r = webhook(api, payload, signature)
        assert r.status_code == 400 and r.json_body["error"]["code"] == "INVALID_WEBHOOK", r.json_body
    r = webhook(api, payload.replace(b'"succeeded"', b'"failed"'), sign(payload))  # tampered after signing
    assert r.status_code == 400

    unknown = stripe_event("event_refund_updated_succeeded.json", "r-never-asked")
    r = webhook(api, unknown, sign(unknown))  # answered (Stripe would retry for days), alarmed, not acted on
    assert (r.status_code, r.json_body) == (200, {"received": True, "outcome": "unknown_refund"})
    other = recording("event_charge_succeeded.json")
    assert webhook(api, other, sign(other)).json_body == {"received": True, "outcome": "ignored"}
    assert api.get("/orders/o-1").json_body == before


def test_a_refund_stripe_fails_is_failed_with_its_reason_and_retried_under_a_new_key(stripe_app: Api,
                                                                                     fake: FakeStripe) -> None:
    api = stripe_app
    fake.answer(Reply(200, recording("refund_pending.json")))
    dispute_id, refund_id = full_refund_agreed(api)
    payload = stripe_event("event_refund_failed.json", refund_id)
    assert webhook(api, payload, sign(payload)).json_body["outcome"] == "failed"
    d = api.get(f"/disputes/{dispute_id}").json_body
    assert d["refund"]["status"] == "FAILED" and d["refund"]["failure_reason"]
    order = api.get("/orders/o-1").json_body
    assert order["escrow"]["refund_pending"]["amount"] == 2500  # still owed: never dropped
    assert order["refunds"][0]["attempts"] == 1 and not order["refunds"][0]["needs_attention"]


def run_at_once(n: int, action: Any) -> list[Any]:
    """``action`` from ``n`` threads released together; any exception fails the test."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(action())
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_the_same_refund_sent_and_settled_from_many_threads_at_once_is_paid_once(client: Any, wired: Any) -> None:
    api = Api(client)
    api.delivered_order()
    d = api.open_dispute()
    wired.payments.timeout_next(1)  # the first send fails: the attempt is owed, as after a crash
    r = api.post(f"/disputes/{d['dispute_id']}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {})
    refund_id = r.json_body["refund"]["refund_id"]
    assert pay_refunds() == 1  # the worker's send times out: left owed
    services = wired.services

    run_at_once(8, lambda: services.payments.send("o-1", refund_id, 1))
    assert len(wired.payments.attempts(refund_id)) == 1  # one attempt at the provider, whoever won

    notices = wired.payments.settle_due(now=float("inf"))
    assert len(notices) == 1
    run_at_once(8, lambda: services.payments.settle(notices[0]))
    order = api.get("/orders/o-1", BUYER).json_body
    assert order["escrow"]["refunded"]["amount"] == 500 and order["escrow"]["refund_pending"]["amount"] == 0
    assert wired.payments.sent_for(refund_id) == 500
    assert order["refunds"][0]["status"] == "SUCCEEDED"


def test_with_its_keys_unreadable_the_stage_keeps_deciding_disputes_and_owes_the_refund(
        aws: Any, settings: Any, clock: Any, fake: FakeStripe) -> None:
    """A secret deleted or malformed by a rotation: the webhook is 503 (Stripe sends it again), a
    refund agreed meanwhile is recorded and owed, nothing is sent with no key, nothing is lost."""
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap
    from chalicelib.config import ConfigError

    def unreadable(refresh: bool) -> tuple[str, str]:
        raise ConfigError("STRIPE_SECRET_ARN: the secret cannot be read")

    c = bootstrap.build(settings, clock=clock, payments=StripePayments("", "", api_base=fake.url, timeout_seconds=5,
                                                                       credentials=unreadable))
    bootstrap.install(c)
    try:
        with Client(app) as client:
            api = Api(client)
            dispute_id, refund_id = full_refund_agreed(api)  # the dispute resolves as usual
            assert api.get(f"/disputes/{dispute_id}").json_body["status"] == "RESOLVED"
            order = api.get("/orders/o-1").json_body
            assert order["escrow"]["refund_pending"]["amount"] == 2500 and order["refunds"][0]["status"] == "PENDING"
            assert fake.requests == []  # no key, no request
            assert c.outbox.pending(clock.now() + timedelta(hours=1), 10)  # the refund is still owed
            payload = stripe_event("event_refund_updated_succeeded.json", refund_id)
            r = webhook(api, payload, sign(payload))
            assert r.status_code == 503 and json.loads(r.body)["error"]["code"] == "SERVICE_UNAVAILABLE"
            assert api.get("/orders/o-1").json_body["refunds"][0]["status"] == "PENDING"
    finally:
        bootstrap.reset()
