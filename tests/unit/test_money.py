"""Money, at the service level over the fakes: refunds paid exactly once through the simulated
provider, the refund timers, and an escrow that always pays the right party. Each test of a
"hole" names the rule it proves; each asserts the ledger and what the provider actually sent."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

import app  # noqa: F401  (its routes declare the actions views list: api/routing.py ACTIONS)
from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Decision, Reason, ReturnProblem, Solution
from chalicelib.domain.disputes import Status
from chalicelib.domain.errors import Conflict, InvalidInput, RuleViolation
from chalicelib.domain.ledger import Entry, EscrowStatus, RefundStatus
from chalicelib.domain.money import Money
from chalicelib.domain.orders import OrderStatus, ScanStatus
from chalicelib.domain.timefmt import fmt
from chalicelib.domain.timers import REFUND_RETRY, REFUND_SETTLEMENT, SHIP_BY
from chalicelib.ports import SettlementNotice
from chalicelib.relay import REFUND_LEASE
from chalicelib.services import commands as c
from chalicelib.services.disputes import AcceptOffer, Cancel, ContestReturn, Decide, Escalate, OpenDispute, RejectRequest
from chalicelib.services.payments import RefundOutcome
from tests.support import T0, order_body
from tests.unit.world import BUYER, MODERATOR, SELLER, SERVICE, Ctx, World

LEASE = REFUND_LEASE.total_seconds() + 1  # the reconciler hands a refund over again after it

USD = "USD"


def balanced(world: World, order_id: str = "o-1") -> None:
    """The ledger invariant, and every settled refund paid by the provider exactly once."""
    order = world.order(order_id)
    order.escrow.check()
    for refund in order.refunds:
        sent = world.payments.sent_for(refund.refund_id)
        assert sent == (refund.amount.amount if refund.status == "SUCCEEDED" else 0), (refund, sent)


def refund_status(world: World, dispute_id: str) -> str | None:
    return (world.shown(dispute_id)["refund"] or {}).get("status")


def timer(world: World, action: str, **refs: object) -> str:
    """A timer message as the machine sends it, then the refund worker (which sends what its
    commit owed, off the timer's own invocation)."""
    outcome = world.services.timers.fired("EXPIRE", {"action": action, **refs})
    world.pay_refunds()
    return outcome


def events(world: World, prefix: str = "refund.") -> list[str]:
    return [t for t, _ in world.publisher.events if t.startswith(prefix) or t == "escrow.released"]


# ---- refunds paid exactly once --------------------------------------------------------------
def test_a_partial_refund_is_pending_until_the_provider_settles_it_then_refunded_once(world: World) -> None:
    ctx = world.awaiting_seller()
    world.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))
    escrow = world.order().escrow
    assert (escrow.refund_pending, escrow.released, escrow.refunded) == (Money(500, USD), Money(1500, USD),
                                                                      Money(0, USD))
    assert escrow.status is EscrowStatus.HELD  # not REFUNDED before the money has left
    assert refund_status(world, ctx["dispute_id"]) == "PENDING"

    world.settle_payments()
    escrow = world.order().escrow
    assert (escrow.refunded, escrow.refund_pending, escrow.status) == (Money(500, USD), Money(0, USD),
                                                                       EscrowStatus.SETTLED)
    assert refund_status(world, ctx["dispute_id"]) == "SUCCEEDED"
    assert events(world) == ["refund.requested", "escrow.released", "refund.succeeded"]
    assert all(e[1]["refund_id"] for e in world.publisher.events if e[0].startswith("refund."))
    balanced(world)


def test_a_lost_answer_is_looked_up_not_sent_again_and_the_buyer_is_paid_once(world: World) -> None:
    world.payments.timeout_next(1, after_accepting=True)  # the provider took it; we never heard back
    ctx = world.refunded()
    assert len(world.outbox()) == 1  # the REFUND record stays for the reconciler
    world.clock.advance(seconds=LEASE)
    assert world.services.timers.drain_outbox() == (1, 0)
    # The reconciler asked the provider what became of the attempt instead of sending it again.
    assert world.payments.calls == 1 and len(world.payments.attempts(ctx["refund_id"])) == 1
    world.settle_payments()
    assert world.payments.sent_for(ctx["refund_id"]) == 2000
    balanced(world)


@pytest.mark.parametrize("fault", ["timeout_next", "garbage_next"])
def test_an_unreachable_or_garbled_provider_is_retried_and_leaves_the_ledger_as_it_was(world: World,
                                                                                        fault: str) -> None:
    getattr(world.payments, fault)(2)
    ctx = world.refunded()  # the worker's first try: the provider is down
    before = world.order().ledger
    assert [r.kind for r in world.outbox().values()] == ["REFUND"]  # still owed, in the outbox
    world.clock.advance(seconds=LEASE)
    assert world.services.timers.drain_outbox() == (1, 0)  # handed to the refund queue again
    assert world.pay_refunds() == ["left"]  # still down: kept, at the back
    assert world.order().ledger == before and world.payments.sent_for(ctx["refund_id"]) == 0
    assert world.services.timers.drain_outbox() == (0, 0)  # not again before the lease has passed
    world.clock.advance(seconds=LEASE)
    assert world.services.timers.drain_outbox() == (1, 0)
    assert world.pay_refunds() == [RefundOutcome.PENDING]
    assert world.outbox() == {}  # sent: forgotten
    world.settle_payments()
    assert world.order().ledger.refund(ctx["refund_id"]).status == "SUCCEEDED"
    balanced(world)


def test_a_failed_refund_is_retried_after_its_backoff_under_a_new_key_and_paid_once(world: World) -> None:
    world.payments.fail_next(1, "card_declined")
    ctx = world.refunded()
    world.settle_payments()
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.failure_reason, refund.needs_attention) == ("FAILED", "card_declined", False)
    assert world.order().escrow.refund_pending == Money(2000, USD)  # still owed, never dropped
    assert refund_status(world, ctx["dispute_id"]) == "FAILED"
    retry = [t for t in world.timers.started if t.action == REFUND_RETRY]
    assert [(t.round, t.due_at) for t in retry] == [(1, T0 + world.policy.refund_retry)]
    # The dispute shows what it waits for: the retry, due when its timer fires.
    assert world.shown(ctx["dispute_id"])["deadlines"] == [
        {"action": "REFUND_RETRY", "actor": "platform", "due_at": fmt(retry[0].due_at), "on_expiry": "RETRY_REFUND"}]

    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "retried"
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "stale"  # redelivered
    world.settle_payments()
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.attempt) == ("SUCCEEDED", 2)
    assert [k for k in world.payments.sent] == [f"{ctx['refund_id']}:2"]
    assert events(world) == ["refund.requested", "refund.failed", "refund.retried", "refund.succeeded"]
    balanced(world)


def test_after_the_last_attempt_a_refund_waits_for_a_moderator_who_retries_it(world: World) -> None:
    ctx = world.refund_needing_attention()
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.attempt, refund.needs_attention) == ("FAILED", 3, True)
    assert "refund.needs_attention" in events(world)
    items, _ = world.services.payments.needing_attention(MODERATOR, 10, None)
    assert [o.order_id for o in items] == ["o-1"]
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=3) == "stale"

    world.services.payments.retry(MODERATOR, "o-1", ctx["refund_id"])
    world.settle_payments()
    assert world.order().ledger.refund(ctx["refund_id"]).status == "SUCCEEDED"
    assert world.services.payments.needing_attention(MODERATOR, 10, None) == ([], None)
    with pytest.raises(Conflict) as err:  # a settled refund is never sent again
        world.services.payments.retry(MODERATOR, "o-1", ctx["refund_id"])
    assert err.value.code == "REFUND_NOT_FAILED"
    balanced(world)


def test_a_refund_not_settled_by_its_deadline_alarms_and_is_looked_up_never_paid_again(world: World) -> None:
    world.payments.settle_late(1, extra_seconds=10**9)
    ctx = world.refunded()
    calls = world.payments.calls
    assert timer(world, REFUND_SETTLEMENT, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "overdue"
    assert "refund.overdue" in events(world)
    assert world.payments.calls == calls and len(world.payments.attempts(ctx["refund_id"])) == 1
    rounds = [t.round for t in world.timers.started if t.action == REFUND_SETTLEMENT]
    assert rounds == [1, 2]  # a new settlement period
    assert timer(world, REFUND_SETTLEMENT, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "stale"
    assert world.payments.sent_for(ctx["refund_id"]) == 0 and world.order().escrow.refund_pending.amount == 2000
    balanced(world)


# ---- webhooks: replays, out of order, forged, unknown -----------------------------------------
def test_a_replayed_or_out_of_order_notice_changes_nothing(world: World) -> None:
    ctx = world.refunded()
    [notice] = world.settle_payments()
    after = world.order()
    assert world.services.payments.settle(notice) == RefundOutcome.UNCHANGED  # replayed
    assert world.services.payments.settle(replace(notice, status="PENDING")) == RefundOutcome.UNCHANGED  # late "pending"
    assert world.services.payments.settle(replace(notice, status="FAILED", failure_reason="x")) == RefundOutcome.UNCHANGED
    assert world.order() == after and world.order().ledger.refund(ctx["refund_id"]).status == "SUCCEEDED"
    balanced(world)


def test_a_notice_for_an_unknown_refund_is_answered_and_changes_nothing(world: World) -> None:
    ctx = world.refunded()
    before = world.snapshot()
    notice = SettlementNotice("evt_1", "r-unknown", 1, "sim_re_1", RefundStatus.SUCCEEDED, Money(2000, USD), None, "o-1")
    assert world.services.payments.settle(notice) == RefundOutcome.UNKNOWN_REFUND
    assert world.services.payments.settle(replace(notice, order_id="o-unknown")) == RefundOutcome.UNKNOWN_REFUND
    assert world.snapshot() == before and ctx


def test_a_notice_that_does_not_match_its_refund_moves_no_money_and_asks_for_a_person(world: World) -> None:
    ctx = world.refunded()
    escrow = world.order().escrow
    notice = SettlementNotice("evt_1", ctx["refund_id"], 1, "sim_re_1", RefundStatus.SUCCEEDED, Money(1, USD), None, "o-1")
    assert world.services.payments.settle(notice) == RefundOutcome.MISMATCH
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert world.order().escrow == escrow and refund.status == "PENDING"
    assert refund.needs_attention and refund.attention_reason == "NOTICE_MISMATCH"
    assert refund.public_failure_reason is None  # a flag is no decline: the parties see nothing failed


def test_an_earlier_attempt_seen_failed_that_reports_success_settles_the_refund_once(world: World) -> None:
    world.payments.fail_next(1)
    ctx = world.refunded()
    [failed] = world.settle_payments()
    assert world.order().ledger.refund(ctx["refund_id"]).status == "FAILED"
    late = replace(failed, status="SUCCEEDED", failure_reason=None, event_id="evt_late")
    assert world.services.payments.settle(late) == RefundOutcome.SUCCEEDED  # the money did leave after all
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert refund.status == "SUCCEEDED" and world.order().escrow.refunded == Money(2000, USD)
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "stale"
    another = replace(late, provider_refund_id="sim_re_other", event_id="evt_other")
    assert world.services.payments.settle(another) == RefundOutcome.PAID_TWICE  # alarmed, and a person looks
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert refund.needs_attention and refund.attention_reason == "PAID_TWICE"
    assert world.order().escrow.refunded == Money(2000, USD)


def test_a_refund_flagged_after_it_succeeded_is_never_shown_to_the_parties_as_declined(world: World) -> None:
    # Before: the flag's reason overwrote failure_reason, and the parties read PAYMENT_PROVIDER_DECLINED.
    from chalicelib.api import views

    ctx = world.refunded()
    [paid] = world.settle_payments()
    second = replace(paid, provider_refund_id="sim_re_other", event_id="e2")
    assert world.services.payments.settle(second) == RefundOutcome.PAID_TWICE
    mismatch = replace(paid, amount=Money(1, USD), event_id="e3")
    assert world.services.payments.settle(mismatch) == RefundOutcome.MISMATCH
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.needs_attention, refund.attention_reason) == ("SUCCEEDED", True, "NOTICE_MISMATCH")
    shown = world.shown(ctx["dispute_id"])["refund"]
    assert shown is not None and (shown["status"], shown["failure_reason"]) == ("SUCCEEDED", None)
    [on_order] = views.order(world.order(), world.clock.now(), world.policy, BUYER)["refunds"]
    assert (on_order["status"], on_order["failure_reason"]) == ("SUCCEEDED", None)


# ---- the provider changes its mind ---------------------------------------------------------------
def failed_once_then_retried(world: World) -> Ctx:
    """Attempt 1 failed at the provider (a decline), and its retry timer made attempt 2."""
    world.payments.fail_next(1)
    ctx = world.refunded()
    [failed] = world.settle_payments()
    assert failed.status == "FAILED" and world.order().ledger.refund(ctx["refund_id"]).status == "FAILED"
    return ctx


def test_a_new_attempt_is_not_sent_when_the_provider_says_the_earlier_one_paid_after_all(world: World) -> None:
    ctx = failed_once_then_retried(world)
    assert world.payments.change_mind(ctx["refund_id"], 1, deliver=False) is not None  # its notice is lost
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "retried"
    # Before sending attempt 2 the service asked what became of attempt 1: it paid, so 2 never goes.
    assert [o.attempt for o, _ in world.payments.attempts(ctx["refund_id"])] == [1]
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.needs_attention) == ("SUCCEEDED", False)
    assert world.payments.sent_for(ctx["refund_id"]) == 2000 and world.order().escrow.refunded == Money(2000, USD)
    assert world.services.timers.drain_outbox() == (0, 0)  # nothing left to send
    balanced(world)


def test_a_late_success_of_an_older_attempt_cancels_the_newer_one_at_the_provider(world: World) -> None:
    ctx = failed_once_then_retried(world)
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "retried"
    [(_, first), (_, second)] = world.payments.attempts(ctx["refund_id"])
    assert (first.status, second.status) == ("FAILED", "PENDING")  # attempt 2 is out, live
    world.payments.change_mind(ctx["refund_id"], 1)  # attempt 1 pays after all; its notice comes in
    # The webhook calls no provider: it hands the cancel to the refund worker, which holds the key.
    assert [m["op"] for m in world.refunds.messages] == ["cancel"]
    assert world.payments.attempts(ctx["refund_id"])[1][1].status == "PENDING"
    assert world.pay_refunds() == [RefundOutcome.CANCELLED]
    [(_, first), (_, second)] = world.payments.attempts(ctx["refund_id"])
    assert (first.status, second.status, second.failure_reason) == ("SUCCEEDED", "FAILED", "canceled")
    world.settle_payments()
    assert world.payments.sent_for(ctx["refund_id"]) == 2000  # once
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.needs_attention, refund.attention_reason) == ("SUCCEEDED", False, None)
    assert world.order().escrow.refunded == Money(2000, USD)
    balanced(world)


def test_a_newer_attempt_the_provider_cannot_cancel_holds_the_refund_for_a_person_and_alarms(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = failed_once_then_retried(world)
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "retried"
    world.payments.refuse_cancels()
    capsys.readouterr()
    world.payments.change_mind(ctx["refund_id"], 1)
    assert world.pay_refunds() == [RefundOutcome.HELD]  # the refund worker tried to cancel it
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.needs_attention, refund.attention_reason) == ("SUCCEEDED", True, "NEWER_ATTEMPT_LIVE")
    assert '"RefundsPaidTwice"' in capsys.readouterr().out  # the alarm's metric
    assert [o.order_id for o in world.services.payments.needing_attention(MODERATOR, 10, None)[0]] == ["o-1"]
    assert world.order().escrow.refunded == Money(2000, USD)  # counted once in the ledger
    world.settle_payments()  # the newer one pays too: the provider's double payment, flagged as such
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.needs_attention, refund.attention_reason) == (True, "PAID_TWICE")
    assert world.payments.sent_for(ctx["refund_id"]) == 4000  # the provider's doing: a person recovers it
    assert world.order().escrow.refunded == Money(2000, USD)
    world.order().escrow.check()


def test_a_new_attempt_is_held_for_a_person_while_an_earlier_one_is_still_pending_at_the_provider(
        world: World) -> None:
    world.payments.settle_late(1, 10**6)
    ctx = world.refunded()
    [(first, _)] = world.payments.attempts(ctx["refund_id"])
    # A notice says attempt 1 failed while the provider still holds it pending (it will change its mind).
    said = SettlementNotice("evt_f", ctx["refund_id"], 1, "sim_re_1", RefundStatus.FAILED, Money(2000, USD), "card_declined",
                            "o-1")
    assert world.services.payments.settle(said) == RefundOutcome.FAILED
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "retried"
    assert [o.attempt for o, _ in world.payments.attempts(ctx["refund_id"])] == [1]  # 2 was never sent
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.attempt, refund.attention_reason) == ("FAILED", 2, "EARLIER_ATTEMPT_PENDING")
    world.settle_payments()  # attempt 1 pays after all
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.needs_attention) == ("SUCCEEDED", False)
    assert world.payments.sent_for(ctx["refund_id"]) == 2000 and world.order().escrow.refunded == Money(2000, USD)
    balanced(world)


def test_an_attempt_whose_fate_is_unknown_past_the_keys_lifetime_is_never_sent_again(world: World) -> None:
    world.payments.timeout_next(1)  # sent, but the provider never recorded it and we never heard
    ctx = world.refunded()
    world.clock.advance(hours=24)
    world.payments.timeout_next(1, after_accepting=False)
    calls = world.payments.calls
    assert world.services.timers.drain_outbox() == (1, 0)  # handed to the refund queue again
    assert world.pay_refunds() == [RefundOutcome.FAILED]
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert world.payments.calls == calls  # looked up (unknown), and not sent under a forgotten key
    assert (refund.status, refund.failure_reason, refund.needs_attention) == ("FAILED", "OUTCOME_UNKNOWN", True)
    assert world.order().escrow.refund_pending == Money(2000, USD)  # still owed, and listed for a person
    assert [o.order_id for o in world.services.payments.needing_attention(MODERATOR, 10, None)[0]] == ["o-1"]


def test_a_failure_after_which_a_retry_could_pay_twice_goes_to_a_person_at_once(world: World) -> None:
    world.payments.refuse_next(1, "charge_already_refunded")
    ctx = world.refunded()
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.needs_attention, refund.attempt) == ("FAILED", True, 1)
    assert not [t for t in world.timers.started if t.action == REFUND_RETRY]
    assert refund_status(world, ctx["dispute_id"]) == "FAILED"
    assert world.shown(ctx["dispute_id"])["refund"]["failure_reason"] == "PAYMENT_PROVIDER_DECLINED"
    assert world.shown(ctx["dispute_id"])["deadlines"] == []  # no machine retry: a person looks


def test_a_webhook_with_a_bad_signature_is_refused_and_a_signed_one_settles(world: World) -> None:
    ctx = world.refunded()
    payload, headers = world.payments.sign(SettlementNotice("evt_9", ctx["refund_id"], 1, "sim_re_x", RefundStatus.SUCCEEDED,
                                                            Money(2000, USD), None, "o-1"))
    before = world.snapshot()
    for bad in ({**headers, "X-Sim-Signature": "0" * 64}, {}):
        with pytest.raises(InvalidInput) as err:
            world.services.payments.webhook(payload, bad)
        assert err.value.code == "INVALID_WEBHOOK"
    with pytest.raises(InvalidInput):
        world.services.payments.webhook(payload + b" ", headers)  # tampered
    assert world.snapshot() == before
    assert world.services.payments.webhook(payload, headers) == RefundOutcome.SUCCEEDED
    assert world.order().escrow.refunded == Money(2000, USD)


def test_a_signed_webhook_with_an_attempt_of_1e400_is_refused_as_invalid_and_changes_nothing(world: World) -> None:
    ctx = world.refunded()
    payload, headers = world.payments.sign(SettlementNotice("evt_9", ctx["refund_id"], 1, "sim_re_x", RefundStatus.SUCCEEDED,
                                                            Money(2000, USD), None, "o-1"))
    forged = payload.replace(b'"attempt": 1', b'"attempt": 1e400')
    assert forged != payload
    forged_headers = world.payments.sign_raw(forged)
    before = world.snapshot()
    with pytest.raises(InvalidInput) as err:
        world.services.payments.webhook(forged, {**headers, **forged_headers})
    assert err.value.code == "INVALID_WEBHOOK"
    assert world.snapshot() == before


# ---- escrow that pays the right party --------------------------------------------------------
def test_an_order_never_shipped_by_its_ship_by_date_is_refunded_by_its_timer(world: World) -> None:
    world.registered()
    [ship_by] = [t for t in world.timers.started if t.action == SHIP_BY]
    assert ship_by.due_at == T0 + world.policy.ship_by
    with pytest.raises(Conflict):  # woke early by our clock: redelivered later
        timer(world, SHIP_BY, order_id="o-1", round=1)
    world.clock.advance(days=7)
    assert timer(world, SHIP_BY, order_id="o-1", round=1) == "refunded"
    assert timer(world, SHIP_BY, order_id="o-1", round=1) == "stale"  # a duplicate message
    order = world.order()
    assert order.status is OrderStatus.COMPLETED and order.escrow.refund_pending == Money(2000, USD)
    with pytest.raises(Conflict) as err:
        world.services.orders.ship(SELLER, c.ShipOrder("o-1", "CP", "LATE1"))
    assert err.value.code == "ORDER_CLOSED"
    world.settle_payments()
    assert world.order().escrow.status is EscrowStatus.REFUNDED
    balanced(world)


def test_a_dispute_cancelled_on_an_order_never_shipped_past_its_ship_by_date_refunds_it(world: World) -> None:
    world.registered()
    world.clock.advance(days=20)  # past the estimate: NOT_RECEIVED opens; the ship-by date passed too
    d = world.services.disputes.open(BUYER, OpenDispute("o-1", Reason.NOT_RECEIVED, "It never arrived here",
                                                          Solution.REFUND_FULL, None, ()))
    assert timer(world, SHIP_BY, order_id="o-1", round=1) == "stale"  # the dispute holds the money
    world.services.disputes.cancel(BUYER, Cancel(d.dispute_id, None, None))
    order = world.order()
    assert order.escrow.refund_pending == Money(2000, USD) and order.refunds[0].cause == "NOT_SHIPPED"
    world.settle_payments()
    assert world.order().escrow.status is EscrowStatus.REFUNDED
    balanced(world)


def test_a_shipped_order_is_not_refunded_by_its_ship_by_timer(world: World) -> None:
    world.shipped()
    world.clock.advance(days=8)
    assert timer(world, SHIP_BY, order_id="o-1", round=1) == "stale"
    assert world.order().escrow.still_held == Money(2000, USD)
    assert [t.action for t in world.timers.stopped] == [SHIP_BY]


def test_a_late_shipment_moves_the_not_received_window_and_the_release_date_with_it(world: World) -> None:
    body = order_body(estimated_delivery_at="2026-11-05T00:00:00Z", ship_by="2026-12-30T00:00:00Z")
    world.services.orders.register(SERVICE, parse.register_order(body))
    world.clock.advance(days=30)  # the buyer's window from the estimate alone would have closed
    world.services.orders.ship(SELLER, c.ShipOrder("o-1", "CP", "NEVERSCANNED"))
    order = world.order()
    e = order.eligibility(world.clock.now(), world.policy)
    assert e.closes_at == world.clock.now() + world.policy.tracking_grace + world.policy.dispute_window
    world.clock.advance(days=11)  # never scanned: the buyer may open NOT_RECEIVED
    d = world.services.disputes.open(BUYER, OpenDispute("o-1", Reason.NOT_RECEIVED, "It never arrived here",
                                                          Solution.REFUND_FULL, None, ()))
    assert d.status is Status.AWAITING_SELLER
    release_at = order.release_at(world.policy)
    assert release_at is not None and e.closes_at is not None
    assert release_at >= e.closes_at  # never released before the window closes


def test_escrow_is_never_auto_released_before_the_buyers_window_closes(world: World) -> None:
    world.shipped()
    world.clock.advance(days=55)
    world.services.orders.record_scan(SERVICE, c.RecordScan("o-1", ScanStatus.DELIVERED, world.clock.now()))
    order = world.order()
    assert order.release_at(world.policy) == world.clock.now() + world.policy.dispute_window  # not shipment + 60 d
    world.clock.advance(days=6)
    assert world.services.orders.release_due_escrow() == []
    world.clock.advance(days=10)
    assert world.services.orders.release_due_escrow() == ["o-1"]
    assert world.order().escrow.status is EscrowStatus.RELEASED and "escrow.released" in events(world)


def test_a_resend_keeps_the_money_held_waits_for_the_replacement_and_pays_once(world: World) -> None:
    ctx = world.awaiting_seller(Solution.RESEND, None)
    d = world.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))
    assert (d.resolution.to_dict() if d.resolution else {}).get("outcome") == "RESEND"
    order = world.order()
    assert order.status is OrderStatus.PAID and order.escrow.still_held == Money(2000, USD)
    assert order.shipment is None and order.shipment_round == 2 and len(order.previous_shipments) == 1
    with pytest.raises(RuleViolation) as err:  # no new dispute before the replacement ships
        world.services.disputes.open(BUYER, OpenDispute("o-1", Reason.NOT_RECEIVED, "Where is the new one?",
                                                          Solution.REFUND_FULL, None, ()))
    assert err.value.code == "DISPUTE_WINDOW_NOT_OPEN"
    assert timer(world, SHIP_BY, order_id="o-1", round=1) == "stale"  # the first shipment's timer
    world.clock.advance(days=7)
    assert timer(world, SHIP_BY, order_id="o-1", round=2) == "refunded"  # the seller never resent
    world.settle_payments()
    assert world.order().escrow.refunded == Money(2000, USD)
    balanced(world)


def test_after_a_resend_the_buyers_window_follows_the_replacement(world: World) -> None:
    ctx = world.awaiting_seller(Solution.RESEND, None)
    world.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))
    world.clock.advance(days=2)
    world.services.orders.ship(SELLER, c.ShipOrder("o-1", "CP", "REPLACEMENT1"))
    world.services.orders.record_scan(SERVICE, c.RecordScan("o-1", ScanStatus.DELIVERED, world.clock.now()))
    e = world.order().eligibility(world.clock.now(), world.policy)
    assert e.can_open and e.closes_at == world.clock.now() + world.policy.dispute_window
    assert [t.round for t in world.timers.stopped if t.action == SHIP_BY] == [1, 2]


def test_a_moderator_cannot_decide_a_return_of_an_item_never_received(world: World) -> None:
    world.registered()
    world.clock.advance(days=20)  # past the estimated delivery date
    d = world.services.disputes.open(BUYER, OpenDispute("o-1", Reason.NOT_RECEIVED, "It never arrived here",
                                                          Solution.REFUND_FULL, None, ()))
    world.services.disputes.reject(SELLER, RejectRequest(d.dispute_id, None, "It was delivered"))
    world.services.disputes.escalate(SELLER, Escalate(d.dispute_id, None, None))
    before = world.snapshot()
    with pytest.raises(RuleViolation) as err:
        world.services.disputes.decide(MODERATOR, Decide(d.dispute_id, None, Decision.RETURN_AND_REFUND, None,
                                                           "Send it back to the seller please"))
    assert err.value.code == "SOLUTION_NOT_ALLOWED" and world.snapshot() == before


def test_a_seller_contests_a_return_and_a_moderator_decides_instead_of_the_default_refund(world: World) -> None:
    ctx = world.return_in_transit()
    d = world.dispute(ctx["dispute_id"])
    assert d.return_shipment is not None
    assert d.return_shipment.to_dict() == {"carrier": "CP", "tracking_number": "RT123", "shipped_at": "2026-11-01T12:00:00Z"}
    shown = world.services.disputes.contest_return(SELLER, ContestReturn(ctx["dispute_id"], None, ReturnProblem.EMPTY_BOX,
                                                                            "The box came back empty"))
    assert shown.status is Status.ESCALATED
    assert timer(world, "RETURN_RECEIPT", dispute_id=ctx["dispute_id"]) == "stale"  # no refund by default
    shown = world.services.disputes.decide(MODERATOR, Decide(ctx["dispute_id"], None, Decision.REJECTED, None,
                                                               "The return was an empty box"))
    assert shown.status is Status.RESOLVED and shown.refund is None and world.order().escrow.released == Money(2000, USD)
    assert world.order().refunds == ()
    balanced(world)


def test_money_events_carry_the_refund_id_and_each_movement_is_a_ledger_entry(world: World) -> None:
    ctx = world.awaiting_seller()
    world.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))
    world.settle_payments()
    kinds = [e.kind for e in world.order().ledger.entries]
    assert kinds == [Entry.HOLD, Entry.REFUND_REQUESTED, Entry.RELEASE, Entry.REFUND_SETTLED]
    refund_id = world.order().refunds[0].refund_id
    for detail_type, detail in world.publisher.events:
        if detail_type.startswith("refund."):
            assert detail["refund_id"] == refund_id and detail["order_id"] == "o-1"
    assert timedelta(0) < world.policy.refund_settlement


def test_a_moderator_never_retries_a_refund_on_an_order_of_their_own(world: World) -> None:
    """A retry may pay (again, after an unknown outcome): not a decision for the buyer or seller,
    even one who is also a moderator."""
    from chalicelib.domain.errors import Forbidden
    from chalicelib.domain.identity import Identity

    ctx = world.refund_needing_attention()
    for party in ("b-1", "s-1"):
        moderating_party = Identity(party, frozenset({"moderators"}))
        with pytest.raises(Forbidden):
            world.services.payments.retry(moderating_party, "o-1", ctx["refund_id"])
        assert world.order().ledger.refund(ctx["refund_id"]).status == "FAILED"
    world.services.payments.retry(MODERATOR, "o-1", ctx["refund_id"])  # any other moderator may
    assert world.order().ledger.refund(ctx["refund_id"]).status == "PENDING"
