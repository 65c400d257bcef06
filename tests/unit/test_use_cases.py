"""The use cases and their unit of work, over the fakes (cosmicpython's service-layer tests): a
change is written whole with its outbox, the relay delivers the outbox after the commit, a
refused command leaves everything as it was, and an outage of the outside world loses nothing."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters import memory
from chalicelib.domain.catalog import Decision, Reason, Solution
from chalicelib.domain.disputes import Status
from chalicelib.domain.errors import ConcurrentModification, RuleViolation
from chalicelib.domain.money import Money
from chalicelib.domain.orders import EscrowStatus
from chalicelib.domain.timers import TimerCommand
from chalicelib.ports import OutboxRecord
from chalicelib.services import commands as c
from chalicelib.services.disputes import AcceptOffer, Cancel, Decide, MakeOffer, OpenDispute, RejectRequest
from tests.support import T0
from tests.unit.world import BUYER, SELLER, World

OPEN = OpenDispute("o-1", Reason.NOT_AS_DESCRIBED, "Ordered red, received blue", Solution.REFUND_PARTIAL,
                     Money(500, "USD"), ())


def shape(records: list[OutboxRecord]) -> list[tuple[str, ...]]:
    """What each outbox record asks of the world: (TIMER, op, action) or (EVENT, detail type)."""
    return [("TIMER", r.payload["op"], r.payload["action"]) if r.kind == "TIMER" else
            ("REFUND", r.payload["refund_id"]) if r.kind == "REFUND" else ("EVENT", r.payload["detail_type"])
            for r in records]


def spy_on_delivery(world: World, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record, at each hand-over to the relay, what it was given and what was stored by then."""
    seen: list[dict[str, Any]] = []
    deliver = world.relay.try_deliver

    def try_deliver(records: list[OutboxRecord], requeue_at: Any = None) -> int:
        seen.append({"records": list(records), "outbox": world.outbox(),
                     "disputes": dict(world.state.disputes), "orders": dict(world.state.orders)})
        return deliver(records, requeue_at)

    monkeypatch.setattr(world.relay, "try_deliver", try_deliver)
    return seen


def test_opening_a_dispute_commits_it_with_its_order_and_outbox_which_the_relay_then_delivers(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.delivered()
    order_version = world.state.orders["o-1"][0].version
    assert order_version is not None
    seen = spy_on_delivery(world, monkeypatch)

    dispute = world.services.disputes.open(BUYER, OPEN)

    # One commit, handed to the relay once: the dispute, the order pointing at it, and the outbox
    # (the seller's response timer and the events) were all stored before anything was delivered.
    assert len(seen) == 1
    handed = seen[0]
    assert shape(handed["records"]) == [("TIMER", "START", "SELLER_RESPONSE"), ("EVENT", "dispute.opened"),
                                        ("EVENT", "dispute.offer_made")]
    assert set(handed["outbox"]) == {r.outbox_id for r in handed["records"]}
    assert handed["disputes"][dispute.dispute_id].version == 1
    order = handed["orders"]["o-1"][0]
    assert (order.open_dispute_id, order.version) == (dispute.dispute_id, order_version + 1)

    # Then delivered, and gone from the outbox.
    assert [t for t in world.timers.started if t.subject_id == dispute.dispute_id] == [
        TimerCommand("START", dispute.dispute_id, "SELLER_RESPONSE", due_at=T0 + timedelta(days=7),
                     remind_at=T0 + timedelta(days=6), refs={"dispute_id": dispute.dispute_id})]
    assert [(t, d["dispute_id"]) for t, d in world.publisher.events] == [
        ("dispute.opened", dispute.dispute_id), ("dispute.offer_made", dispute.dispute_id)]
    assert world.outbox() == {}
    assert world.state.disputes[dispute.dispute_id].status is Status.AWAITING_SELLER


def test_a_dispute_that_ends_settles_its_order_in_the_same_commit(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = world.awaiting_seller()
    seen = spy_on_delivery(world, monkeypatch)

    world.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))

    stored_then = seen[0]
    assert stored_then["disputes"][ctx["dispute_id"]].status is Status.RESOLVED
    order = stored_then["orders"]["o-1"][0]
    # The seller is paid the rest at once; the buyer's 500 is owed (refund pending) until the
    # provider says it arrived.
    assert order.open_dispute_id is None and order.escrow.status is EscrowStatus.HELD
    assert (order.escrow.refund_pending, order.escrow.released) == (Money(500, "USD"), Money(1500, "USD"))
    assert ("TIMER", "STOP", "SELLER_RESPONSE") in shape(stored_then["records"])
    assert "REFUND" in [r.kind for r in stored_then["records"]]
    assert [t.action for t in world.timers.stopped if t.subject_id == ctx["dispute_id"]] == ["SELLER_RESPONSE"]
    # Delivered and forgotten, but the refund: handed to the refund queue, never sent by the
    # request; its record stays until the worker has sent it.
    [owed] = world.outbox().values()
    assert owed.kind == "REFUND" and world.payments.calls == 0
    assert world.refunds.messages == [{**owed.payload, "outbox_id": owed.outbox_id}]

    world.settle_payments()
    assert world.outbox() == {}
    settled = world.order()
    assert settled.escrow.status is EscrowStatus.SETTLED
    assert (settled.escrow.refunded, settled.escrow.refund_pending) == (Money(500, "USD"), Money(0, "USD"))
    assert world.payments.sent_for(settled.refunds[0].refund_id) == 500
    assert (world.shown(ctx["dispute_id"])["refund"] or {}).get("status") == "SUCCEEDED"


def test_a_refused_offer_leaves_the_state_and_the_outbox_as_they_were(world: World) -> None:
    ctx = world.awaiting_seller()
    before = world.snapshot()

    with pytest.raises(RuleViolation) as err:
        world.services.disputes.make_offer(SELLER, MakeOffer(ctx["dispute_id"], None, Solution.REFUND_PARTIAL,
                                                               Money(2500, "USD"), None))

    assert err.value.code == "INVALID_AMOUNT"
    assert world.snapshot() == before


def test_acting_on_a_stale_version_is_a_version_conflict_that_changes_nothing(world: World) -> None:
    ctx = world.awaiting_seller()
    seen_version = world.services.disputes.get(BUYER, ctx["dispute_id"]).version
    assert seen_version is not None
    world.services.messages.post(SELLER, c.PostMessage(ctx["dispute_id"], "Let me check"))  # no new version
    world.services.disputes.reject(SELLER, RejectRequest(ctx["dispute_id"], seen_version, "It was red"))
    before = world.snapshot()

    with pytest.raises(ConcurrentModification) as err:
        world.services.disputes.cancel(BUYER, Cancel(ctx["dispute_id"], seen_version, None))

    assert err.value.code == "VERSION_CONFLICT"
    assert err.value.details == {"current_version": seen_version + 1}
    assert world.snapshot() == before


def test_when_the_timers_are_down_the_change_commits_and_its_timer_waits_in_the_outbox_for_the_reconciler(
        world: World) -> None:
    world.delivered()
    world.timers.fail_next = 5  # Step Functions is down

    dispute = world.services.disputes.open(BUYER, OPEN)

    assert world.state.disputes[dispute.dispute_id].status is Status.AWAITING_SELLER
    assert world.state.orders["o-1"][0].open_dispute_id == dispute.dispute_id
    assert [t for t, _ in world.publisher.events] == ["dispute.opened", "dispute.offer_made"]  # events went out
    assert [t for t in world.timers.started if t.subject_id == dispute.dispute_id] == []
    assert shape(list(world.outbox().values())) == [("TIMER", "START", "SELLER_RESPONSE")]

    # Within the grace period the record is its request's to deliver, not the reconciler's.
    assert world.services.timers.drain_outbox() == (0, 0)
    world.clock.advance(seconds=31)
    assert world.services.timers.drain_outbox() == (0, 1)  # still down: the record stays, at the back
    assert len(world.outbox()) == 1

    world.timers.fail_next = 0  # back up
    assert world.services.timers.drain_outbox() == (0, 0)  # requeued just now: waits its grace again
    world.clock.advance(seconds=31)
    assert world.services.timers.drain_outbox() == (1, 0)
    assert [(t.op, t.subject_id, t.action) for t in world.timers.started if t.subject_id == dispute.dispute_id] == [
        ("START", dispute.dispute_id, "SELLER_RESPONSE")]
    assert world.outbox() == {}
    assert world.services.timers.drain_outbox() == (0, 0)


def test_a_buyers_accepted_photo_satisfies_the_evidence_checklist_without_listing_the_files(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = world.awaiting_seller()
    assert world.services.disputes.get(BUYER, ctx["dispute_id"]).dispute.evidence_checklist()["satisfied"] is False

    world.upload_photo(ctx["dispute_id"])

    def no_listing(*args: Any) -> None:
        raise AssertionError("the checklist listed the evidence files")

    monkeypatch.setattr(memory.InMemoryEvidence, "list", no_listing)
    reads = world.state.reads
    checklist = world.services.disputes.get(BUYER, ctx["dispute_id"]).dispute.evidence_checklist()
    assert checklist["satisfied"] is True and checklist["missing"] == []
    assert world.state.reads == reads + 1  # the dispute, and nothing else


def test_a_sellers_photo_does_not_satisfy_the_buyers_evidence_checklist(world: World) -> None:
    ctx = world.awaiting_seller()
    world.upload_photo(ctx["dispute_id"], who=SELLER)
    assert world.services.disputes.get(BUYER, ctx["dispute_id"]).dispute.evidence_checklist()["satisfied"] is False


@pytest.mark.parametrize("who,command", [
    (BUYER, lambda d: Decide(d, 99, Decision.REFUND_FULL, None, "Because the photos show it")),
    (SELLER, lambda d: Cancel(d, 99, None)),
])
def test_an_action_that_is_not_the_callers_is_403_even_with_a_stale_version(world: World, who: Any,
                                                                            command: Any) -> None:
    from chalicelib.domain.errors import Forbidden

    ctx = world.awaiting_seller()
    before = world.snapshot()
    use_case = world.services.disputes.decide if isinstance(command("x"), Decide) else world.services.disputes.cancel
    with pytest.raises(Forbidden) as err:
        use_case(who, command(ctx["dispute_id"]))
    assert err.value.code == "NOT_YOUR_ACTION" and world.snapshot() == before
