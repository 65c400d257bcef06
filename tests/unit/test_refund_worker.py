"""The refund worker and the reconciler under a payments review: a refund handed to the queue is
not handed again while its message may still be queued or worked on (its lease), yet one left
behind is always handed over again; a message only ever forgets the outbox record that owes its
own attempt; and a refund the worker could not send is counted for the outage alarm."""
from __future__ import annotations

import pytest

from chalicelib.domain.catalog import Solution
from chalicelib.metrics import REFUNDS_UNSENT
from chalicelib.ports import RefundOrder, RefundReceipt
from chalicelib.relay import REFUND_LEASE
from chalicelib.services.disputes import AcceptOffer
from chalicelib.services.payments import RefundOutcome
from tests.unit.world import SELLER, World


def accepted(world: World) -> str:
    """The seller's full refund accepted: the refund is owed, handed to the queue by the request."""
    ctx = world.awaiting_seller(Solution.REFUND_FULL, None)
    d = world.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))
    assert d.refund is not None
    return d.refund.refund_id


def owed(world: World) -> list[str]:
    return [r.outbox_id for r in world.state.outbox.values() if r.kind == "REFUND"]


def test_a_queued_refund_is_not_handed_over_again_on_every_run_of_the_reconciler(world: World) -> None:
    refund_id = accepted(world)
    assert [m["refund_id"] for m in world.refunds.messages] == [refund_id]
    # The worker is backlogged: its message waits in the queue while the reconciler runs each minute.
    for _ in range(4):
        world.clock.advance(seconds=60)
        assert world.services.timers.drain_outbox() == (0, 0)
    assert len(world.refunds.messages) == 1
    lookups = 0
    lookup = world.payments.lookup

    def counted(order: RefundOrder) -> RefundReceipt | None:
        nonlocal lookups
        lookups += 1
        return lookup(order)

    world.payments.lookup = counted  # type: ignore[method-assign]
    assert world.pay_refunds() == [RefundOutcome.PENDING]
    assert (world.payments.calls, lookups, owed(world)) == (1, 0, [])


def test_a_refund_left_behind_is_handed_over_again_once_its_lease_has_passed(world: World) -> None:
    refund_id = accepted(world)
    world.refunds.take()  # the message is lost (a worker crashed on it past its retries)
    world.clock.advance(seconds=REFUND_LEASE.total_seconds() + 1)
    assert world.services.timers.drain_outbox() == (1, 0)
    assert [m["refund_id"] for m in world.refunds.messages] == [refund_id]
    # Handed over just now: the next runs leave it to the queue until the lease has passed again.
    world.clock.advance(seconds=REFUND_LEASE.total_seconds() - 1)
    assert world.services.timers.drain_outbox() == (0, 0)
    world.clock.advance(seconds=2)
    assert world.services.timers.drain_outbox() == (1, 0)
    assert world.pay_refunds() == [RefundOutcome.PENDING, RefundOutcome.UNCHANGED]  # the copy is looked up, never sent twice
    assert world.payments.calls == 1 and owed(world) == []
    world.settle_payments()
    assert world.payments.sent_for(refund_id) == 2000


def test_a_message_naming_another_refunds_outbox_record_never_deletes_it(world: World) -> None:
    refund_id = accepted(world)
    [message] = world.refunds.take()
    order_id = message["order_id"]
    [record_id] = owed(world)
    calls = world.payments.calls
    for other in ({"refund_id": "some-other-refund"}, {"attempt": 2}):
        forged = {**message, **other}
        assert world.worker.handle(forged) == "refused"
        assert owed(world) == [record_id] and world.payments.calls == calls  # kept, and nothing sent
    # The right refund and attempt, but the record of another order: sent to nobody, record kept.
    assert world.worker.handle({**message, "order_id": "o-unknown"}) == RefundOutcome.UNKNOWN
    assert owed(world) == [record_id] and world.payments.calls == calls
    assert world.worker.handle(message) == RefundOutcome.PENDING  # the true message still pays it, once
    assert owed(world) == [] and world.payments.calls == calls + 1
    world.settle_payments()
    assert world.payments.sent_for(refund_id) == 2000 and world.order(order_id).escrow.refunded.amount == 2000


def test_a_refund_the_worker_could_not_send_is_counted_for_the_outage_alarm(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    accepted(world)
    world.payments.timeout_next(2)
    capsys.readouterr()
    assert world.pay_refunds() == ["left"]
    assert f'"{REFUNDS_UNSENT}"' in capsys.readouterr().out
    world.clock.advance(seconds=REFUND_LEASE.total_seconds() + 1)
    assert world.services.timers.drain_outbox() == (1, 0)
    assert world.pay_refunds() == ["left"]
    assert f'"{REFUNDS_UNSENT}"' in capsys.readouterr().out
    world.clock.advance(seconds=REFUND_LEASE.total_seconds() + 1)
    assert world.services.timers.drain_outbox() == (1, 0)
    assert world.pay_refunds() == [RefundOutcome.PENDING]  # back: sent, and nothing counted
    assert REFUNDS_UNSENT not in capsys.readouterr().out
