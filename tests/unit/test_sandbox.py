"""The sandbox: a deadline passes now, a carrier scans now, a refund settles or fails now, each
through the same rules as the real thing; and without a sandbox these do not exist (404)."""
from __future__ import annotations

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.memory import FakeUnitOfWork
from chalicelib.domain.disputes import QueueFilter, Status
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ledger import EscrowStatus
from chalicelib.domain.orders import ScanStatus
from chalicelib.domain.timefmt import fmt
from chalicelib.services import commands as c
from tests.unit.world import BUYER, MODERATOR, SELLER, World


def test_a_pending_deadline_passes_now_with_its_default_outcome(world: World) -> None:
    ctx = world.awaiting_seller()
    d = world.services.sandbox.expire_deadline(BUYER, ctx["dispute_id"])
    assert d.status is Status.RESOLVED and (d.resolution.to_dict() if d.resolution else {}).get("decided_by") == "system"
    assert [t.action for t in world.timers.stopped if t.subject_id == ctx["dispute_id"]] == ["SELLER_RESPONSE"]
    with pytest.raises(Conflict) as err:
        world.services.sandbox.expire_deadline(BUYER, ctx["dispute_id"])
    assert err.value.code == "NO_PENDING_DEADLINE"


def test_an_expiry_is_recorded_now_not_at_the_deadline_it_brings_forward(world: World) -> None:
    ctx = world.awaiting_seller()
    world.clock.advance(hours=1)
    now = world.clock.now()
    d = world.services.sandbox.expire_deadline(BUYER, ctx["dispute_id"])
    expired = [e for e in d.timeline if e.event == "dispute.deadline_expired"]
    assert d.updated_at == now and (d.resolution.to_dict() if d.resolution else {}).get("resolved_at") == fmt(now)
    assert [fmt(e.at) for e in expired] == [fmt(now)] and {fmt(e.at) for e in d.timeline[2:]} == {fmt(now)}


def test_an_expired_mediation_is_overdue_in_the_queue_and_has_no_deadline_left(world: World) -> None:
    ctx = world.escalated()
    queue = world.services.disputes.moderation_queue
    page = c.PageRequest(10, None)
    d = world.services.sandbox.expire_deadline(MODERATOR, ctx["dispute_id"])
    now = world.clock.now()
    assert d.deadlines(world.policy, now)[0]["overdue"] is True and d.dispute.is_overdue(now)
    assert [x.dispute_id for x in queue(MODERATOR, QueueFilter(overdue=True), page)[0]] == [ctx["dispute_id"]]
    assert queue(MODERATOR, QueueFilter(overdue=False), page)[0] == []
    before, published = world.snapshot(), len(world.publisher.events)
    with pytest.raises(Conflict) as again:
        world.services.sandbox.expire_deadline(MODERATOR, ctx["dispute_id"])
    assert again.value.code == "NO_PENDING_DEADLINE"
    assert world.snapshot() == before and len(world.publisher.events) == published


def test_a_simulated_scan_delivers_the_parcel(world: World) -> None:
    ctx = world.shipped()
    order = world.services.sandbox.carrier_scan(SELLER, c.SimulateScan(ctx["order_id"], ScanStatus.DELIVERED))
    assert order.delivered_at == world.clock.now() and order.eligibility(world.clock.now(), world.policy).can_open


def test_a_refund_is_made_to_settle_or_fail_now_as_the_providers_webhook_would_say(world: World) -> None:
    ctx = world.refunded()
    order = world.services.sandbox.settle_refund(BUYER, c.SimulateSettlement(ctx["order_id"], ctx["refund_id"],
                                                                             "insufficient_funds"))
    refund = order.ledger.refund(ctx["refund_id"])
    assert refund.status == "FAILED" and refund.failure_reason == "insufficient_funds"
    assert world.payments.sent_for(ctx["refund_id"]) == 0
    with pytest.raises(Conflict):  # nothing is waiting at the provider any more
        world.services.sandbox.settle_refund(BUYER, c.SimulateSettlement(ctx["order_id"], ctx["refund_id"], None))
    world.services.payments.retry(MODERATOR, ctx["order_id"], ctx["refund_id"])
    world.pay_refunds()  # the refund worker sends the new attempt
    order = world.services.sandbox.settle_refund(SELLER, c.SimulateSettlement(ctx["order_id"], ctx["refund_id"],
                                                                              None))
    assert order.escrow.status is EscrowStatus.REFUNDED and world.payments.sent_for(ctx["refund_id"]) == 2000


def test_without_a_sandbox_its_use_cases_do_not_exist(world: World) -> None:
    ctx = world.refunded()
    off = bootstrap.use_cases(lambda: FakeUnitOfWork(world.state, world.relay, world.clock), world.clock,
                              world.policy, world.relay, world.publisher, world.store, world.payments).sandbox
    before = world.snapshot()
    for attempt in (lambda: off.expire_deadline(BUYER, ctx["dispute_id"]),
                    lambda: off.carrier_scan(BUYER, c.SimulateScan(ctx["order_id"], ScanStatus.DELIVERED)),
                    lambda: off.settle_refund(BUYER, c.SimulateSettlement(ctx["order_id"], ctx["refund_id"], None))):
        with pytest.raises(NotFound) as err:
            attempt()
        assert err.value.code == "ROUTE_NOT_FOUND"
    assert world.snapshot() == before
