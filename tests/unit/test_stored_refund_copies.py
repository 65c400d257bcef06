"""Disputes stored while a dispute kept a copy of its refund, and references its order does not
hold: what they show. The order's ledger is the refund's only record now; deployed tables still
hold disputes with a ``refund`` map (and its moves on their own timeline) and refunds without a
history of moves."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.api import views
from chalicelib.domain.disputes import REFUND_EVENT_PREFIX, TIMELINE_EVENTS, Dispute
from chalicelib.domain.ledger import RefundStatus
from chalicelib.domain.orders import Order
from chalicelib.domain.timefmt import fmt
from tests.unit.world import BUYER, SELLER, Ctx, World


def stored_as_before(world: World, ctx: Ctx, moves: list[tuple[str, int, str | None]]) -> None:
    """Rewrite the stored dispute and order as the code before the change stored them: a copy of
    the refund on the dispute, its moves as entries of the dispute's timeline, refunds with no
    history."""
    order = world.order(ctx["order_id"])
    odoc = order.to_dict()
    for r in odoc["ledger"]["refunds"]:
        r.pop("history", None)
    world.state.orders[ctx["order_id"]] = (Order.from_dict(odoc, order.version), *world.state.orders[ctx["order_id"]][1:])
    d = world.dispute(ctx["dispute_id"])
    ddoc = d.to_dict()
    refund = order.ledger.refund(ddoc.pop("refund_id"))
    ddoc["refund"] = {"refund_id": refund.refund_id, "amount": refund.amount.to_dict(), "status": refund.status.value,
                      "attempts": refund.attempt, "failure_reason": refund.public_failure_reason,
                      "settle_by": fmt(refund.settle_by), "created_at": fmt(refund.created_at),
                      "updated_at": fmt(refund.updated_at)}
    for status, attempt, why in moves:
        ddoc["timeline"].append({"at": fmt(refund.updated_at), "actor": "system", "event": f"dispute.refund_{status.lower()}",
                                 "details": {"refund_id": refund.refund_id, "attempt": attempt, "failure_reason": why}})
    world.state.disputes[ctx["dispute_id"]] = Dispute.from_dict(
        ddoc, d.version, d.buyer_visual_evidence, evidence_used=d.evidence_used, evidence_created=d.evidence_created,
        assignment=d.assignment)


def test_a_refund_that_moved_before_the_change_shows_when_it_moved(world: World) -> None:
    world.payments.fail_next(1, "card_declined")
    ctx = world.refunded()
    world.clock.advance(hours=5)
    world.settle_payments()
    refund = world.order(ctx["order_id"]).ledger.refund(ctx["refund_id"])
    assert refund.status is RefundStatus.FAILED and refund.updated_at > refund.created_at
    stored_as_before(world, ctx, [("FAILED", 1, refund.public_failure_reason)])
    shown = world.shown(ctx["dispute_id"])
    assert [e["event"] for e in shown["timeline"]].count("dispute.refund_failed") == 1
    assert shown["refund"]["updated_at"] == fmt(refund.updated_at)  # not when it was asked for
    assert shown["updated_at"] == fmt(refund.updated_at)


def test_a_refund_that_failed_before_the_change_is_retried_paid_once_and_shown_in_order(world: World) -> None:
    world.payments.fail_next(1, "card_declined")
    ctx = world.refunded()
    world.settle_payments()
    refund = world.order(ctx["order_id"]).ledger.refund(ctx["refund_id"])
    stored_as_before(world, ctx, [("FAILED", 1, refund.public_failure_reason)])
    assert world.dispute(ctx["dispute_id"]).refund_id == ctx["refund_id"]
    assert "refund" not in world.dispute(ctx["dispute_id"]).to_dict()
    world.clock.advance(hours=1)
    assert world.services.payments.timer("REFUND_RETRY", ctx["order_id"], ctx["refund_id"], 1) == "retried"
    world.settle_payments()
    shown = world.shown(ctx["dispute_id"])
    moves = [(e["event"], e["details"]["attempt"]) for e in shown["timeline"] if e["event"].startswith(REFUND_EVENT_PREFIX)]
    assert moves == [("dispute.refund_failed", 1), ("dispute.refund_pending", 2), ("dispute.refund_succeeded", 2)]
    order = world.order(ctx["order_id"])
    assert world.payments.sent_for(ctx["refund_id"]) == order.ledger.refund(ctx["refund_id"]).amount.amount
    order.escrow.check()


def test_the_parties_see_nothing_of_the_case_teams_refund_fields(world: World) -> None:
    ctx = world.refund_needing_attention()
    for who in (BUYER, SELLER):
        text = repr(views.dispute(world.services.disputes.get(who, ctx["dispute_id"]), world.clock.now(),
                                  world.policy, who))
        for secret in ("attention_reason", "needs_attention", "provider_refund_id", "ATTEMPTS_EXHAUSTED",
                       "moderator_id", "card_declined"):
            assert secret not in text, (who, secret)


def test_every_status_a_refund_moves_to_has_its_timeline_event() -> None:
    assert {f"{REFUND_EVENT_PREFIX}{s.value.lower()}" for s in RefundStatus} <= set(TIMELINE_EVENTS)


@pytest.mark.parametrize("fault", ["missing", "another dispute's"])
def test_a_reference_its_order_does_not_hold_for_it_shows_no_refund_and_is_counted(
        world: World, fault: str, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = world.refunded()
    order = world.order(ctx["order_id"])
    if fault == "missing":
        d = world.dispute(ctx["dispute_id"])
        world.state.disputes[ctx["dispute_id"]] = replace(d, refund_id="r-nowhere")
    else:
        refunds = tuple(replace(r, dispute_id="d-other") for r in order.ledger.refunds)
        moved: Any = replace(order, ledger=replace(order.ledger, refunds=refunds))
        world.state.orders[ctx["order_id"]] = (moved, *world.state.orders[ctx["order_id"]][1:])
    capsys.readouterr()
    shown = world.shown(ctx["dispute_id"])
    assert shown["refund"] is None
    assert not [e for e in shown["timeline"] if e["event"].startswith(REFUND_EVENT_PREFIX)]
    assert '"DisputeRefundsMissing"' in capsys.readouterr().out
