"""Orders, escrow and the dispute window, without AWS."""
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.catalog import Reason
from chalicelib.domain.errors import Conflict, RuleViolation
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Escrow, EscrowStatus, Order, OrderStatus
from chalicelib.domain.policy import Policy
from chalicelib.domain.timefmt import parse
from tests.support import T0

POLICY = Policy()
DAY = timedelta(days=1)


def an_order(total: int = 2000, eta_days: int = 20) -> Order:
    return Order.register(order_id="o-1", buyer_id="b-1", seller_id="s-1",
                          items=[{"item_id": "i-1", "title": "Red dress", "quantity": 1,
                                  "unit_price": {"amount": total, "currency": "USD"}}],
                          total=Money(total, "USD"), estimated_delivery_at=T0 + eta_days * DAY, now=T0)


def test_a_paid_order_holds_its_whole_total_in_escrow():
    order = an_order()
    assert order.escrow.status is EscrowStatus.HELD
    assert order.escrow.still_held == Money(2000, "USD")


def test_items_costing_more_than_the_total_are_refused():
    with pytest.raises(RuleViolation) as err:
        Order.register(order_id="o", buyer_id="b", seller_id="s",
                       items=[{"item_id": "i", "title": "t", "quantity": 2, "unit_price": {"amount": 600, "currency": "USD"}}],
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


def test_a_tracking_number_never_scanned_opens_not_received_after_the_grace_period():
    order = an_order(eta_days=40).ship("CP", "CN1", T0)
    assert order.eligibility(T0 + 9 * DAY, POLICY).why_not == "WINDOW_NOT_OPEN"
    e = order.eligibility(T0 + 10 * DAY, POLICY)
    assert e.can_open and e.reasons == (Reason.NOT_RECEIVED,)


def test_a_scanned_parcel_waits_for_the_estimated_delivery_date():
    order = an_order(eta_days=40).ship("CP", "CN1", T0).record_scan("IN_TRANSIT", T0 + DAY)
    assert order.eligibility(T0 + 11 * DAY, POLICY).why_not == "WINDOW_NOT_OPEN"
    assert order.eligibility(T0 + 40 * DAY, POLICY).can_open


def test_the_not_received_window_closes_fifteen_days_after_the_estimated_date():
    order = an_order(eta_days=20).ship("CP", "CN1", T0).record_scan("IN_TRANSIT", T0 + DAY)
    assert order.eligibility(T0 + 35 * DAY, POLICY).can_open
    assert order.eligibility(T0 + 35 * DAY + timedelta(seconds=1), POLICY).why_not == "WINDOW_CLOSED"


def test_after_delivery_only_received_reasons_and_fifteen_days():
    order = an_order().ship("CP", "CN1", T0).record_scan("DELIVERED", T0 + 5 * DAY)
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
    order = an_order().ship("CP", "CN1", T0).record_scan("DELIVERED", T0 + 5 * DAY)
    later = order.record_scan("IN_TRANSIT", T0 + 2 * DAY).record_scan("DELIVERED", T0 + 6 * DAY)
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
    order = an_order().ship("CP", "CN1", T0).record_scan("DELIVERED", T0 + DAY).attach_dispute("d-1")
    assert Order.from_dict(order.to_dict(), order.version) == order


def test_timestamps_need_a_time_zone():
    with pytest.raises(ValueError):
        parse("2026-11-01T12:00:00")
    assert parse("2026-11-01T13:00:00+01:00") == T0


@given(total=st.integers(1, 10**9), refunds=st.lists(st.integers(0, 10**9), max_size=4))
def test_escrow_always_balances(total, refunds):
    """held == refunded + released + still held, whatever sequence of settlements is tried."""
    escrow = Escrow.hold(Money(total, "EUR"))
    for r in refunds:
        try:
            escrow = escrow.settle(Money(r, "EUR"))
        except RuleViolation:
            pass
        assert escrow.refunded.amount + escrow.released.amount + escrow.still_held.amount == total
        assert min(escrow.refunded.amount, escrow.released.amount, escrow.still_held.amount) >= 0
