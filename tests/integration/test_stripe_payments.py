"""The Stripe adapter against a local HTTP server replaying Stripe's documented answers: the real SDK
makes real HTTP requests, and webhooks carry real HMAC-SHA256 signatures."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from chalicelib.adapters.stripe_payments import StripePayments
from chalicelib.domain.ledger import RefundStatus
from chalicelib.domain.money import Money
from chalicelib.ports import InvalidWebhook, PaymentUnavailable, RefundOrder, RefundReceipt

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stripe"
API_KEY = "sk_test_51Offline0000000000000000"
SECRET = "whsec_test_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PI = "pi_3PqL0x2eZvKYlo2C1GkqL8sT"
ORDER = RefundOrder(refund_id="rf-5b21e0", attempt=1, order_id="ord-7f3c2a", payment_reference=PI,
                    amount=Money(2500, "USD"))


def recording(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def recorded(name: str) -> dict[str, Any]:
    return json.loads(recording(name))


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    form: dict[str, str]


@dataclass
class FakeStripe:
    """Answers queued replies in order and records every request it gets."""

    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)

    def answer(self, *replies: Reply) -> None:
        self.replies.extend(replies)


def json_reply(name: str, status: int = 200) -> Reply:
    return Reply(status, recording(name))


def handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            fake.requests.append(Request(self.command, url.path, dict(parse_qsl(url.query)),
                                         {k.lower(): v for k, v in self.headers.items()}, dict(parse_qsl(body))))
            reply = fake.replies.pop(0) if fake.replies else Reply(500, b'{"error": {"type": "api_error"}}')
            if reply.delay and fake.closing.wait(reply.delay):
                return  # the test is over: do not keep a thread sleeping past it
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Request-Id", "req_offline")
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up (time-out test)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        fake.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield fake
    finally:
        fake.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def stripe_payments(fake: FakeStripe) -> StripePayments:
    return StripePayments(API_KEY, SECRET, api_base=fake.url, timeout_seconds=2.0)


# ---- refund ------------------------------------------------------------------------------------
def test_a_refund_posts_the_payment_intent_amount_metadata_and_idempotency_key(fake, stripe_payments):
    fake.answer(json_reply("refund_pending.json"))

    receipt = stripe_payments.refund(ORDER)

    assert receipt == RefundReceipt("PENDING", "re_3PqL0x2eZvKYlo2C1a8ZbHk4", None)
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/refunds")
    assert request.form == {"payment_intent": PI, "amount": "2500", "metadata[refund_id]": "rf-5b21e0",
                            "metadata[attempt]": "1", "metadata[order_id]": "ord-7f3c2a"}
    assert "currency" not in request.form  # a refund inherits the charge's currency
    assert request.headers["idempotency-key"] == "rf-5b21e0:1"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


def test_a_charge_reference_goes_as_charge_and_succeeded_maps_to_succeeded(fake, stripe_payments):
    fake.answer(json_reply("refund_succeeded.json"))

    receipt = stripe_payments.refund(RefundOrder("rf-5b21e0", 1, "ord-7f3c2a", "ch_3PqM4c2eZvKYlo2C0fK9wZ3x",
                                                 Money(2500, "USD")))

    assert receipt == RefundReceipt("SUCCEEDED", "re_3PqM4c2eZvKYlo2C0u7RkW2n", None)
    [request] = fake.requests
    assert request.form["charge"] == "ch_3PqM4c2eZvKYlo2C0fK9wZ3x"
    assert "payment_intent" not in request.form


@pytest.mark.parametrize("status, reason, expected", [
    ("requires_action", None, RefundReceipt(RefundStatus.PENDING, "re_3PqL0x2eZvKYlo2C1a8ZbHk4", None)),
    ("failed", "lost_or_stolen_card", RefundReceipt(RefundStatus.FAILED, "re_3PqL0x2eZvKYlo2C1a8ZbHk4", "lost_or_stolen_card")),
    ("canceled", None, RefundReceipt(RefundStatus.FAILED, "re_3PqL0x2eZvKYlo2C1a8ZbHk4", "canceled")),
])
def test_the_other_refund_statuses_map_onto_receipts(fake, stripe_payments, status, reason, expected):
    fake.answer(Reply(body=json.dumps({**recorded("refund_pending.json"), "status": status,
                                       "failure_reason": reason}).encode()))

    assert stripe_payments.refund(ORDER) == expected


@pytest.mark.parametrize("reference", [None, "", "py_3PqL0x2eZvKYlo2C1", "src_1PqL0x2eZvKYlo2C"])
def test_without_a_payment_reference_the_refund_fails_without_asking_stripe(fake, stripe_payments, reference):
    order = RefundOrder("rf-5b21e0", 1, "ord-7f3c2a", reference, Money(2500, "USD"))

    assert stripe_payments.refund(order) == RefundReceipt("FAILED", None, "NO_PAYMENT_REFERENCE")
    assert stripe_payments.lookup(order) is None
    assert fake.requests == []


@pytest.mark.parametrize("reply", [
    json_reply("error_api.json", 500),
    json_reply("error_api.json", 503),
    json_reply("error_rate_limit.json", 429),
    Reply(409, b'{"error": {"code": "idempotency_key_in_use", "message": "There is currently another in-progress '
               b'request using this Stripe-Idempotency-Key.", "type": "invalid_request_error"}}'),
    Reply(401, b'{"error": {"message": "Invalid API Key provided: sk_test_****0000", "type": "invalid_request_error"}}'),
    Reply(200, b"\x00\xffnot json at all"),
    Reply(502, b"<html><body>Bad Gateway</body></html>", content_type="text/html"),
    Reply(200, b"[]"),
    Reply(200, b'{"id": "re_3PqL0x2eZvKYlo2C1a8ZbHk4", "object": "refund"}'),
    Reply(200, json.dumps({**recorded("refund_pending.json"), "status": "reversed"}).encode()),
    Reply(200, json.dumps({**recorded("refund_pending.json"), "object": "charge"}).encode()),
], ids=["500", "503", "429", "409-key-in-use", "401", "garbage", "html-502", "json-list", "no-status",
        "unknown-status", "not-a-refund"])
def test_an_unknown_outcome_is_payment_unavailable_after_a_single_request(fake, stripe_payments, reply):
    fake.answer(reply, json_reply("refund_pending.json"))  # a retry would be answered: there must be none

    with pytest.raises(PaymentUnavailable):
        stripe_payments.refund(ORDER)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("change", [{"amount": 250}, {"currency": "eur"}], ids=["wrong-amount", "wrong-currency"])
def test_a_refund_created_for_another_amount_or_currency_fails_for_a_person_and_is_never_retried(
        fake, stripe_payments, change):
    fake.answer(Reply(200, json.dumps({**recorded("refund_pending.json"), **change}).encode()))
    receipt = stripe_payments.refund(ORDER)
    assert (receipt.status, receipt.failure_reason) == ("FAILED", "AMOUNT_OR_CURRENCY_MISMATCH")
    assert receipt.provider_refund_id == recorded("refund_pending.json")["id"]
    assert len(fake.requests) == 1


def test_a_server_slower_than_the_timeout_is_payment_unavailable(fake):
    fake.answer(Reply(body=recording("refund_pending.json"), delay=2.0))
    payments = StripePayments(API_KEY, SECRET, api_base=fake.url, timeout_seconds=0.5)

    started = time.monotonic()
    with pytest.raises(PaymentUnavailable):
        payments.refund(ORDER)
    assert time.monotonic() - started < 1.5
    assert len(fake.requests) == 1


def test_an_unreachable_stripe_is_payment_unavailable():
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    payments = StripePayments(API_KEY, SECRET, api_base=f"http://127.0.0.1:{port}", timeout_seconds=0.5)

    with pytest.raises(PaymentUnavailable):
        payments.refund(ORDER)
    with pytest.raises(PaymentUnavailable):
        payments.lookup(ORDER)


@pytest.mark.parametrize("name, code", [("error_charge_already_refunded.json", "charge_already_refunded"),
                                        ("error_amount_too_large.json", "amount_too_large"),
                                        ("error_resource_missing.json", "resource_missing")])
def test_a_documented_refusal_is_a_failed_receipt_with_stripes_code(fake, stripe_payments, name, code):
    fake.answer(json_reply(name, 404 if code == "resource_missing" else 400))

    assert stripe_payments.refund(ORDER) == RefundReceipt("FAILED", None, code)
    assert len(fake.requests) == 1


def test_an_idempotency_key_reused_with_other_parameters_is_payment_unavailable(fake, stripe_payments):
    fake.answer(json_reply("error_idempotency.json", 400))

    with pytest.raises(PaymentUnavailable, match="idempotency key 'rf-5b21e0:1'.*other parameters"):
        stripe_payments.refund(ORDER)


# ---- lookup ------------------------------------------------------------------------------------
def test_lookup_lists_the_payments_refunds_and_finds_the_attempt(fake, stripe_payments):
    fake.answer(json_reply("refund_list.json"), json_reply("refund_list.json"))

    second = stripe_payments.lookup(RefundOrder("rf-5b21e0", 2, "ord-7f3c2a", PI, Money(2500, "USD")))
    first = stripe_payments.lookup(ORDER)

    assert second == RefundReceipt("PENDING", "re_3PqN8d2eZvKYlo2C1cX2vB7m", None)
    assert first == RefundReceipt("FAILED", "re_3PqL0x2eZvKYlo2C1a8ZbHk4", "expired_or_canceled_card")
    assert [(r.method, r.path, r.query) for r in fake.requests] == [
        ("GET", "/v1/refunds", {"payment_intent": PI, "limit": "100"})] * 2
    assert "idempotency-key" not in fake.requests[0].headers


def test_lookup_returns_none_when_stripe_never_saw_the_attempt(fake, stripe_payments):
    fake.answer(json_reply("refund_list.json"), json_reply("error_resource_missing.json", 404))

    assert stripe_payments.lookup(RefundOrder("rf-5b21e0", 3, "ord-7f3c2a", PI, Money(2500, "USD"))) is None
    assert stripe_payments.lookup(ORDER) is None  # no such payment on the account


def test_lookup_follows_the_pages(fake, stripe_payments):
    listed = recorded("refund_list.json")
    newest, oldest = listed["data"]
    fake.answer(Reply(body=json.dumps({**listed, "data": [newest], "has_more": True}).encode()),
                Reply(body=json.dumps({**listed, "data": [oldest], "has_more": False}).encode()))

    assert stripe_payments.lookup(ORDER) == RefundReceipt("FAILED", oldest["id"], "expired_or_canceled_card")
    assert [r.query for r in fake.requests] == [
        {"payment_intent": PI, "limit": "100"},
        {"payment_intent": PI, "limit": "100", "starting_after": newest["id"]}]


def test_lookup_on_a_charge_reference_filters_by_charge(fake, stripe_payments):
    fake.answer(json_reply("refund_list.json"))
    order = RefundOrder("rf-5b21e0", 1, "ord-7f3c2a", "ch_3PqL0x2eZvKYlo2C1nV0pQ7r", Money(2500, "USD"))

    assert stripe_payments.lookup(order) == RefundReceipt("FAILED", "re_3PqL0x2eZvKYlo2C1a8ZbHk4",
                                                          "expired_or_canceled_card")
    assert fake.requests[0].query == {"charge": "ch_3PqL0x2eZvKYlo2C1nV0pQ7r", "limit": "100"}


@pytest.mark.parametrize("reply", [json_reply("error_api.json", 500), json_reply("error_rate_limit.json", 429),
                                   Reply(200, b"garbage"), Reply(200, b'{"object": "list", "data": {}}'),
                                   Reply(200, recording("refund_pending.json"))],
                         ids=["500", "429", "garbage", "data-not-a-list", "not-a-list"])
def test_lookup_on_an_unreadable_stripe_is_payment_unavailable(fake, stripe_payments, reply):
    fake.answer(reply)

    with pytest.raises(PaymentUnavailable):
        stripe_payments.lookup(ORDER)


# ---- cancel (a newer attempt, when an older one paid late) ---------------------------------------
SECOND = RefundOrder("rf-5b21e0", 2, "ord-7f3c2a", PI, Money(2500, "USD"))


def test_cancel_cancels_a_refund_that_still_requires_action(fake, stripe_payments):
    listed = recorded("refund_list.json")
    newest, oldest = listed["data"]
    waiting = {**newest, "status": "requires_action"}
    fake.answer(Reply(body=json.dumps({**listed, "data": [waiting, oldest]}).encode()),
                Reply(body=json.dumps({**waiting, "status": "canceled"}).encode()))

    assert stripe_payments.cancel(SECOND) == RefundReceipt("FAILED", newest["id"], "canceled")
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/refunds"),
                                                           ("POST", f"/v1/refunds/{newest['id']}/cancel")]


def test_cancel_leaves_a_refund_on_its_way_as_it_is(fake, stripe_payments):
    fake.answer(json_reply("refund_list.json"))

    # Stripe cancels only a refund that requires action: a pending one is on its way (a person looks).
    assert stripe_payments.cancel(SECOND) == RefundReceipt("PENDING", "re_3PqN8d2eZvKYlo2C1cX2vB7m", None)
    assert [r.method for r in fake.requests] == ["GET"]


def test_cancel_of_an_attempt_stripe_never_saw_is_none_and_a_refused_cancel_answers_as_found(fake, stripe_payments):
    listed = recorded("refund_list.json")
    newest, oldest = listed["data"]
    waiting = {**newest, "status": "requires_action"}
    fake.answer(json_reply("refund_list.json"),
                Reply(body=json.dumps({**listed, "data": [waiting, oldest]}).encode()),
                json_reply("error_resource_missing.json", 400))

    assert stripe_payments.cancel(RefundOrder("rf-5b21e0", 3, "ord-7f3c2a", PI, Money(2500, "USD"))) is None
    assert stripe_payments.cancel(SECOND) == RefundReceipt("PENDING", newest["id"], None)


# ---- webhooks ----------------------------------------------------------------------------------
def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header, computed the way Stripe documents it."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def test_a_signed_refund_updated_succeeded_is_a_settlement_notice(stripe_payments):
    payload = recording("event_refund_updated_succeeded.json")

    notice = stripe_payments.parse_webhook(payload, {"Stripe-Signature": sign(payload)})

    assert notice is not None
    assert (notice.event_id, notice.refund_id, notice.attempt) == ("evt_3PqL0x2eZvKYlo2C1Wb6sFt2", "rf-5b21e0", 1)
    assert (notice.provider_refund_id, notice.status) == ("re_3PqL0x2eZvKYlo2C1a8ZbHk4", "SUCCEEDED")
    assert notice.amount == Money(2500, "USD")
    assert notice.failure_reason is None


def test_a_signed_refund_failed_is_a_failed_notice_with_its_reason(stripe_payments):
    payload = recording("event_refund_failed.json")

    # header names arrive lower-cased through API Gateway
    notice = stripe_payments.parse_webhook(payload, {"stripe-signature": sign(payload)})

    assert notice is not None
    assert (notice.status, notice.failure_reason, notice.amount) == ("FAILED", "expired_or_canceled_card",
                                                                     Money(2500, "USD"))


@pytest.mark.parametrize("event_type", ["refund.created", "charge.refund.updated"])
def test_the_other_refund_events_are_read_the_same_way(stripe_payments, event_type):
    event = recorded("event_refund_updated_succeeded.json")
    event["type"] = event_type
    event["data"]["object"]["status"] = "pending"
    payload = json.dumps(event).encode()

    notice = stripe_payments.parse_webhook(payload, {"Stripe-Signature": sign(payload)})

    assert notice is not None and (notice.status, notice.refund_id) == ("PENDING", "rf-5b21e0")


def test_a_header_with_several_signatures_verifies_when_one_matches(stripe_payments):
    payload = recording("event_refund_updated_succeeded.json")
    ts = int(time.time())
    header = f"t={ts},v1={'0' * 64},v1={sign(payload, timestamp=ts).split('v1=')[1]},v0=deadbeef"

    assert stripe_payments.parse_webhook(payload, {"Stripe-Signature": header}) is not None


def _tampered(payload: bytes) -> bytes:
    return payload.replace(b'"amount": 2500', b'"amount": 250000')


@pytest.mark.parametrize("make_headers, make_payload", [
    (lambda p: {"Stripe-Signature": sign(p)[:-4] + "beef"}, None),
    (lambda p: {"Stripe-Signature": sign(p, secret="whsec_someone_else")}, None),
    (lambda p: {"Stripe-Signature": sign(p, timestamp=int(time.time()) - 301)}, None),
    (lambda p: {"Stripe-Signature": sign(p)}, _tampered),
    (lambda p: {}, None),
    (lambda p: {"Stripe-Signature": ""}, None),
    (lambda p: {"Stripe-Signature": "garbage"}, None),
    (lambda p: {"Stripe-Signature": sign(p).replace("v1=", "v0=")}, None),
], ids=["bad-signature", "wrong-secret", "too-old", "tampered-body", "missing-header", "empty-header",
        "garbage-header", "no-v1-scheme"])
def test_a_webhook_that_does_not_verify_is_invalid(stripe_payments, make_headers, make_payload):
    payload = recording("event_refund_updated_succeeded.json")
    headers = make_headers(payload)
    body = make_payload(payload) if make_payload else payload

    with pytest.raises(InvalidWebhook):
        stripe_payments.parse_webhook(body, headers)


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b"[1, 2]",
                                     json.dumps({**recorded("event_refund_failed.json"), "data": {}}).encode()],
                         ids=["not-json", "not-utf8", "json-list", "no-object"])
def test_a_signed_payload_that_is_not_a_readable_event_is_invalid(stripe_payments, payload):
    with pytest.raises(InvalidWebhook):
        stripe_payments.parse_webhook(payload, {"Stripe-Signature": sign(payload)})


def test_a_refund_event_with_unreadable_metadata_is_invalid(stripe_payments):
    event = recorded("event_refund_failed.json")
    event["data"]["object"]["metadata"]["attempt"] = "first"
    payload = json.dumps(event).encode()

    with pytest.raises(InvalidWebhook):
        stripe_payments.parse_webhook(payload, {"Stripe-Signature": sign(payload)})


def test_events_that_are_not_about_our_refunds_are_ignored(stripe_payments):
    charge = recording("event_charge_succeeded.json")
    foreign = recorded("event_refund_updated_succeeded.json")
    foreign["data"]["object"]["metadata"] = {}
    foreign_payload = json.dumps(foreign).encode()

    assert stripe_payments.parse_webhook(charge, {"Stripe-Signature": sign(charge)}) is None
    assert stripe_payments.parse_webhook(foreign_payload, {"Stripe-Signature": sign(foreign_payload)}) is None


def test_construction_makes_no_request(fake):
    StripePayments(API_KEY, SECRET, api_base=fake.url)

    assert fake.requests == []


# ---- keys read from a secret: unreadable at start, rotated later ----------------------------------
class Keys:
    """What the stage's secret holds now, and how often it was read."""

    def __init__(self, *keys: tuple[str, str] | None) -> None:
        self.keys, self.reads = list(keys), 0

    def __call__(self, refresh: bool) -> tuple[str, str]:
        from chalicelib.config import ConfigError

        self.reads += 1
        current = self.keys[0] if len(self.keys) == 1 else self.keys.pop(0)
        if current is None:
            raise ConfigError("STRIPE_SECRET_ARN: the secret cannot be read")
        return current


UNAUTHORIZED = Reply(401, json.dumps({"error": {"type": "invalid_request_error",
                                                "message": "Invalid API Key provided: sk_live_old"}}).encode())


def test_keys_unreadable_at_start_leave_refunds_owed_and_are_read_again_later(fake, monkeypatch):
    from chalicelib.adapters import stripe_payments as module

    monkeypatch.setattr(module, "REREAD_SECONDS", 0.0)
    keys = Keys(None, (API_KEY, SECRET))
    payments = StripePayments("", "", api_base=fake.url, timeout_seconds=2.0, credentials=keys)
    with pytest.raises(PaymentUnavailable, match="unreadable"):
        payments.refund(ORDER)  # nothing was sent: the refund stays owed
    assert fake.requests == []
    fake.answer(json_reply("refund_pending.json"))
    assert payments.refund(ORDER).status == "PENDING"  # the secret can be read now
    assert fake.requests[-1].headers["authorization"] == f"Bearer {API_KEY}" and keys.reads == 2


def test_a_refused_key_is_read_again_once_and_the_next_attempt_uses_the_rotated_one(fake, monkeypatch):
    from chalicelib.adapters import stripe_payments as module

    monkeypatch.setattr(module, "REREAD_SECONDS", 0.0)
    keys = Keys(("sk_live_new", SECRET))
    payments = StripePayments("sk_live_old", SECRET, api_base=fake.url, timeout_seconds=2.0, credentials=keys)
    fake.answer(UNAUTHORIZED)
    with pytest.raises(PaymentUnavailable, match="refused our key"):
        payments.refund(ORDER)
    fake.answer(json_reply("refund_pending.json"))
    assert payments.refund(ORDER).status == "PENDING"
    assert [r.headers["authorization"] for r in fake.requests] == ["Bearer sk_live_old", "Bearer sk_live_new"]
    assert [r.headers["idempotency-key"] for r in fake.requests] == ["rf-5b21e0:1"] * 2  # the same attempt


def test_bad_webhook_signatures_read_the_secret_again_at_most_once_per_interval(fake):
    keys = Keys((API_KEY, "whsec_rotated"))
    payments = StripePayments(API_KEY, SECRET, api_base=fake.url, timeout_seconds=2.0, credentials=keys)
    payload = recording("event_refund_updated_succeeded.json")
    for _ in range(20):
        with pytest.raises(InvalidWebhook):
            payments.parse_webhook(payload, {"Stripe-Signature": sign(payload, "whsec_forged")})
    assert keys.reads == 1  # a flood of forgeries is not a flood of secret reads
    # Signed with the rotated secret (now read): verified.
    assert payments.parse_webhook(payload, {"Stripe-Signature": sign(payload, "whsec_rotated")}) is not None


def test_a_webhook_while_the_keys_are_unreadable_is_refused_so_that_stripe_sends_it_again(fake):
    payments = StripePayments("", "", api_base=fake.url, timeout_seconds=2.0, credentials=Keys(None))
    payload = recording("event_refund_updated_succeeded.json")
    with pytest.raises(PaymentUnavailable):
        payments.parse_webhook(payload, {"Stripe-Signature": sign(payload)})
