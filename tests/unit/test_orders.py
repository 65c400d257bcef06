"""Orders, escrow and the dispute window, without AWS."""
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.catalog import Reason
from chalicelib.domain.errors import Conflict, RuleViolation
from chalicelib.domain.ledger import Entry, EscrowStatus, Ledger
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, OrderItem, OrderStatus, ScanStatus
from chalicelib.domain.policy import Policy
from chalicelib.domain.timefmt import parse
from tests.support import T0

POLICY = Policy()
DAY = timedelta(days=1)


def an_order(total: int = 2000, eta_days: int = 20) -> Order:
    return Order.register(order_id="o-1", buyer_id="b-1", seller_id="s-1",
                          items=[OrderItem("i-1", "Red dress", 1, Money(total, "USD"))],
                          total=Money(total, "USD"), estimated_delivery_at=T0 + eta_days * DAY, now=T0)


def test_a_paid_order_holds_its_whole_total_in_escrow():
    order = an_order()
    assert order.escrow.status is EscrowStatus.HELD
    assert order.escrow.still_held == Money(2000, "USD")


def test_items_costing_more_than_the_total_are_refused():
    with pytest.raises(RuleViolation) as err:
        Order.register(order_id="o", buyer_id="b", seller_id="s",
                       items=[OrderItem("i", "t", 2, Money(600, "USD"))],
                       total=Money(1000, "USD"), estimated_delivery_at=T0, now=T0)
    assert err.value.code == "INVALID_AMOUNT"


def test_a_buyer_cannot_sell_to_themselves():
    with pytest.raises(RuleViolation):
        Order.register(order_id="o", buyer_id="same", seller_id="same", items=[], total=Money(1, "USD"),
                       estimated_delivery_at=T0, now=T0)


def test_before_shipment_the_buyer_waits_for_the_estimated_delivery_date():
    e = an_order().eligibility(T0 + DAY, POLICY)
    assert (e.can_open, e.why_not) == (False, "NOT_SHIPPED_YET")
    assert e.opens_at == T0 + 20 * DAY


def test_an_unshipped_order_can_be_disputed_as_not_received_after_the_estimated_date():
    e = an_order().eligibility(T0 + 21 * DAY, POLICY)
    assert e.can_open and e.reasons == (Reason.NOT_RECEIVED,)


def test_an_order_never_shipped_whose_window_passed_says_not_shipped_and_when_its_money_comes_back():
    # Before: WINDOW_CLOSED, and NOT_RECEIVED refused as closed, while its ship-by refund was still ahead.
    order = Order.register(order_id="o-1", buyer_id="b-1", seller_id="s-1",
                           items=[OrderItem("i-1", "Red dress", 1, Money(2000, "USD"))],
                           total=Money(2000, "USD"), estimated_delivery_at=T0 + 2 * DAY, now=T0,
                           ship_by=T0 + 60 * DAY)
    late = T0 + 30 * DAY  # past the window (estimate + 15 days), before the ship-by date
    e = order.eligibility(late, POLICY)
    assert (e.can_open, e.why_not, e.refund_at) == (False, "NOT_SHIPPED_YET", T0 + 60 * DAY)
    assert e.to_dict()["refund_at"] == "2026-12-31T12:00:00Z" == order.to_dict()["ship_by"]
    refusal = order.open_refusal(Reason.NOT_RECEIVED, late, POLICY)
    assert refusal is not None and refusal.code == "DISPUTE_WINDOW_CLOSED"  # the contract's code, and why:
    assert refusal.details["why_not"] == "NOT_SHIPPED_YET" and refusal.details["refund_at"] == e.to_dict()["refund_at"]
    assert "never shipped" in refusal.message and e.to_dict()["refund_at"] in refusal.message
    shipped = order.ship("CP", "CN1", late).record_scan("IN_TRANSIT", late, late, POLICY)
    assert shipped.eligibility(late + 60 * DAY, POLICY).why_not == "WINDOW_CLOSED"  # once shipped, the window rules
    assert shipped.eligibility(late, POLICY).refund_at is None


def test_a_tracking_number_never_scanned_opens_not_received_after_the_grace_period():
    order = an_order(eta_days=40).ship("CP", "CN1", T0)
    assert order.eligibility(T0 + 9 * DAY, POLICY).why_not == "WINDOW_NOT_OPEN"
    e = order.eligibility(T0 + 10 * DAY, POLICY)
    assert e.can_open and e.reasons == (Reason.NOT_RECEIVED,)


def test_a_scanned_parcel_waits_for_the_estimated_delivery_date():
    order = an_order(eta_days=40).ship("CP", "CN1", T0).record_scan("IN_TRANSIT", T0 + DAY, T0 + DAY, Policy())
    assert order.eligibility(T0 + 11 * DAY, POLICY).why_not == "WINDOW_NOT_OPEN"
    assert order.eligibility(T0 + 40 * DAY, POLICY).can_open


def test_the_not_received_window_closes_fifteen_days_after_the_estimated_date():
    order = an_order(eta_days=20).ship("CP", "CN1", T0).record_scan("IN_TRANSIT", T0 + DAY, T0 + DAY, Policy())
    assert order.eligibility(T0 + 35 * DAY, POLICY).can_open
    assert order.eligibility(T0 + 35 * DAY + timedelta(seconds=1), POLICY).why_not == "WINDOW_CLOSED"


def test_after_delivery_only_received_reasons_and_fifteen_days():
    order = an_order().ship("CP", "CN1", T0).record_scan("DELIVERED", T0 + 5 * DAY, T0 + 5 * DAY, Policy())
    e = order.eligibility(T0 + 6 * DAY, POLICY)
    assert e.can_open and Reason.NOT_RECEIVED not in e.reasons and Reason.NOT_AS_DESCRIBED in e.reasons
    with pytest.raises(RuleViolation) as err:
        order.check_can_open(Reason.NOT_RECEIVED, T0 + 6 * DAY, POLICY)
    assert err.value.code == "REASON_NOT_ALLOWED"
    with pytest.raises(RuleViolation) as err:
        order.check_can_open(Reason.DAMAGED_OR_DEFECTIVE, T0 + 21 * DAY, POLICY)
    assert err.value.code == "DISPUTE_WINDOW_CLOSED"
    assert err.value.details["closes_at"] == "2026-11-21T12:00:00Z"


def test_late_or_repeated_scans_never_move_an_order_backwards():
    order = an_order().ship("CP", "CN1", T0).record_scan("DELIVERED", T0 + 5 * DAY, T0 + 5 * DAY, Policy())
    later = order.record_scan("IN_TRANSIT", T0 + 2 * DAY, T0 + 2 * DAY, Policy())
    later = later.record_scan("DELIVERED", T0 + 6 * DAY, T0 + 6 * DAY, Policy())
    assert later.status is OrderStatus.DELIVERED and later.delivered_at == T0 + 5 * DAY
    assert later.shipment is not None and later.shipment.last_scan_at == T0 + 6 * DAY


def test_confirming_receipt_releases_escrow_at_once():
    order = an_order().ship("CP", "CN1", T0).confirm_receipt(T0 + DAY)
    assert order.escrow.status is EscrowStatus.RELEASED and order.escrow.released == Money(2000, "USD")
    assert order.status is OrderStatus.COMPLETED
    assert order.eligibility(T0 + DAY, POLICY).why_not == "ESCROW_RELEASED"


def test_receipt_cannot_be_confirmed_while_a_dispute_is_open_or_twice():
    order = an_order().ship("CP", "CN1", T0)
    with pytest.raises(Conflict) as err:
        order.attach_dispute("d-1").confirm_receipt(T0)
    assert err.value.code == "DISPUTE_OPEN"
    with pytest.raises(Conflict):
        order.confirm_receipt(T0).confirm_receipt(T0)


def test_escrow_is_auto_released_sixty_days_after_shipment_only_without_a_dispute():
    order = an_order().ship("CP", "CN1", T0)
    assert order.release_at(POLICY) == T0 + 60 * DAY
    with pytest.raises(Conflict):
        order.auto_release(T0 + 59 * DAY, POLICY)
    with pytest.raises(Conflict):
        order.attach_dispute("d-1").auto_release(T0 + 61 * DAY, POLICY)
    assert order.auto_release(T0 + 60 * DAY, POLICY).escrow.status is EscrowStatus.RELEASED


def test_an_order_round_trips_through_its_stored_shape():
    order = an_order().ship("CP", "CN1", T0).record_scan("DELIVERED", T0 + DAY, T0 + DAY, Policy()).attach_dispute("d-1")
    assert Order.from_dict(order.to_dict(), order.version) == order


def test_timestamps_need_a_time_zone():
    with pytest.raises(ValueError):
        parse("2026-11-01T12:00:00")
    assert parse("2026-11-01T13:00:00+01:00") == T0


OPS = st.lists(st.tuples(st.sampled_from(["release", "refund", "settle", "fail", "retry", "overdue", "submit"]),
                          st.integers(0, 10**9), st.integers(0, 3)), max_size=12)


@given(total=st.integers(1, 10**9), ops=OPS)
def test_the_ledger_always_balances_and_settles_each_refund_once(total, ops):
    """held == refunded + refund pending + released + still held, none negative, whatever
    sequence of movements, answers and retries is tried (refusals included)."""
    ledger = Ledger.hold(Money(total, "EUR"), T0)
    for op, amount, pick in ops:
        refunds = ledger.refunds
        r = refunds[pick % len(refunds)] if refunds else None
        try:
            if op == "release":
                ledger = ledger.release(Money(amount, "EUR"), T0, "test")
            elif op == "refund":
                ledger, _ = ledger.request_refund(Money(amount, "EUR"), T0, T0 + DAY, "DISPUTE")
            elif r is not None and op == "settle":
                ledger = ledger.refund_settled(r.refund_id, r.attempt - pick % 2, "re_1", T0)
            elif r is not None and op == "fail":
                ledger = ledger.refund_failed(r.refund_id, r.attempt, "card_declined", T0, max_attempts=3)
            elif r is not None and op == "retry":
                ledger, _ = ledger.retry_refund(r.refund_id, T0, T0 + DAY)
            elif r is not None and op == "overdue":
                ledger, _ = ledger.settlement_overdue(r.refund_id, T0, T0 + DAY)
            elif r is not None and op == "submit":
                ledger = ledger.refund_submitted(r.refund_id, r.attempt, "re_1", T0)
        except (RuleViolation, Conflict):
            pass
        e = ledger.escrow
        e.check()
        assert e.refunded.amount + e.refund_pending.amount + e.released.amount + e.still_held.amount == total
        settled = [x.refund_id for x in ledger.entries if x.kind is Entry.REFUND_SETTLED]
        assert len(settled) == len(set(settled)), "a refund settled twice"
        for refund in ledger.refunds:
            assert (refund.refund_id in settled) == (refund.status == "SUCCEEDED")


def test_a_failed_refund_moves_no_money_and_a_retry_is_a_new_attempt():
    ledger, refund = Ledger.hold(Money(2000, "USD"), T0).request_refund(Money(500, "USD"), T0, T0 + DAY, "DISPUTE")
    failed = ledger.refund_failed(refund.refund_id, 1, "card_declined", T0, max_attempts=3)
    assert failed.escrow == ledger.escrow  # still owed to the buyer: refund pending
    assert failed.escrow.refund_pending == Money(500, "USD") and failed.escrow.status is EscrowStatus.HELD
    again, retry = failed.retry_refund(refund.refund_id, T0, T0 + DAY)
    assert retry.attempt == 2 and retry.status == "PENDING"
    assert again.refund_settled(refund.refund_id, 3, "re_future", T0) == again  # no such attempt yet
    late = again.refund_settled(refund.refund_id, 1, "re_old", T0)  # the first one went through after all
    assert late.escrow.refunded == Money(500, "USD") and late.refund(refund.refund_id).status == "SUCCEEDED"
    assert late.refund_settled(refund.refund_id, 2, "re_2", T0) == late  # settled once, whatever comes next
    paid = again.refund_settled(refund.refund_id, 2, "re_2", T0)
    assert paid.escrow.refunded == Money(500, "USD") and paid.escrow.refund_pending == Money(0, "USD")
    assert paid.refund_settled(refund.refund_id, 2, "re_2", T0) == paid  # a replayed notice changes nothing


def test_a_refund_above_what_is_still_held_or_in_another_currency_is_refused():
    ledger = Ledger.hold(Money(2000, "USD"), T0).release(Money(1500, "USD"), T0, "partial")
    for bad in (Money(501, "USD"), Money(100, "EUR"), Money(0, "USD")):
        with pytest.raises(RuleViolation):
            ledger.request_refund(bad, T0, T0 + DAY, "DISPUTE")
    with pytest.raises(RuleViolation):
        ledger.release(Money(501, "USD"), T0, "too much")


def test_a_scan_dated_beyond_carriers_clock_drift_is_refused_and_changes_nothing() -> None:
    shipped = an_order().ship("CP", "CN1", T0)
    policy = Policy()
    assert shipped.record_scan(ScanStatus.DELIVERED, T0 + policy.scan_clock_skew, T0, policy).status is OrderStatus.DELIVERED
    with pytest.raises(RuleViolation) as refused:
        shipped.record_scan(ScanStatus.DELIVERED, T0 + policy.scan_clock_skew + timedelta(seconds=1), T0, policy)
    assert refused.value.code == "INVALID_TIMESTAMP"
    assert shipped.status is OrderStatus.SHIPPED and shipped.shipment is not None and shipped.shipment.last_scan_at is None


def test_a_refund_keeps_each_move_of_its_status_or_attempt_and_a_new_deadline_alone_is_none():
    ledger, refund = Ledger.hold(Money(2000, "USD"), T0).request_refund(Money(500, "USD"), T0, T0 + DAY, "DISPUTE")
    assert refund.history == () and refund.last_moved_at == T0
    ledger, _ = ledger.settlement_overdue(refund.refund_id, T0 + DAY, T0 + 8 * DAY)  # a new settle-by only
    ledger = ledger.refund_sending(refund.refund_id, 1, T0 + DAY)
    ledger = ledger.refund_failed(refund.refund_id, 1, "card_declined", T0 + 2 * DAY, max_attempts=3)
    ledger, _ = ledger.retry_refund(refund.refund_id, T0 + 3 * DAY, T0 + 10 * DAY)
    ledger = ledger.refund_settled(refund.refund_id, 2, "re_1", T0 + 4 * DAY)
    ledger = ledger.refund_settled(refund.refund_id, 2, "re_1", T0 + 5 * DAY)  # a replayed notice: no move
    moved = ledger.refund(refund.refund_id)
    assert [(m.at - T0, m.status.value, m.attempt, m.failure_reason) for m in moved.history] == [
        (2 * DAY, "FAILED", 1, "PAYMENT_PROVIDER_DECLINED"), (3 * DAY, "PENDING", 2, None), (4 * DAY, "SUCCEEDED", 2, None)]
    assert moved.last_moved_at == T0 + 4 * DAY
    stored = Ledger.from_dict(ledger.to_dict(), "USD")
    assert stored.refund(refund.refund_id).history == moved.history
    # Refunds stored before the history existed read as having none.
    old = ledger.to_dict()
    del old["refunds"][0]["history"]
    assert Ledger.from_dict(old, "USD").refund(refund.refund_id).history == ()
