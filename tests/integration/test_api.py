"""The API through chalice.test.Client over moto: whole flows, and refusals that change nothing."""
from __future__ import annotations

import json
import re

import pytest

from tests.integration.api import BUYER, MODERATOR, SELLER, SERVICE, Api
from tests.support import order_body, pay_refunds, token


@pytest.fixture
def api(client):
    return Api(client)


def test_health_needs_no_token(api):
    r = api.get("/health", None)
    assert (r.status_code, r.json_body) == (200, {"status": "ok"})


def test_a_dispute_plays_out_from_order_to_a_moderators_decision(api, clock, aws, wired):
    order = api.delivered_order()
    assert order["status"] == "DELIVERED" and order["escrow"]["status"] == "HELD"
    assert order["available_actions"] == []  # the carrier service asked: it may do nothing on the order
    mine = api.get("/orders/o-1", BUYER).json_body["available_actions"]
    assert [(a["action"], a["path"]) for a in mine] == [("confirm_receipt", "/orders/o-1/confirm-receipt"),
                                                        ("open_dispute", "/orders/o-1/disputes")]
    assert api.get("/orders/o-1", SELLER).json_body["available_actions"] == []
    assert order["dispute_eligibility"]["can_open"] is True
    d = api.open_dispute()
    did = d["dispute_id"]
    assert d["status"] == "AWAITING_SELLER" and d["deadlines"][0]["action"] == "SELLER_RESPONSE"
    assert [a["action"] for a in d["available_actions"]] == ["make_offer", "cancel", "upload_evidence", "post_message"]
    seller_view = api.get(f"/disputes/{did}", SELLER).json_body["available_actions"]
    assert {a["action"] for a in seller_view} == {"make_offer", "reject", "accept_offer", "upload_evidence",
                                                  "post_message"}
    accept = next(a for a in seller_view if a["action"] == "accept_offer")
    assert accept["path"] == f"/disputes/{did}/offers/{d['offers'][0]['offer_id']}/accept"
    assert api.get("/orders/o-1").json_body["dispute_eligibility"]["why_not"] == "DISPUTE_OPEN"

    offer = api.post(f"/disputes/{did}/offers", SELLER,
                     {"type": "REFUND_PARTIAL", "amount": {"amount": 200, "currency": "USD"}, "message": "200?"})
    assert offer.status_code == 201 and offer.json_body["status"] == "NEGOTIATING"
    assert api.post(f"/disputes/{did}/messages", BUYER, {"body": "200 is too little"}).status_code == 201
    from app import app
    from tests.integration.evidence import Uploads
    from tests.media import jpeg

    assert Uploads(api, app, aws).upload(did, jpeg(gps=True))["status"] == "ACCEPTED"
    r = api.post(f"/disputes/{did}/escalate", BUYER, {"message": "Please decide"})
    assert r.json_body["status"] == "ESCALATED"
    queue = api.get("/moderation/disputes", MODERATOR).json_body["items"]
    assert [q["dispute_id"] for q in queue] == [did]

    r = api.post(f"/disputes/{did}/decision", MODERATOR,
                 {"outcome": "REFUND_PARTIAL", "amount": {"amount": 700, "currency": "USD"},
                  "rationale": "The photos show a different colour from the listing."})
    assert r.status_code == 200, r.json_body
    d = r.json_body
    assert d["status"] == "RESOLVED" and d["resolution"]["decided_by"] == "moderator"
    assert d["refund"]["amount"] == {"amount": 700, "currency": "USD"} and d["refund"]["status"] == "PENDING"
    assert d["deadlines"][0]["action"] == "REFUND_SETTLEMENT"
    order = api.get("/orders/o-1").json_body
    # The seller's part is paid at once; the buyer's 700 is on its way until the provider says so.
    assert order["escrow"]["status"] == "HELD" and order["open_dispute_id"] is None
    assert order["escrow"]["refund_pending"]["amount"] == 700 and order["escrow"]["released"]["amount"] == 1300
    assert order["escrow"]["refunded"]["amount"] == 0
    assert api.get("/moderation/disputes", MODERATOR).json_body["items"] == []
    events = [e["event"] for e in d["timeline"]]
    assert events[0] == "dispute.opened" and events[-1] == "dispute.resolved"

    assert pay_refunds() == 1  # the pay-refunds function sends it, after the request
    assert len(wired.payments.settle_due(now=float("inf"))) == 1  # the card refund settles
    order = api.get("/orders/o-1").json_body
    assert order["escrow"]["status"] == "SETTLED"
    assert order["escrow"]["refunded"]["amount"] == 700 and order["escrow"]["refund_pending"]["amount"] == 0
    d = api.get(f"/disputes/{did}").json_body
    assert d["refund"]["status"] == "SUCCEEDED" and [x["action"] for x in d["deadlines"]] == []
    assert wired.payments.sent_for(d["refund"]["refund_id"]) == 700


def test_return_and_refund_plays_out(api, wired):
    api.delivered_order()
    d = api.open_dispute(requested={"type": "RETURN_AND_REFUND"}, reason="DAMAGED_OR_DEFECTIVE")
    did = d["dispute_id"]
    offer_id = d["offers"][0]["offer_id"]
    d = api.post(f"/disputes/{did}/offers/{offer_id}/accept", SELLER, {}).json_body
    assert d["status"] == "AWAITING_RETURN" and d["deadlines"][0]["actor"] == "buyer"
    d = api.post(f"/disputes/{did}/return-shipment", BUYER, {"carrier": "CP", "tracking_number": "RR1"}).json_body
    assert d["status"] == "RETURN_IN_TRANSIT"
    d = api.post(f"/disputes/{did}/confirm-return", SELLER, {}).json_body
    assert d["resolution"]["outcome"] == "REFUND_FULL" and d["return_shipment"]["tracking_number"] == "RR1"
    assert api.get("/orders/o-1").json_body["escrow"]["status"] == "HELD"  # refund pending
    assert pay_refunds() == 1
    wired.payments.settle_due(now=float("inf"))
    assert api.get("/orders/o-1").json_body["escrow"]["status"] == "REFUNDED"


def test_order_registration_replays_and_refuses_a_different_body(api):
    body = order_body()
    assert api.post("/orders", SERVICE, body).status_code == 201
    again = api.post("/orders", SERVICE, body)
    assert again.status_code == 200 and again.json_body["order_id"] == "o-1"
    other = api.post("/orders", SERVICE, {**body, "buyer_id": "b-9"})
    assert (other.status_code, other.json_body["error"]["code"]) == (409, "ORDER_EXISTS")
    assert api.get("/orders/o-1").json_body["buyer_id"] == "b-1"


@pytest.mark.parametrize("body, status, code", [
    ({"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue", "requested": {"type": "REFUND_FULL"},
      "colour": "red"}, 400, "VALIDATION_ERROR"),
    ({"reason": "NOT_AS_DESCRIBED", "description": 42, "requested": {"type": "REFUND_FULL"}}, 400, "VALIDATION_ERROR"),
    ({"reason": "CHANGED_MIND", "description": "I do not want it anymore", "requested": {"type": "REFUND_FULL"}},
     400, "VALIDATION_ERROR"),
    ({"reason": "NOT_AS_DESCRIBED", "description": "short", "requested": {"type": "REFUND_FULL"}}, 400, "VALIDATION_ERROR"),
    ({"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
      "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 2500, "currency": "USD"}}}, 422, "INVALID_AMOUNT"),
    ({"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
      "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "EUR"}}}, 422, "INVALID_AMOUNT"),
    ({"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
      "requested": {"type": "REFUND_PARTIAL"}}, 422, "INVALID_AMOUNT"),
    ({"reason": "NOT_RECEIVED", "description": "It never came to my door",
      "requested": {"type": "REFUND_FULL"}}, 422, "REASON_NOT_ALLOWED"),
    ({"reason": "WRONG_ITEM", "description": "Ordered red, received blue", "requested": {"type": "REFUND_FULL"},
      "item_ids": ["i-404"]}, 422, "UNKNOWN_ITEM"),
    ("{not json", 400, "MALFORMED_JSON"),
    ("[1, 2]", 400, "MALFORMED_JSON"),
])
def test_bad_dispute_requests_are_refused_and_change_nothing(api, body, status, code):
    api.delivered_order()
    before = api.snapshot()
    r = api.post("/orders/o-1/disputes", BUYER, body)
    assert (r.status_code, r.json_body["error"]["code"]) == (status, code), r.json_body
    assert set(r.json_body["error"]) == {"code", "message", "details"}
    assert api.snapshot() == before
    assert api.get("/disputes?role=buyer").json_body["items"] == []


def test_a_second_open_dispute_is_refused(api):
    api.delivered_order()
    first = api.open_dispute()
    before = api.snapshot(dispute_id=first["dispute_id"])
    r = api.post("/orders/o-1/disputes", BUYER, {"reason": "WRONG_ITEM", "description": "Also the wrong size",
                                                 "requested": {"type": "REFUND_FULL"}})
    assert (r.status_code, r.json_body["error"]["code"]) == (409, "DISPUTE_ALREADY_OPEN")
    assert api.snapshot(dispute_id=first["dispute_id"]) == before
    assert len(api.get("/disputes").json_body["items"]) == 1


def test_the_dispute_window_refusals_say_when(api, clock):
    assert api.post("/orders", SERVICE, order_body()).status_code == 201
    r = api.post("/orders/o-1/disputes", BUYER, {"reason": "NOT_RECEIVED", "description": "Nothing has come yet",
                                                 "requested": {"type": "REFUND_FULL"}})
    assert (r.status_code, r.json_body["error"]["code"]) == (422, "DISPUTE_WINDOW_NOT_OPEN")
    assert r.json_body["error"]["details"]["opens_at"] == "2026-11-20T00:00:00Z"
    clock.advance(days=40)
    r = api.post("/orders/o-1/disputes", BUYER, {"reason": "NOT_RECEIVED", "description": "Nothing has come yet",
                                                 "requested": {"type": "REFUND_FULL"}})
    assert (r.status_code, r.json_body["error"]["code"]) == (422, "DISPUTE_WINDOW_CLOSED")
    assert r.json_body["error"]["details"]["closes_at"] == "2026-12-05T00:00:00Z"
    # Never shipped: the refusal and the order say so, and when the money comes back (its ship-by date).
    order = api.get("/orders/o-1").json_body
    assert order["dispute_eligibility"]["why_not"] == r.json_body["error"]["details"]["why_not"] == "NOT_SHIPPED_YET"
    assert order["dispute_eligibility"]["refund_at"] == r.json_body["error"]["details"]["refund_at"] == order["ship_by"]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not.a.jwt"},
    {"Authorization": "Basic Yjox"},
    {"Authorization": f"Bearer {token('b-1', key='stranger-key')}"},
    {"Authorization": f"Bearer {token('b-1', exp=1)}"},
    {"Authorization": f"Bearer {token('b-1', aud='another-app')}"},
    {"Authorization": f"Bearer {token('b-1', iss='https://evil.test')}"},
])
def test_missing_or_invalid_tokens_get_401(api, headers):
    api.delivered_order()
    r = api.client.http.get("/orders/o-1", headers=headers)
    assert (r.status_code, r.json_body["error"]["code"]) == (401, "UNAUTHENTICATED")


def test_an_unsigned_token_is_refused(api):
    import jwt

    forged = jwt.encode({"sub": "svc", "iss": "x", "aud": "y", "exp": 9999999999, "cognito:groups": ["services"]},
                        key=None, algorithm="none")
    r = api.client.http.post("/orders", headers={"Authorization": f"Bearer {forged}"}, body=json.dumps(order_body()))
    assert r.status_code == 401
    assert api.get("/orders/o-1").status_code == 404


def test_strangers_see_nothing_and_parties_cannot_take_each_others_actions(api):
    api.delivered_order()
    d = api.open_dispute()
    assert api.get("/orders/o-1", ("x-1",)).status_code == 404
    assert api.get(f"/disputes/{d['dispute_id']}", ("x-1",)).status_code == 404
    before = api.snapshot(dispute_id=d["dispute_id"])
    r = api.post(f"/disputes/{d['dispute_id']}/reject", BUYER, {"message": "I reject myself"})
    assert (r.status_code, r.json_body["error"]["code"]) == (403, "NOT_YOUR_ACTION")
    assert api.snapshot(dispute_id=d["dispute_id"]) == before


def test_actions_in_the_wrong_state_are_conflicts_that_change_nothing(api):
    api.delivered_order()
    d = api.open_dispute()
    did = d["dispute_id"]
    before = api.snapshot(dispute_id=did)
    for path, who, body in [(f"/disputes/{did}/escalate", BUYER, {}),
                            (f"/disputes/{did}/return-shipment", BUYER, {"carrier": "CP", "tracking_number": "R"}),
                            (f"/disputes/{did}/confirm-return", SELLER, {}),
                            (f"/disputes/{did}/decision", MODERATOR, {"outcome": "REJECTED", "rationale": "Not yet escalated."}),
                            ("/orders/o-1/confirm-receipt", BUYER, {})]:
        r = api.post(path, who, body)
        assert r.status_code == 409, (path, r.json_body)
    assert api.snapshot(dispute_id=did) == before


def test_a_stale_expected_version_is_a_version_conflict(api):
    d = api.negotiating()
    did = d["dispute_id"]
    before = api.snapshot(dispute_id=did)
    r = api.post(f"/disputes/{did}/escalate", SELLER, {"expected_version": d["version"] - 1})
    assert (r.status_code, r.json_body["error"]["code"]) == (409, "VERSION_CONFLICT")
    assert r.json_body["error"]["details"]["current_version"] == d["version"]
    assert api.snapshot(dispute_id=did) == before
    ok = api.post(f"/disputes/{did}/escalate", SELLER, {"expected_version": d["version"]})
    assert ok.status_code == 200 and ok.json_body["version"] == d["version"] + 1


def test_an_idempotency_key_replays_the_first_response_and_refuses_another_body(api):
    api.delivered_order()
    body = {"reason": "WRONG_ITEM", "description": "A blue one came instead", "requested": {"type": "REFUND_FULL"}}
    key = {"Idempotency-Key": "open-o-1"}
    first = api.post("/orders/o-1/disputes", BUYER, body, headers=key)
    again = api.post("/orders/o-1/disputes", BUYER, body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json_body["dispute_id"] == first.json_body["dispute_id"]
    assert len(api.get("/disputes").json_body["items"]) == 1
    other = api.post("/orders/o-1/disputes", BUYER, {**body, "description": "Something else entirely"}, headers=key)
    assert (other.status_code, other.json_body["error"]["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")


def test_idempotency_keys_are_per_caller(api):
    api.delivered_order()
    d = api.open_dispute()
    key = {"Idempotency-Key": "same-key"}
    a = api.post(f"/disputes/{d['dispute_id']}/messages", BUYER, {"body": "hello"}, headers=key)
    b = api.post(f"/disputes/{d['dispute_id']}/messages", SELLER, {"body": "hello"}, headers=key)
    assert a.status_code == b.status_code == 201
    assert a.json_body["message_id"] != b.json_body["message_id"]


def test_an_idempotency_key_outside_openapis_pattern_is_a_400_and_changes_nothing(api):
    import re

    import yaml

    from tests.integration.test_openapi import SPEC_PATH

    schema = yaml.safe_load(SPEC_PATH.read_text())["components"]["parameters"]["IdempotencyKey"]["schema"]
    documented = re.compile(schema["pattern"])
    api.delivered_order()
    d = api.open_dispute()
    path = f"/disputes/{d['dispute_id']}/messages"
    for key in ("caf\u00e9", "a\u00a0b", "\u2028", "x" * (schema["maxLength"] + 1)):
        assert not (documented.fullmatch(key) and len(key) <= schema["maxLength"]), key
        r = api.post(path, BUYER, {"body": "hello"}, headers={"Idempotency-Key": key})
        assert (r.status_code, r.json_body["error"]["details"]) == (400, {"header": "Idempotency-Key"}), key
    assert api.get(path).json_body["items"] == []
    for key in ("0ded5b2e-4a7f-4b1e-9c3d-3f1e2a6b7c8d", " ~!", "k" * schema["maxLength"]):
        assert documented.fullmatch(key)
        assert api.post(path, BUYER, {"body": "hello"}, headers={"Idempotency-Key": key}).status_code == 201, key


def test_a_refused_request_is_not_remembered_under_its_idempotency_key(api, clock):
    assert api.post("/orders", SERVICE, order_body()).status_code == 201
    body = {"reason": "NOT_RECEIVED", "description": "Nothing has come yet", "requested": {"type": "REFUND_FULL"}}
    key = {"Idempotency-Key": "retry-me"}
    assert api.post("/orders/o-1/disputes", BUYER, body, headers=key).status_code == 422
    clock.advance(days=20)
    assert api.post("/orders/o-1/disputes", BUYER, body, headers=key).status_code == 201


def test_confirming_receipt_releases_escrow_and_closes_the_window(api):
    api.delivered_order()
    r = api.post("/orders/o-1/confirm-receipt", BUYER, {})
    assert r.status_code == 200
    assert r.json_body["escrow"]["status"] == "RELEASED" and r.json_body["status"] == "COMPLETED"
    assert r.json_body["dispute_eligibility"]["why_not"] == "ESCROW_RELEASED"
    r = api.post("/orders/o-1/disputes", BUYER, {"reason": "WRONG_ITEM", "description": "A blue one came instead",
                                                 "requested": {"type": "REFUND_FULL"}})
    assert r.status_code == 422


def test_cancelling_frees_the_order_and_keeps_the_escrow_held(api):
    api.delivered_order()
    d = api.open_dispute()
    r = api.post(f"/disputes/{d['dispute_id']}/cancel", BUYER, {"message": "Sorted it out with the seller"})
    assert r.json_body["status"] == "CANCELLED" and r.json_body["deadlines"] == []
    order = api.get("/orders/o-1").json_body
    assert order["escrow"]["status"] == "HELD" and order["open_dispute_id"] is None
    assert api.post("/orders/o-1/confirm-receipt", BUYER, {}).status_code == 200


def test_messages_thread_oldest_first_and_closed_disputes_take_no_more(api, clock):
    api.delivered_order()
    did = api.open_dispute()["dispute_id"]
    for who, text in [(BUYER, "first"), (SELLER, "second"), (MODERATOR, "third")]:
        clock.advance(seconds=1)
        assert api.post(f"/disputes/{did}/messages", who, {"body": text}).status_code == 201
    page = api.get(f"/disputes/{did}/messages?limit=2").json_body
    rest = api.get(f"/disputes/{did}/messages?limit=2&cursor={page['next_cursor']}").json_body
    assert [m["body"] for m in page["items"] + rest["items"]] == ["first", "second", "third"]
    assert [m["author_role"] for m in page["items"]] == ["buyer", "seller"]
    api.post(f"/disputes/{did}/cancel", BUYER, {})
    r = api.post(f"/disputes/{did}/messages", BUYER, {"body": "too late"})
    assert (r.status_code, r.json_body["error"]["code"]) == (409, "DISPUTE_CLOSED")
    assert api.post(f"/disputes/{did}/messages", BUYER, {"body": ""}).status_code == 400
    assert api.post(f"/disputes/{did}/messages", BUYER, {"body": "x" * 2001}).status_code == 400


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "role=admin", "status=OPEN", "cursor=%%%"])
def test_bad_list_parameters_are_400(api, query):
    r = api.get(f"/disputes?{query}")
    assert r.status_code == 400, r.json_body


def test_the_moderation_queue_shows_overdue_cases(api, clock):
    d = api.escalated()
    assert api.get("/moderation/disputes?overdue=true", MODERATOR).json_body["items"] == []
    clock.advance(days=15)
    items = api.get("/moderation/disputes?overdue=true", MODERATOR).json_body["items"]
    assert [i["dispute_id"] for i in items] == [d["dispute_id"]]
    assert api.get("/moderation/disputes", BUYER).status_code == 403


def test_my_lists_by_role(api):
    api.delivered_order("o-1")
    api.delivered_order("o-2")
    api.open_dispute("o-2")
    assert [o["order_id"] for o in api.get("/orders?role=buyer").json_body["items"]] == ["o-2", "o-1"] or \
        {o["order_id"] for o in api.get("/orders?role=buyer").json_body["items"]} == {"o-1", "o-2"}
    assert len(api.get("/orders?role=seller", SELLER).json_body["items"]) == 2
    assert api.get("/orders?role=seller", BUYER).json_body["items"] == []
    assert len(api.get("/disputes?role=seller&status=AWAITING_SELLER", SELLER).json_body["items"]) == 1
    assert api.get("/disputes?role=seller&status=RESOLVED", SELLER).json_body["items"] == []


def test_message_templates_by_reason(api):
    r = api.get("/message-templates?reason=NOT_RECEIVED").json_body
    texts = [t["text"] for t in r["items"]]
    assert "Tracking number isn't available and seller didn't send the parcel." in texts
    assert all(t["reason"] == "NOT_RECEIVED" for t in r["items"])
    assert api.get("/message-templates?reason=BORED").status_code == 400


def test_the_scheduled_sweep_releases_escrow_when_protection_ends(api, client, clock):
    api.delivered_order("o-1")
    api.delivered_order("o-2")
    api.open_dispute("o-2")
    clock.advance(days=61)
    from app import app

    result = app.handler_map["release-escrow"]({"detail-type": "Scheduled Event", "source": "aws.events",
                                                "detail": {}, "resources": [], "time": "2026-12-31T00:00:00Z",
                                                "region": "us-east-1", "account": "1", "id": "x", "version": "0"},
                                               None)
    assert result == {"released": ["o-1"]}
    assert api.get("/orders/o-1").json_body["escrow"]["status"] == "RELEASED"
    assert api.get("/orders/o-2").json_body["escrow"]["status"] == "HELD"


def test_every_log_line_of_a_dispute_request_names_the_dispute_and_its_order(api):
    import io
    import logging

    from chalicelib.logs import logger

    api.delivered_order()
    did = api.open_dispute()["dispute_id"]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    level = logger.log_level
    logger.setLevel(logging.INFO)
    try:
        api.post(f"/disputes/{did}/messages", BUYER, {"body": "hello"})
        api.post(f"/disputes/{did}/escalate", BUYER, {})  # refused: logged too
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) >= 2, "the requests logged nothing"
    assert all(line.get("dispute_id") == did and line.get("order_id") == "o-1" for line in lines), lines


@pytest.mark.parametrize("query", ["limit=%C2%B2", "limit=%EF%BC%91"])
def test_unicode_digits_in_limit_are_400_not_500(api, query):
    assert api.get(f"/disputes?{query}").status_code == 400


def test_deeply_nested_json_is_400(api):
    api.delivered_order()
    r = api.post("/orders/o-1/disputes", BUYER, "[" * 30000 + "]" * 30000)
    assert (r.status_code, r.json_body["error"]["code"]) == (400, "MALFORMED_JSON")


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+01:00"])
def test_absurd_timestamps_are_400_and_store_nothing(api, when):
    r = api.post("/orders", SERVICE, order_body(estimated_delivery_at=when))
    assert (r.status_code, r.json_body["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert api.get("/orders/o-1").status_code == 404


def test_a_scan_before_shipment_is_refused(api):
    api.delivered_order()
    r = api.post("/orders/o-1/tracking-events", SERVICE, {"status": "DELIVERED", "occurred_at": "2026-10-01T00:00:00Z"})
    assert (r.status_code, r.json_body["error"]["code"]) == (422, "INVALID_TIMESTAMP")


def test_after_the_seller_refuses_it_is_the_buyers_turn(api):
    d = api.negotiating()
    assert d["deadlines"][0] == {**d["deadlines"][0], "action": "NEGOTIATION", "actor": "buyer"}


def test_a_decision_outside_escalation_is_a_state_conflict_whatever_the_amount(api):
    d = api.negotiating()
    r = api.post(f"/disputes/{d['dispute_id']}/decision", MODERATOR,
                 {"outcome": "REFUND_PARTIAL", "amount": {"amount": 99999, "currency": "USD"}, "rationale": "Too early."})
    assert (r.status_code, r.json_body["error"]["code"]) == (409, "INVALID_STATE")


def test_the_sweep_is_not_blocked_by_disputed_orders(api, clock):
    from app import app

    for i in range(3):
        api.delivered_order(f"d-{i}")
        api.open_dispute(f"d-{i}")
    api.delivered_order("free")
    clock.advance(days=61)
    result = app.handler_map["release-escrow"]({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {},
                                                "resources": [], "time": "2027-01-01T00:00:00Z", "region": "us-east-1",
                                                "account": "1", "id": "x", "version": "0"}, None)
    assert result == {"released": ["free"]}


def test_upload_evidence_is_not_offered_once_the_party_has_taken_its_ten_places(api):
    api.delivered_order()
    did = api.open_dispute()["dispute_id"]
    slot = {"file_name": "a.pdf", "content_type": "application/pdf", "size_bytes": 100}
    for _ in range(10):
        assert api.post(f"/disputes/{did}/evidence", BUYER, slot).status_code == 201
    buyer = [a["action"] for a in api.get(f"/disputes/{did}", BUYER).json_body["available_actions"]]
    seller = [a["action"] for a in api.get(f"/disputes/{did}", SELLER).json_body["available_actions"]]
    assert "upload_evidence" not in buyer and "post_message" in buyer and "upload_evidence" in seller
    r = api.post(f"/disputes/{did}/evidence", BUYER, slot)
    assert r.status_code == 422 and r.json_body["error"]["code"] == "EVIDENCE_LIMIT_REACHED"


def test_each_action_requires_the_fields_its_route_validates_with(api):
    from app import app

    # Every listed action is a route of the app, and asks for what that route's schema requires.
    routes = {view.view_name: (path, method, vars(view.view_function).get("body_schema"))
              for path, methods in app.routes.items() for method, view in methods.items()}
    api.delivered_order()
    listed = api.get("/orders/o-1", BUYER).json_body["available_actions"]
    d = api.open_dispute()
    listed += d["available_actions"] + api.get(f"/disputes/{d['dispute_id']}", SELLER).json_body["available_actions"]
    assert {a["action"] for a in listed} >= {"open_dispute", "cancel", "make_offer", "reject", "upload_evidence"}
    for action in listed:
        path, method, schema = routes[action["action"]]
        assert action["method"] == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", path), action["path"])
        assert action["required"] == schema["required"]
    required = {a["action"]: a["required"] for a in d["available_actions"]}
    assert required["make_offer"] == ["type"] and required["cancel"] == []
    order = api.get("/orders/o-1", BUYER).json_body
    assert {a["action"]: a["required"] for a in order["available_actions"]} == {}  # a dispute is open


def test_a_full_refund_offer_shows_its_amount_in_the_timeline(api):
    api.delivered_order()
    d = api.open_dispute()
    r = api.post(f"/disputes/{d['dispute_id']}/offers", SELLER, {"type": "REFUND_FULL"})
    assert r.status_code == 201
    made = [e for e in r.json_body["timeline"] if e["event"] == "dispute.offer_made"]
    assert made[-1]["details"]["amount"] == r.json_body["offer"]["amount"] == {"amount": 2000, "currency": "USD"}
