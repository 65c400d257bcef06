"""Seller standing and buyer signals over DynamoDB (moto): what a read costs in requests for a
seller with 10,000 orders and 1,000 disputes, the HTTP shapes, and the stateful property test of
tests/standing_machine.py for a shorter run than over the fakes."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import mapping
from chalicelib.adapters.memory import RecordingPublisher, RecordingTimers
from chalicelib.adapters.simulated_payments import SimulatedPayments
from chalicelib.domain.disputes import Dispute
from chalicelib.domain.orders import Order
from chalicelib.domain.policy import Policy
from tests import standing_machine
from tests.standing_seed import seed_seller
from tests.support import T0, FakeClock, auth, dumps, dynamodb_requests, empty_account, order_body, service_auth

MODERATOR = standing_machine.MODERATOR


@pytest.mark.parametrize(("recent", "window", "queries", "level"), [
    (10, 365, 3, "AT_RISK"),  # few recent orders: the long window, its first days and its months
    (5_000, 90, 1, "GOOD"),  # a busy seller: the recent days alone
])
def test_reading_a_big_sellers_standing_costs_a_fixed_few_requests(wired: Any, settings: Any, recent: int,
                                                                   window: int, queries: int, level: str) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    seeded = seed_seller(client, settings.moderation_table, "s-big", wired.clock.now().date(), recent_orders=recent)
    with dynamodb_requests() as first:
        wired.services.moderation.standing(MODERATOR, "s-big")
    # the new level published with its event, then the event delivered (its outbox record deleted)
    assert first == ["Query"] * queries + ["TransactWriteItems", "BatchWriteItem"]
    with dynamodb_requests() as seen:
        s = wired.services.moderation.standing(MODERATOR, "s-big")
    assert seen == ["Query"] * queries  # no scan, no read per order, whatever the seller's size
    if window == 365:
        assert (s.orders, s.disputes, s.defects, s.defective_buyers) == (seeded.orders, seeded.disputes,
                                                                         seeded.defects, seeded.buyers)
    else:
        assert s.orders == recent and s.defects == 0
    assert (s.window_days, s.level.value) == (window, level)


def delivered_and_disputed(client: Any, order_id: str, buyer: str = "b-1", seller: str = "s-1") -> Any:
    body = order_body(order_id, buyer_id=buyer, seller_id=seller)
    assert client.http.post("/orders", headers=service_auth(), body=dumps(body)).status_code == 201
    assert client.http.post(f"/orders/{order_id}/shipment", headers=auth(seller),
                            body=dumps({"carrier": "CP", "tracking_number": "CN1"})).status_code == 200
    assert client.http.post(f"/orders/{order_id}/tracking-events", headers=service_auth(), body=dumps(
        {"status": "DELIVERED", "occurred_at": "2026-11-01T12:00:00Z"})).status_code == 200
    opened = client.http.post(f"/orders/{order_id}/disputes", headers=auth(buyer), body=dumps({
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue", "requested": {"type": "REFUND_FULL"}}))
    assert opened.status_code == 201, opened.body
    return opened


def test_a_queue_page_reads_each_seller_and_buyer_once(client: Any, wired: Any) -> None:
    for i in range(4):
        seller = auth(f"s-{i % 2}")
        did = delivered_and_disputed(client, f"o-{i}", f"b-{i % 2}", f"s-{i % 2}").json_body["dispute_id"]
        assert client.http.post(f"/disputes/{did}/reject", headers=seller,
                                body=dumps({"message": "It was sent"})).status_code == 200
        assert client.http.post(f"/disputes/{did}/escalate", headers=seller, body=dumps({})).status_code == 200
    with dynamodb_requests() as seen:
        page = client.http.get("/moderation/disputes", headers=auth("m-1", "moderators"))
    assert page.status_code == 200 and len(page.json_body["items"]) == 4
    for item in page.json_body["items"]:
        assert item["seller_standing"] == {"level": "NOT_ENOUGH_DATA", "defect_rate": 0.0}
        assert item["buyer_signals"] == {"flag": "NONE", "lost": 0}
    # the queue (1), then 2 sellers (3 key ranges each: few orders) and 2 buyers (1 each)
    assert seen.count("Query") == 1 + 2 * 3 + 2 and set(seen) == {"Query"}
    first = page.json_body["items"][0]
    party = client.http.get(f"/disputes/{first['dispute_id']}", headers=auth(first["buyer_id"]))
    assert party.status_code == 200
    assert not {"seller_standing", "buyer_signals", "rule_suggestions", "assignment"} & set(party.json_body)


def test_an_active_rule_over_http_refunds_at_opening_and_the_report_is_there(client: Any, wired: Any) -> None:
    admin = auth("admin-1", "moderation-admins")
    rule = {"description": "Refund undelivered small orders", "mode": "ACTIVE", "priority": 1,
            "when": {"reasons": ["NOT_AS_DESCRIBED"], "max_amount": {"amount": 5000, "currency": "USD"}},
            "then": "REFUND_FULL"}
    saved = client.http.put("/moderation/rules/small", headers=admin, body=dumps(rule))
    assert saved.status_code == 200 and saved.json_body["version"] == 1, saved.body
    bad = client.http.put("/moderation/rules/bad", headers=admin, body=dumps(
        {**rule, "when": {"max_amount": {"amount": 0, "currency": "USD"}}}))
    assert (bad.status_code, bad.json_body["error"]["code"]) == (422, "INVALID_RULE")
    assert [r["rule_id"] for r in client.http.get("/moderation/rules", headers=admin).json_body["items"]] == ["small"]
    opened = delivered_and_disputed(client, "o-1")
    resolution = opened.json_body["resolution"]
    assert opened.json_body["status"] == "RESOLVED" and resolution["decided_by"] == "system"
    assert resolution["rule"] == {"rule_id": "small", "version": 1} and resolution["fault"] == "SELLER"
    order = client.http.get("/orders/o-1", headers=auth("b-1")).json_body
    assert order["escrow"]["refund_pending"]["amount"] + order["escrow"]["refunded"]["amount"] == 2000
    report = client.http.get("/moderation/rules/small/report", headers=auth("m-1", "moderators"))
    assert report.json_body == {"rule_id": "small", "version": 1, "mode": "ACTIVE", "evaluated": 1, "matched": 1,
                                "decided_by_people": 0, "agreed": 0, "disagreed": 0}


# ---- the stateful property test, over DynamoDB ----------------------------------------------------------
def test_standing_and_signals_equal_a_recomputation_over_dynamodb(aws: dict[str, str], settings: Any) -> None:
    policy: Policy = standing_machine.POLICY
    config = replace(settings, policy=policy)

    class OverDynamoDB(standing_machine.StandingMachine):
        def wire(self) -> None:
            empty_account(config, aws)
            self.clock = FakeClock(T0)
            timers, holder = RecordingTimers(), list[Any]()
            self.payments = SimulatedPayments(lambda notice: holder[0].payments.settle(notice), auto_settle=False)
            built = bootstrap.build(config, clock=self.clock, timers=timers, publisher=RecordingPublisher(),
                                    payments=self.payments)
            holder.append(built.services)
            self.services, self.started = built.services, timers.started
            self.tables = built.services.orders.uow().tables  # type: ignore[attr-defined]

        def history(self) -> tuple[list[Order], list[Dispute]]:
            return ([mapping.order_from(i) for i in self.tables.orders.scan()],
                    [mapping.dispute_from(i) for i in self.tables.disputes.scan()])

        def teardown(self) -> None:
            if hasattr(self, "payments"):
                self.payments.close()

    run_state_machine_as_test(OverDynamoDB, settings=settings_for_dynamodb())


def settings_for_dynamodb() -> Any:
    return settings(max_examples=6, stateful_step_count=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def test_a_moderation_admin_reverses_a_defect_once_over_http(client: Any, wired: Any) -> None:
    did = delivered_and_disputed(client, "o-1").json_body["dispute_id"]
    seller = auth("s-1")
    assert client.http.post(f"/disputes/{did}/reject", headers=seller, body=dumps({"message": "No"})).status_code == 200
    assert client.http.post(f"/disputes/{did}/escalate", headers=seller, body=dumps({})).status_code == 200
    decided = client.http.post(f"/disputes/{did}/decision", headers=auth("m-1", "moderators"), body=dumps(
        {"outcome": "REFUND_FULL", "rationale": "The photos show another colour."}))
    assert decided.status_code == 200 and decided.json_body["resolution"]["fault"] == "SELLER"
    standing = client.http.get("/sellers/s-1/standing", headers=auth("m-1", "moderators")).json_body
    assert (standing["defects"], standing["defective_buyers"]) == (1, 1)
    refused = client.http.post("/orders/o-1/defect-reversal", headers=auth("m-1", "moderators"), body=dumps({}))
    assert (refused.status_code, refused.json_body["error"]["code"]) == (403, "NOT_YOUR_ACTION")
    admin = auth("a-1", "moderation-admins")
    reversed_ = client.http.post("/orders/o-1/defect-reversal", headers=admin, body=dumps({}))
    assert reversed_.status_code == 200, reversed_.body
    assert reversed_.json_body == {"order_id": "o-1", "seller_id": "s-1", "defect_reversed": True}
    again = client.http.post("/orders/o-1/defect-reversal", headers=admin, body=dumps({}))
    assert (again.status_code, again.json_body["error"]["code"]) == (409, "INVALID_STATE")
    after = client.http.get("/sellers/s-1/standing", headers=auth("m-1", "moderators")).json_body
    assert (after["orders"], after["disputes"], after["defects"], after["defective_buyers"]) == (1, 1, 0, 0)


def test_a_moderators_claim_and_release_answer_with_the_figures_and_a_party_never_sees_them(client: Any,
                                                                                        wired: Any) -> None:
    did = delivered_and_disputed(client, "o-1").json_body["dispute_id"]
    seller = auth("s-1")
    assert client.http.post(f"/disputes/{did}/reject", headers=seller, body=dumps({"message": "No"})).status_code == 200
    escalated = client.http.post(f"/disputes/{did}/escalate", headers=seller, body=dumps({}))
    assert escalated.status_code == 200 and "seller_standing" not in escalated.json_body  # a party's answer
    moderator = auth("m-1", "moderators")
    for action in ("claim", "release"):
        with dynamodb_requests() as seen:
            r = client.http.post(f"/disputes/{did}/{action}", headers=moderator, body=dumps({}))
        assert r.status_code == 200, r.body
        assert r.json_body["seller_standing"] == {"level": "NOT_ENOUGH_DATA", "defect_rate": 0.0}
        assert r.json_body["buyer_signals"] == {"flag": "NONE", "lost": 0}
        assert seen.count("Query") == 3 + 1  # the seller's three key ranges (few orders), the buyer's one
