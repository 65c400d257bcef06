"""Moderation intelligence over the fakes: seller standing and its levels, buyer signals, who may
read them, and the auto-resolution rules (ACTIVE, DRY_RUN and its report, versions, validation)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Decision, Reason, Solution
from chalicelib.domain.disputes import Status
from chalicelib.domain.errors import DomainError, Forbidden, NotFound, RuleViolation
from chalicelib.domain.identity import Identity
from chalicelib.domain.orders import ScanStatus
from chalicelib.domain.policy import Policy
from chalicelib.domain.standing import Level, level_of
from chalicelib.services import commands as c
from chalicelib.services.disputes import AcceptOffer, Decide, Escalate, OpenDispute, RejectRequest
from tests.support import order_body
from tests.unit.world import MODERATOR, SERVICE, World, new_world

ADMIN = Identity("admin-1", frozenset({"moderation-admins"}))
POLICY = Policy(refund_max_attempts=3)


def person(sub: str) -> Identity:
    return Identity(sub, frozenset())


@pytest.fixture
def w() -> Any:
    world = new_world(POLICY)
    with world.payments:
        yield world


def disputed(w: World, order_id: str, buyer: str = "b-1", seller: str = "s-1",
             reason: Reason = Reason.NOT_AS_DESCRIBED, total: int = 2000, delivered: bool = True,
             wait_days: int = 0) -> Any:
    """Registered, shipped, ``wait_days`` later delivered (or not) and disputed."""
    w.services.orders.register(SERVICE, parse.register_order(order_body(
        order_id, total=total, buyer_id=buyer, seller_id=seller,
        estimated_delivery_at=(w.clock.now() + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ"))))
    w.services.orders.ship(person(seller), c.ShipOrder(order_id, "CP", "CN1"))
    w.clock.advance(days=wait_days)
    if delivered:
        w.services.orders.record_scan(SERVICE, c.RecordScan(order_id, ScanStatus.DELIVERED, w.clock.now()))
    return w.services.disputes.open(person(buyer), OpenDispute(order_id, reason, "Something is wrong here",
                                                                 Solution.REFUND_FULL, None, ()))


def save(w: World, who: Identity, rule_id: str, body: dict[str, Any]) -> Any:
    return w.services.moderation.save_rule(who, parse.save_rule(body, rule_id))


def rule_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"description": "Refund small parcels never scanned", "mode": "ACTIVE", "priority": 10,
                            "when": {"reasons": ["NOT_RECEIVED"], "max_amount": {"amount": 5000, "currency": "USD"},
                                     "no_carrier_scan_days": 20},
                            "then": "REFUND_FULL"}
    body.update(overrides)
    return body


# ---- levels -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("orders", "defects", "buyers", "level"), [
    (24, 0, 0, Level.NOT_ENOUGH_DATA),
    (100, 0, 0, Level.GOOD),
    (100, 1, 1, Level.GOOD),  # 1 % is not over 1 %
    (100, 2, 1, Level.GOOD),  # one angry buyer cannot sink a seller
    (100, 2, 2, Level.WATCH),
    (100, 3, 3, Level.WATCH),
    (100, 3, 4, Level.AT_RISK),
    (100, 2, 4, Level.WATCH),  # 2 % is not over 2 %
])
def test_levels_follow_the_contracts_thresholds(orders: int, defects: int, buyers: int, level: Level) -> None:
    assert level_of(orders, defects, buyers, Policy()) is level


def test_a_sellers_standing_counts_defects_once_per_order_and_distinct_buyers(w: World) -> None:
    for i in range(3):
        d = disputed(w, f"o-{i}", buyer=f"b-{i % 2}")
        w.clock.advance(days=4)  # after the early-settlement period: the seller's fault
        w.services.disputes.accept_offer(person("s-1"), AcceptOffer(d.dispute_id, None, d.offers[0].offer_id))
    s = w.services.moderation.standing(MODERATOR, "s-1")
    assert (s.orders, s.disputes, s.defects, s.defective_buyers) == (3, 3, 3, 2)
    assert s.window_days == 365 and s.level is Level.NOT_ENOUGH_DATA  # fewer than 25 in 90 days
    assert s.to_dict()["defect_rate"] == 1.0


def test_an_early_settlement_is_no_defect_and_a_replayed_timer_counts_nothing(w: World) -> None:
    d = disputed(w, "o-1")
    w.services.disputes.accept_offer(person("s-1"), AcceptOffer(d.dispute_id, None, d.offers[0].offer_id))
    before = w.snapshot()["counters"]
    w.clock.advance(days=8)
    assert w.services.timers.fired("EXPIRE", {"action": "SELLER_RESPONSE", "dispute_id": d.dispute_id}) == "stale"
    assert w.snapshot()["counters"] == before
    assert w.services.moderation.standing(MODERATOR, "s-1").defects == 0


def test_an_order_refunded_for_never_shipping_is_a_defect_once(w: World) -> None:
    w.services.orders.register(SERVICE, parse.register_order(order_body("o-1")))
    w.clock.advance(days=8)
    timer = {"action": "SHIP_BY", "order_id": "o-1", "round": 1}
    assert w.services.timers.fired("EXPIRE", timer) == "refunded"
    assert w.services.timers.fired("EXPIRE", timer) == "stale"
    s = w.services.moderation.standing(MODERATOR, "s-1")
    assert (s.orders, s.defects, s.defective_buyers) == (1, 1, 1)


def test_a_level_change_is_published_once_when_the_standing_is_read() -> None:
    w = new_world(Policy(standing_min_orders=2, watch_buyers=1, at_risk_buyers=5))
    with w.payments:

        def changes() -> list[tuple[str, str, str]]:
            return [(e[1]["seller_id"], e[1]["from"], e[1]["to"]) for e in w.publisher.events
                    if e[0] == "seller.standing_changed"]

        w.services.orders.register(SERVICE, parse.register_order(order_body("o-0")))
        d = disputed(w, "o-1")
        assert changes() == []  # the writes that make facts true read nothing
        assert w.services.moderation.standing(MODERATOR, "s-1").level is Level.GOOD
        w.services.moderation.standing(person("s-1"), "s-1")
        assert changes() == [("s-1", "NOT_ENOUGH_DATA", "GOOD")]
        w.clock.advance(days=4)
        w.services.disputes.accept_offer(person("s-1"), AcceptOffer(d.dispute_id, None, d.offers[0].offer_id))
        w.services.moderation.insights(MODERATOR).of(w.dispute(d.dispute_id))  # a moderator views the case
        assert changes() == [("s-1", "NOT_ENOUGH_DATA", "GOOD"), ("s-1", "GOOD", "WATCH")]


def test_a_fact_that_changes_the_level_is_published_by_the_reconciler_once_without_any_read() -> None:
    """No one reads the standing: the writes leave a standing check in the outbox (no read in the
    request), and the reconciler evaluates it and publishes each level change once."""
    w = new_world(Policy(standing_min_orders=2, watch_buyers=1, at_risk_buyers=5))
    with w.payments:

        def changes() -> list[tuple[str, str, str]]:
            return [(e[1]["seller_id"], e[1]["from"], e[1]["to"]) for e in w.publisher.events
                    if e[0] == "seller.standing_changed"]

        def reconcile() -> None:
            w.clock.advance(seconds=31)  # past the reconciler's grace
            w.services.timers.drain_outbox()

        w.services.orders.register(SERVICE, parse.register_order(order_body("o-0")))
        d = disputed(w, "o-1")
        assert changes() == [] and w.standing_checks() == ["s-1", "s-1"]  # one per order registered
        reconcile()
        assert changes() == [("s-1", "NOT_ENOUGH_DATA", "GOOD")] and w.standing_checks() == []
        w.clock.advance(days=4)  # after the early-settlement period: a defect of the seller's
        reads = w.state.reads
        w.services.disputes.accept_offer(person("s-1"), AcceptOffer(d.dispute_id, None, d.offers[0].offer_id))
        assert w.standing_checks() == ["s-1"] and changes() == [("s-1", "NOT_ENOUGH_DATA", "GOOD")]
        assert w.state.reads - reads == 2  # the dispute and its order: no standing read in the request
        reconcile()
        reconcile()  # a second pass, and a read after, publish nothing more
        w.services.moderation.standing(MODERATOR, "s-1")
        assert changes() == [("s-1", "NOT_ENOUGH_DATA", "GOOD"), ("s-1", "GOOD", "WATCH")]
        assert w.standing_checks() == []


def test_buyer_signals_flag_a_frequent_disputer_from_lost_disputes_only(w: World) -> None:
    for i in range(3):
        d = disputed(w, f"o-{i}", seller=f"s-{i}")
        w.services.disputes.reject(person(f"s-{i}"), RejectRequest(d.dispute_id, None, "It was as described"))
        w.services.disputes.escalate(person(f"s-{i}"), Escalate(d.dispute_id, None, None))
        w.services.disputes.decide(MODERATOR, Decide(d.dispute_id, None, Decision.REJECTED, None, "Photos show no fault"))
        if i == 1:
            assert w.services.moderation.signals(MODERATOR, "b-1").flag.value == "NONE"
    s = w.services.moderation.signals(MODERATOR, "b-1")
    assert (s.orders, s.disputes_opened, s.won, s.lost, s.cancelled, s.flag.value) == (3, 3, 0, 3, 0,
                                                                                      "FREQUENT_DISPUTER")


def test_only_moderators_and_the_seller_themself_read_a_standing(w: World) -> None:
    assert w.services.moderation.standing(person("s-1"), "s-1").seller_id == "s-1"
    with pytest.raises(NotFound) as refused:
        w.services.moderation.standing(person("s-2"), "s-1")
    assert refused.value.code == "SELLER_NOT_FOUND"
    with pytest.raises(NotFound) as refused:
        w.services.moderation.signals(person("b-1"), "b-1")
    assert refused.value.code == "BUYER_NOT_FOUND"


def test_moderators_see_standing_and_signals_on_a_dispute_and_parties_never_do(w: World) -> None:
    d = disputed(w, "o-1").dispute
    mine = w.services.moderation.insights(MODERATOR).of(d)
    assert mine == {"seller_standing": {"level": "NOT_ENOUGH_DATA", "defect_rate": 0.0},
                    "buyer_signals": {"flag": "NONE", "lost": 0}}
    assert w.services.moderation.insights(person("b-1")).of(d) is None
    assert w.services.moderation.insights(person("s-1")).of(d) is None


def test_a_page_of_cases_reads_each_party_once(w: World) -> None:
    disputes = [disputed(w, f"o-{i}", buyer="b-1", seller="s-1") for i in range(1)]
    disputes += [disputed(w, f"p-{i}", buyer=f"b-{i + 2}", seller=f"s-{i + 2}") for i in range(3)]
    insights = w.services.moderation.insights(MODERATOR)
    w.state.reads = 0
    for _ in range(5):
        for d in disputes:
            insights.of(d.dispute)
    # 4 sellers with few orders (three key ranges each) and 4 buyers (one each), whatever the repeats.
    assert w.state.reads == 4 * 3 + 4 and [e for e in w.publisher.events if e[0] == "seller.standing_changed"] == []


# ---- rules --------------------------------------------------------------------------------------
def test_an_active_rule_resolves_a_matching_dispute_at_opening_and_pays_once(w: World) -> None:
    rule = save(w, ADMIN, "never-scanned", rule_body())
    assert rule.version == 1
    d = disputed(w, "o-1", reason=Reason.NOT_RECEIVED, delivered=False, wait_days=21)  # never scanned since
    assert d.status is Status.RESOLVED
    assert d.resolution is not None and d.resolution.to_dict()["decided_by"] == "system"
    assert d.resolution.to_dict()["rule"] == {"rule_id": "never-scanned", "version": 1}
    assert "never-scanned" in d.resolution.to_dict()["rationale"] and d.resolution.to_dict()["fault"] == "SELLER"
    order = w.order("o-1")
    assert order.escrow.refund_pending.amount == 2000 and order.open_dispute_id is None
    w.services.timers.drain_outbox()
    w.settle_payments()
    w.services.timers.drain_outbox()
    refund = w.order("o-1").refunds[0]
    assert refund.status == "SUCCEEDED" and w.payments.sent_for(refund.refund_id) == 2000  # once, in full
    assert w.services.moderation.standing(MODERATOR, "s-1").defects == 1


def test_an_active_escalate_rule_sends_the_case_to_the_queue(w: World) -> None:
    save(w, ADMIN, "counterfeits", rule_body(
        then="ESCALATE", when={"reasons": ["COUNTERFEIT"]}))
    d = disputed(w, "o-1", reason=Reason.COUNTERFEIT)
    assert d.status is Status.ESCALATED and d.dispute.escalated_at == w.clock.now()


def test_no_rule_matches_a_parcel_scanned_recently_or_an_order_over_the_cap(w: World) -> None:
    save(w, ADMIN, "never-scanned", rule_body())
    assert disputed(w, "o-1", reason=Reason.NOT_RECEIVED, delivered=False, wait_days=19).status \
        is Status.AWAITING_SELLER
    assert disputed(w, "o-2", reason=Reason.NOT_RECEIVED, delivered=False, total=5001, wait_days=21).status \
        is Status.AWAITING_SELLER
    assert disputed(w, "o-3", reason=Reason.NOT_RECEIVED, delivered=False, total=5000, wait_days=21).status \
        is Status.RESOLVED


def test_a_dry_run_changes_nothing_and_its_report_counts_agreement(w: World) -> None:
    save(w, ADMIN, "dry", rule_body(mode="DRY_RUN", when={"reasons": ["NOT_AS_DESCRIBED"]}))
    agreed = disputed(w, "o-1")
    assert agreed.status is Status.AWAITING_SELLER and agreed.resolution is None
    assert [s.to_dict() for s in agreed.dispute.rule_suggestions] == [{"rule_id": "dry", "version": 1, "would": "REFUND_FULL"}]
    w.services.disputes.accept_offer(person("s-1"), AcceptOffer(agreed.dispute_id, None, agreed.offers[0].offer_id))
    refused = disputed(w, "o-2")
    w.services.disputes.reject(person("s-1"), RejectRequest(refused.dispute_id, None, "It was as described"))
    w.services.disputes.escalate(person("s-1"), Escalate(refused.dispute_id, None, None))
    w.services.disputes.decide(MODERATOR, Decide(refused.dispute_id, None, Decision.REJECTED, None, "No fault found"))
    disputed(w, "o-3")  # still open: matched, not decided yet
    disputed(w, "o-4", reason=Reason.COUNTERFEIT)  # evaluated, not matched
    _, report = w.services.moderation.report(MODERATOR, "dry")
    assert report == {"evaluated": 4, "matched": 3, "decided_by_people": 2, "agreed": 1, "disagreed": 1}


def test_a_rule_saved_after_a_dispute_opened_never_touches_it(w: World) -> None:
    d = disputed(w, "o-1", reason=Reason.COUNTERFEIT)
    save(w, ADMIN, "counterfeits", rule_body(then="ESCALATE", when={"reasons": ["COUNTERFEIT"]}))
    w.clock.advance(days=8)
    assert w.services.timers.fired("EXPIRE", {"action": "SELLER_RESPONSE", "dispute_id": d.dispute_id}) == "expired"
    after = w.dispute(d.dispute_id)
    assert after.status is Status.RESOLVED and after.resolution is not None
    assert after.resolution.to_dict().get("rule") is None and after.rule_suggestions == []
    _, report = w.services.moderation.report(MODERATOR, "counterfeits")
    assert report["evaluated"] == 0


def test_every_change_makes_a_new_version_and_a_new_version_starts_a_new_report(w: World) -> None:
    save(w, ADMIN, "dry", rule_body(mode="DRY_RUN"))
    assert save(w, ADMIN, "dry", rule_body(mode="DRY_RUN")).version == 1  # no change
    assert save(w, ADMIN, "dry", rule_body(mode="OFF")).version == 2
    rules = w.services.moderation.rules(MODERATOR)
    assert [(r.rule_id, r.version, r.mode.value) for r in rules] == [("dry", 2, "OFF")]


@pytest.mark.parametrize(("body", "code"), [
    (rule_body(when={"max_amount": {"amount": 0, "currency": "USD"}}), "INVALID_RULE"),
    (rule_body(when={"reasons": []}), "INVALID_RULE"),
    (rule_body(when={"reasons": ["NOT_RECEIVED", "NOT_RECEIVED"]}), "INVALID_RULE"),
    (rule_body(when={"max_amount": {"amount": 10, "currency": "XTS"}}), "INVALID_CURRENCY"),
])
def test_an_invalid_rule_is_refused_and_nothing_is_stored(w: World, body: dict[str, Any], code: str) -> None:
    before = w.snapshot()
    with pytest.raises(DomainError) as refused:
        save(w, ADMIN, "bad", body)
    assert refused.value.code == code
    assert w.snapshot() == before


def test_at_most_the_limit_of_live_rules(w: World) -> None:
    small = new_world(Policy(max_live_rules=1))
    with small.payments:
        save(small, ADMIN, "one", rule_body())
        save(small, ADMIN, "off", rule_body(mode="OFF"))
        with pytest.raises(RuleViolation) as refused:
            save(small, ADMIN, "two", rule_body(mode="DRY_RUN"))
        assert refused.value.code == "RULE_LIMIT_REACHED"
        assert [r.rule_id for r in small.services.moderation.rules(MODERATOR)] == ["off", "one"]


def test_only_moderation_admins_change_rules_and_moderators_read_them(w: World) -> None:
    with pytest.raises(Forbidden):
        save(w, MODERATOR, "r", rule_body())
    with pytest.raises(Forbidden):
        w.services.moderation.rules(person("b-1"))
    assert w.services.moderation.rules(ADMIN) == []
    with pytest.raises(NotFound):
        w.services.moderation.report(MODERATOR, "nope")


def test_the_order_keeps_every_carrier_scan_oldest_first(w: World) -> None:
    w.services.orders.register(SERVICE, parse.register_order(order_body("o-1")))
    w.services.orders.ship(person("s-1"), c.ShipOrder("o-1", "CP", "CN1"))
    t = w.clock.now()
    for at, status in [(t + timedelta(hours=5), "IN_TRANSIT"), (t + timedelta(hours=2), "IN_TRANSIT"),
                       (t + timedelta(hours=5), "IN_TRANSIT")]:
        w.clock.current = max(w.clock.now(), at)
        w.services.orders.record_scan(SERVICE, c.RecordScan("o-1", ScanStatus(status), at))
    scans = w.order("o-1").shipment.scans  # type: ignore[union-attr]
    assert scans == (("IN_TRANSIT", t + timedelta(hours=2)), ("IN_TRANSIT", t + timedelta(hours=5)))
